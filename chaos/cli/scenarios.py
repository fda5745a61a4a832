"""``failwhale validate``, ``list``, ``run``, ``scenarios`` and ``report``: scenario files, their runs, and the
reports made from the run folders."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from chaos import records
from chaos.cli.common import say
from chaos.errors import BadInput
from chaos.scenario import CATALOG

if TYPE_CHECKING:
    from chaos.engine.progress import RunProgress


def cmd_validate(args: argparse.Namespace) -> int:
    from chaos.scenario import ScenarioError, load_scenario

    bad = 0
    for path in args.files:
        try:
            s = load_scenario(path)
        except ScenarioError as e:
            print(f"error: {e}", file=sys.stderr)
            bad += 1
        else:
            say(
                f"ok: {path}: {s.title} ({len(s.timeline)} steps, {len(s.phases)} phases, "
                f"{len(s.expectations)} expectations, {s.duration:g}s at speed {s.speed:g})"
            )
    return 2 if bad else 0


def scenario_path(name: str) -> Path:
    """A scenario file named by path, or by its name in the catalog (failwhale list)."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    candidate = CATALOG / f"{name}.yaml"
    if not candidate.exists():
        known = ", ".join(sorted(p.stem for p in CATALOG.glob("*.yaml"))) or "none yet"
        raise BadInput(f"no scenario named {name!r} (known: {known}; or give a file path)")
    return candidate


def cmd_list(args: argparse.Namespace) -> int:
    from chaos.scenario import ScenarioError, load_scenario

    files = sorted(CATALOG.glob("*.yaml"))
    if not files:
        say(f"no scenarios in {CATALOG} yet")
    for path in files:
        try:
            say(f"{path.stem:<32}{load_scenario(path).title}")
        except ScenarioError as e:
            say(f"{path.stem:<32}(invalid: {e})")
    return 0


def play(
    name_or_file: str, args: argparse.Namespace, progress: RunProgress, quick: bool | None = None
) -> tuple[int, Path | None]:
    """Run one scenario, then write its report and the folder's index; (exit code, run folder)."""
    from chaos.engine.runner import Runner
    from chaos.scenario import load_scenario

    path = scenario_path(name_or_file)
    scenario = load_scenario(path)
    quick = args.quick if quick is None else quick
    if quick and scenario.quick is None:
        raise BadInput(f"{path}: the scenario has no quick variant (add a quick: section with a speed)")
    speed = args.speed or (scenario.quick.speed if quick and scenario.quick else scenario.speed)
    setup = 25 if quick else 40
    say(
        f"{scenario.title}: {scenario.duration:g}s of scenario time at speed {speed:g} "
        f"(about {scenario.duration / speed + setup:.0f}s with set-up and recovery)"
    )
    progress.scenario(path.stem)
    runner = Runner(
        scenario,
        path.stem,
        args.out,
        speed,
        args.config,
        say=progress.say,
        attach=args.attach,
        quick=quick,
        scale=args.scale,
        progress=progress,
    )
    code = runner.run()
    if (runner.run_dir / "summary.json").exists():
        write_reports(args.out, [runner.run_dir])
    return code, runner.run_dir


def write_reports(out: Path, run_dirs: list[Path]) -> bool:
    """Each run's report, then the folder's index; False if a report could not be made."""
    from chaos.report import render_index, render_run

    ok = True
    for run_dir in run_dirs:
        try:
            say(f"report: {render_run(run_dir)}")
        except records.RecordError as e:  # one run's files: the others are still reported
            print(f"error: {e}", file=sys.stderr)
            ok = False
    everything = sorted(d for d in out.iterdir() if (d / "summary.json").exists())
    say(f"index: {render_index(out, everything)}")
    return ok


def cmd_run(args: argparse.Namespace) -> int:
    from chaos.engine.progress import for_output

    progress = for_output()  # a live status area in a terminal, plain lines otherwise
    try:
        return play(args.scenario, args, progress)[0]
    finally:
        progress.close()


def catalog_order(paths: list[Path]) -> list[Path]:
    """Catalog order: by name, except that scenarios comparing themselves with another run last."""
    from chaos.scenario import load_scenario

    return sorted(paths, key=lambda p: (load_scenario(p).compare is not None, p.stem))


def cmd_scenarios(args: argparse.Namespace) -> int:
    from chaos.engine.progress import for_output
    from chaos.report import table

    paths = [CATALOG / f"{n}.yaml" for n in args.only] if args.only else sorted(CATALOG.glob("*.yaml"))
    for p in paths:
        if not p.is_file():
            raise BadInput(f"no scenario named {p.stem} (see failwhale list)")
    paths = catalog_order(paths)
    check_scales(paths, args)
    say(f"{len(paths)} scenarios: {', '.join(p.stem for p in paths)}")
    started = time.time()
    summaries: list[records.Summary] = []
    progress = for_output()
    progress.catalog([p.stem for p in paths])
    try:
        codes = _play_catalog(paths, args, progress, started, summaries)
    finally:
        progress.close()
    say(f"\n{table(summaries)}")
    say(f"whole catalog: {time.time() - started:.0f}s; reports: {args.out / 'index.html'}")
    if 130 in codes:
        return 130
    return 0 if codes and all(c == 0 for c in codes) and len(codes) == len(paths) else 1


def check_scales(paths: list[Path], args: argparse.Namespace) -> None:
    """Every scenario's scale, checked before the first plays: a catalog is not refused half way."""
    from chaos.engine.runner import run_scale
    from chaos.scenario import load_scenario

    for path in paths:
        scenario = load_scenario(path)
        try:
            run_scale(scenario, args.scale, attach=args.attach, quick=args.quick and scenario.quick is not None)
        except BadInput as e:
            raise BadInput(f"{path.stem}: {e}") from e


def _play_catalog(
    paths: list[Path], args: argparse.Namespace, progress: RunProgress, started: float, summaries: list[records.Summary]
) -> list[int]:
    """Play each scenario in turn; their exit codes (a Ctrl-C ends the catalog early)."""
    from chaos.scenario import load_scenario

    codes: list[int] = []
    for i, path in enumerate(paths, 1):
        progress.say(f"\n=== {i}/{len(paths)} {path.stem} ({time.time() - started:.0f}s so far) ===")
        code, run_dir = play(str(path), args, progress, quick=args.quick and load_scenario(path).quick is not None)
        codes.append(code)
        if code == 130:
            progress.say("interrupted: the rest of the catalog is skipped")
            break
        progress.played(path.stem)
        if run_dir is not None and (run_dir / "summary.json").exists():
            try:
                summaries.append(records.read(run_dir / "summary.json", records.Summary))
            except records.RecordError as e:  # left out of the table; the other runs still count
                print(f"error: {e}", file=sys.stderr)
    return codes


def cmd_report(args: argparse.Namespace) -> int:
    for d in args.run_dirs:
        if not (d / "summary.json").is_file():
            raise BadInput(f"{d}: not a run folder (no summary.json)")
    ok = True
    for out in sorted({d.resolve().parent for d in args.run_dirs}):
        ok &= write_reports(out, [d for d in args.run_dirs if d.resolve().parent == out])
    return 0 if ok else 2
