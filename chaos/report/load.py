"""Reading a run folder for its report: its summary and series, checked, or one line saying why not."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from chaos import records
from chaos.records import RecordError, Series, Summary

# A report fails only on a run folder whose files cannot be read: one line naming the file.
ReportError = RecordError


# ---- reading a run folder ---------------------------------------------------------------------


def is_num(x: Any) -> bool:
    """Whether a value is a number (a bool is not)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def finite_or_none(x: Any) -> float | None:
    """A value as a finite float, or None (absent, text, NaN or infinite): for what a page's data
    attributes held (the dashboard photographs' readings), which no record types."""
    return float(x) if is_num(x) and math.isfinite(x) else None


def load_run(run_dir: Path) -> tuple[Summary, Series | None]:
    """A run folder's summary and series; a :class:`ReportError` line naming the file if not usable.

    A run that stopped before its timeline (its steady state did not hold first) has no series:
    its report is the verdict and why, without plots."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir}: not a run folder (no such directory)")
    summary = records.read(run_dir / "summary.json", Summary)
    path = run_dir / "series.json"
    if not path.exists():
        if summary.started is None:
            return summary, None
        raise ReportError(f"{path}: no such file (runs made before series were exported cannot be reported)")
    return summary, records.read(path, Series)
