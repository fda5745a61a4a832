"""The nothing-lost ledger: every tweet the API acknowledged, one JSON line each.

Each Locust process appends to its own file (``acked-<pid>.jsonl``) in the ledger folder, so
workers never interleave writes. A later check compares the IDs with the tweets database.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, TextIO


class Ledger:
    def __init__(self, folder: Path | None) -> None:
        self.path = None if folder is None else folder / f"acked-{os.getpid()}.jsonl"
        self._file: TextIO | None = None

    def acked(self, tweet: dict[str, Any]) -> None:
        if self.path is None:
            return
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        line = {"id": tweet.get("id"), "user": tweet.get("user"), "acked_at": time.time()}
        self._file.write(json.dumps(line) + "\n")
        self._file.flush()  # a killed load generator must not lose what it saw acknowledged

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_ledger(folder: Path) -> list[int]:
    """Every acknowledged tweet ID found in a ledger folder."""
    ids = []
    for path in sorted(folder.glob("acked-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                ids.append(int(json.loads(line)["id"]))
    return ids
