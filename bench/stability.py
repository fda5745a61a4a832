"""How much do a scenario's figures move from one run to the next? N runs, one table.

Plays one scenario N times, one after the other, each as its own ``failwhale run`` process on a
fresh lab with its own free ports (so nothing carries over from one run to the next: not
Prometheus's data, not the load's users, not a cache), reads each run's ``summary.json`` and
prints, for every figure, its spread over the runs. By default: the quick headline
(``twitter-2022-12-28 --quick``, about a minute a run), 10 times. A line is printed as each run
finishes; the table comes at the end, and ``stability.json`` (rewritten after every run, so an
interrupted bench keeps what it measured) holds it with every run's values, to recompute or
compare spreads later.

Reading the table
-----------------

One row per figure:

* main figures, from the summary's focus phase (the phase the scenario's user expectations
  name; ``outage`` for the headline): the web and app failure ratios (share of journeys that
  failed), the website's share of the user reports and the number of reports; the headline's
  "logins answered 429" and "posts failing" (the share of login answers that were 429, of tweet
  posts that failed: two of its expectations, shown here with their bounds); users hurt over the
  whole timeline, web and app summed;
* then every expectation of the scenario, by name, with its bound;
* the wall time of a run: lab start, load, timeline, recovery, measuring and report.

``runs`` is how many runs measured the figure (a crashed run measures nothing), ``mean`` and
``sd`` (the sample standard deviation, n - 1; ``-`` below two runs) and ``min``/``max`` are over
those runs. ``held`` counts the runs in which the figure held its bound, out of every run asked
for: the run's own verdict on that expectation (its ``held`` in summary.json), so a crashed run
counts as not held. Figures with no bound show ``-``. An expectation held in 9 of 10 runs is one
a single run fails now and then: read its min or max against its bound to see by how much. The
verdicts line counts the runs by verdict (held, deviated, aborted) and the runs that crashed
(no summary.json), each of which is shown below the table with its exit code and the last
lines of its output.

Wall time and, less so, the figures depend on what else the machine does: the table's header
shows the load average at the start and at the end; compare spreads measured on a quiet machine.

Options
-------

``--scenario NAME`` a catalog scenario (``failwhale list``) or a scenario file; ``--full`` plays
it at its own speed instead of its quick variant; ``--runs N``; ``--scale K`` passes
``--scale K`` to every ``failwhale run``; ``--out DIR`` is where the run folders (with their
reports and an index.html), each run's output (``logs/``) and ``stability.json`` go.
``--smoke`` is the check that this benchmark still works (CI): 2 runs of the shortest test
scenario, ``tests/chaos/data/failing-step.yaml`` (8 s of timeline; a step fails by design, so
both runs deviate, and the table must say so), in about a minute: each ``failwhale run`` starts
a lab, warms the load up for 8 s and renders a report, whatever the scenario's length. Options
given with ``--smoke`` still win over its own.

It is a benchmark, not a test: it exits 0 whatever it measures, 2 with one line when it cannot
measure (an unknown scenario, a bad option, Prometheus missing, ``failwhale run`` refusing its
input) and 130 when interrupted (the run in progress rolls back first).

Run it from the repository root::

    python -m bench.stability                          # quick headline, 10 runs: about 11 minutes
    python -m bench.stability --runs 3 --full          # the full headline: about 2 minutes a run
    python -m bench.stability --scenario dependency-hang --runs 5
    python -m bench.stability --smoke
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.procs import SMOKE_NOTE, BenchError, parse_args, run_main, stop_processes
from chaos import records
from chaos.records import Summary

REPO_ROOT = Path(__file__).resolve().parents[1]
HEADLINE = "twitter-2022-12-28"
DEFAULT_RUNS = 10
# The shortest test scenario there is (8 s of timeline); its second step fails on purpose, which
# also exercises the counting of deviated runs.
SMOKE_SCENARIO = REPO_ROOT / "tests" / "chaos" / "data" / "failing-step.yaml"
SMOKE = {"scenario": str(SMOKE_SCENARIO), "full": False, "runs": 2}
MAX_RUNS = 1000
TAIL_LINES = 6
COMMAND_MARK = "$ "  # the first line of a run's log: the command, left out of its last lines
PROBLEMS_CHARS = 160  # of a progress line: the whole of each problem is in stability.json
ROLLBACK_GRACE_S = 90.0  # after SIGINT a run rolls back, measures and writes its report
# summary.json records these two figures only as expectations of the headline: found by name.
FROM_EXPECTATIONS = {
    "logins answered 429": 'logins are answered 429 "Rate limit exceeded"',
    "posts failing": "posting tweets fails",
}
MAIN = (
    "web failure ratio",
    "app failure ratio",
    "website share of user reports",
    "user reports",
    *FROM_EXPECTATIONS,
    "users hurt",
)
COUNTS = {"user reports", "users hurt"}
VERDICTS = ("held", "deviated", "aborted", "crashed")


# --------------------------------------------------------------------------- the table (no I/O)


@dataclass
class Run:
    """One ``failwhale run`` as the bench saw it: its summary, or why it left none."""

    index: int  # from 1
    exit_code: int | None
    seconds: float
    summary: Summary | None
    run_dir: str | None = None
    log: str | None = None
    tail: list[str] = field(default_factory=list)  # the last lines of its output, kept for a crash
    timed_out: bool = False

    @property
    def verdict(self) -> str:
        if self.summary is None:
            return "crashed"
        return self.summary.verdict


@dataclass(frozen=True)
class Reading:
    """One figure of one run."""

    value: float | None
    held: bool | None  # None: the figure has no bound
    bound: str | None
    phase: str | None


def _number(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else x


def readings(summary: Summary) -> dict[tuple[str, str], Reading]:
    """Every figure of one summary, keyed ("main" | "expectation", name); main figures first."""
    focus = summary.focus_phase
    phase = summary.phases.get(focus) if focus is not None else None
    reports = phase.user_reports if phase is not None else {}
    total = sum(reports.values()) if reports else None
    by_name = {e.name: e for e in summary.expectations}
    main: dict[str, Reading] = {
        "web failure ratio": Reading(_number(phase.web.failure_ratio) if phase else None, None, None, focus),
        "app failure ratio": Reading(_number(phase.app.failure_ratio) if phase else None, None, None, focus),
        "website share of user reports": Reading(
            reports.get("website", 0) / total if total else None, None, None, focus
        ),
        "user reports": Reading(total, None, None, focus),
    }
    for label, name in FROM_EXPECTATIONS.items():
        if name in by_name:
            e = by_name[name]
            main[label] = Reading(_number(e.measured), e.held, e.bound, e.phase)
    hurt = summary.users_hurt
    main["users hurt"] = Reading(sum(hurt.values()) if hurt else None, None, None, "timeline")
    out = {("main", k): main[k] for k in MAIN if k in main}
    for e in summary.expectations:
        out[("expectation", e.name)] = Reading(_number(e.measured), e.held, e.bound, e.phase)
    return out


def spread(values: Sequence[float | None]) -> dict[str, Any]:
    """How many values there are, their mean, sample sd (None below two values), min and max."""
    xs = [float(v) for v in values if v is not None]
    if not xs:
        return {"runs": 0, "mean": None, "sd": None, "min": None, "max": None}
    return {
        "runs": len(xs),
        "mean": statistics.fmean(xs),
        "sd": statistics.stdev(xs) if len(xs) > 1 else None,
        "min": min(xs),
        "max": max(xs),
    }


def _unit(label: str) -> str:
    # A summary's measured values are floats, counts and ratios alike (a ratio that is 1.0 in
    # every run is still a ratio): only the figures known to be counts are shown whole.
    return "count" if label in COUNTS else "number"


def build_table(runs: list[Run]) -> dict[str, Any]:
    """The table of a list of runs: one row per figure, with every run's value and held, and the spread."""
    per_run = [readings(r.summary) if r.summary is not None else {} for r in runs]
    keys: list[tuple[str, str]] = []
    for rd in per_run:
        keys += [k for k in rd if k not in keys]
    # Main figures in their fixed order, whichever run named them first.
    keys.sort(key=lambda k: (k[0] != "main", MAIN.index(k[1]) if k[0] == "main" else 0))
    rows = []
    for kind, name in keys:
        got = [rd.get((kind, name)) for rd in per_run]
        values = [g.value if g else None for g in got]
        bounded = any(g is not None and g.held is not None for g in got)
        held = [bool(g.held) if g else False for g in got] if bounded else None
        phases = sorted({g.phase for g in got if g and g.phase})
        bounds = sorted({g.bound for g in got if g and g.bound})
        rows.append(
            {
                "figure": name,
                "kind": kind,
                "phase": "/".join(phases) or None,
                "bound": " | ".join(bounds) or None,
                "unit": _unit(name),
                "values": values,
                "held": held,
                **spread(values),
                "held_runs": sum(held) if held is not None else None,
                "of": len(runs),
            }
        )
    seconds = [r.seconds for r in runs]
    wall = {
        "figure": "wall time per run",
        "kind": "wall",
        "phase": None,
        "bound": None,
        "unit": "s",
        "values": seconds,
        "held": None,
        **spread(seconds),
        "held_runs": None,
        "of": len(runs),
    }
    counts = Counter(r.verdict for r in runs)
    verdicts = {v: counts.pop(v, 0) for v in VERDICTS} | dict(counts)
    return {
        "runs": len(runs),
        "verdicts": verdicts,
        "rows": rows,
        "wall": wall,
        "per_run": [_per_run(r) for r in runs],
    }


def _per_run(r: Run) -> dict[str, Any]:
    """One run as stability.json keeps it: how it ended, its problems, and a crash's last lines."""
    return {
        "run": r.index,
        "verdict": r.verdict,
        "exit_code": r.exit_code,
        "seconds": round(r.seconds, 2),
        "timed_out": r.timed_out,
        "run_dir": r.run_dir,
        "log": r.log,
        "problems": r.summary.problems if r.summary is not None else [],
        **({"output_tail": r.tail} if r.summary is None else {}),
    }


def fmt(x: float | None, unit: str) -> str:
    """A figure as the table shows it: ratios to 3 decimals, counts whole (means and sds to 1 decimal),
    seconds to 1."""
    if x is None:
        return "-"
    if unit == "count":
        return f"{x:.0f}" if float(x).is_integer() else f"{x:.1f}"
    if unit in ("s", "count-sd"):
        return f"{x:.1f}"
    return f"{x:.3f}"


def verdict_line(table: dict[str, Any]) -> str:
    v, n = table["verdicts"], table["runs"]
    others = ", ".join(f"{k} {c}" for k, c in v.items() if k != "held" and c)
    return f"verdicts: held in {v.get('held', 0)} of {n} run{'s' if n != 1 else ''}" + (
        f" ({others})" if others else ""
    )


def format_table(table: dict[str, Any], title: str = "") -> str:
    """The table as printed: a title, the verdicts, one line per figure, then each crashed run."""
    rows = [*table["rows"], table["wall"]]
    width = max([len("figure"), *(len(r["figure"]) for r in rows)])
    phase_w = max([len("phase"), *(len(r["phase"] or "-") for r in rows)])
    bound_w = max([len("bound"), *(len(r["bound"] or "-") for r in rows)])
    head = (
        f"{'figure':<{width}}  {'phase':<{phase_w}}  {'bound':<{bound_w}}  {'runs':>4}  {'mean':>8}  {'sd':>8}  "
        f"{'min':>8}  {'max':>8}  {'held':>7}"
    )
    lines = [title] if title else []
    lines += [verdict_line(table), "", head, "-" * len(head)]
    section = None
    for r in rows:
        if r["kind"] != section and section is not None:
            lines.append("")
        section = r["kind"]
        held = f"{r['held_runs']}/{r['of']}" if r["held_runs"] is not None else "-"
        u = r["unit"]
        lines.append(
            f"{r['figure']:<{width}}  {r['phase'] or '-':<{phase_w}}  {r['bound'] or '-':<{bound_w}}  "
            f"{r['runs']:>4}  {fmt(r['mean'], u):>8}  {fmt(r['sd'], 'count-sd' if u == 'count' else u):>8}  "
            f"{fmt(r['min'], u):>8}  {fmt(r['max'], u):>8}  {held:>7}"
        )
    for p in table["per_run"]:
        if p["verdict"] == "crashed":
            why = "timed out, then stopped" if p["timed_out"] else f"exit code {p['exit_code']}"
            lines += [
                "",
                f"run {p['run']} crashed ({why}, no summary.json); the last lines of its output"
                + (f" ({p['log']})" if p["log"] else "")
                + ":",
            ]
            lines += [f"    {ln}" for ln in p.get("output_tail") or ["(no output)"]]
    return "\n".join(lines)


def progress_line(run: Run, of: int) -> str:
    """What the bench prints as a run finishes: its verdict, wall time and a few key figures."""
    head = f"run {run.index} of {of}: {run.verdict.upper()} in {run.seconds:.0f} s"
    if run.timed_out:
        head += " (timed out, then stopped)"
    if run.summary is None:
        why = "no summary.json" if run.timed_out else f"exit code {run.exit_code}"
        last = run.tail[-1] if run.tail else "no output"
        return f"{head} ({why}): {last}"
    got = {k[1]: r.value for k, r in readings(run.summary).items() if k[0] == "main"}
    figures = [
        f"web failed {fmt(got.get('web failure ratio'), 'number')}",
        f"app failed {fmt(got.get('app failure ratio'), 'number')}",
        f"website share {fmt(got.get('website share of user reports'), 'number')} "
        f"of {fmt(got.get('user reports'), 'count')} reports",
        *(f"{label} {fmt(got[label], 'number')}" for label in FROM_EXPECTATIONS if label in got),
        f"users hurt {fmt(got.get('users hurt'), 'count')}",
    ]
    line = f"{head} | " + ", ".join(figures)
    deviated = [
        f"{e.name} ({fmt(_number(e.measured), 'number')}, wanted {e.bound})"
        for e in run.summary.expectations
        if not e.held
    ]
    problems = "; ".join(deviated or run.summary.problems)
    if len(problems) > PROBLEMS_CHARS:
        problems = problems[: PROBLEMS_CHARS - 3] + "..."
    return line + (f" | not held: {problems}" if problems and run.verdict != "held" else "")


# --------------------------------------------------------------------------- the runs


def last_lines(path: Path, n: int = TAIL_LINES) -> list[str]:
    try:
        lines = [
            ln.rstrip()
            for ln in path.read_text(errors="replace").splitlines()
            if ln.strip() and not ln.startswith(COMMAND_MARK)
        ]
    except OSError:
        return []
    return lines[-n:]


def run_once(index: int, cmd: list[str], out: Path, work: Path, timeout_s: float) -> Run:
    """One ``failwhale run`` on a fresh free-port lab; its summary, or its exit code and last lines."""
    from chaos.lab.ports import free_port_lab_config
    from chaos.lab.supervisor import die_with_parent

    lab_dir = work / f"lab-{index:02d}"
    lab_dir.mkdir()
    log_path = out / "logs" / f"run-{index:02d}.log"
    before = {d for d in out.iterdir() if d.is_dir()}
    full = [*cmd, "--config", str(free_port_lab_config(lab_dir)), "--out", str(out)]
    started = time.monotonic()
    timed_out = False
    with log_path.open("wb") as log:
        log.write((COMMAND_MARK + " ".join(full) + "\n").encode())
        log.flush()
        # Own session: a Ctrl-C reaches only the bench, which passes one SIGINT on (a second one
        # could cut the run's rollback short). The run dies with the bench anyway.
        proc = subprocess.Popen(
            full,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        # Also on Ctrl-C or SIGTERM: the run rolls back and stops its lab before we go on.
        stop_processes([proc], grace_s=ROLLBACK_GRACE_S)
    seconds = time.monotonic() - started
    new = sorted(d for d in out.iterdir() if d.is_dir() and d not in before)
    run_dir = new[-1] if new else None
    summary = None
    if run_dir is not None:
        try:
            summary = records.read(run_dir / "summary.json", Summary)
        except records.RecordError:
            summary = None  # counted as a crash: its exit code and last lines say why
    if summary is not None:
        shutil.rmtree(lab_dir, ignore_errors=True)  # its Prometheus data; a crashed run's logs are kept
    return Run(
        index,
        proc.returncode,
        seconds,
        summary,
        str(run_dir) if run_dir else None,
        str(log_path),
        [] if summary is not None else last_lines(log_path),
        timed_out,
    )


def machine_line(load_start: float, load_end: float | None) -> str:
    cpus = len(os.sched_getaffinity(0))
    end = f", {load_end:.2f} at the end" if load_end is not None else ""
    return f"machine: {cpus} CPU(s) usable; 1-minute load average {load_start:.2f} at the start{end}"


def resolve_scenario(name: str, quick: bool):
    """The scenario's file and model, or a BenchError naming what is wrong."""
    from chaos.cli.scenarios import scenario_path  # the one place `failwhale run` resolves names
    from chaos.errors import BadInput
    from chaos.scenario import load_scenario

    try:
        path = scenario_path(name).resolve()
        scenario = load_scenario(path)
    except BadInput as e:
        raise BenchError(str(e)) from e
    if quick and scenario.quick is None:
        raise BenchError(f"{path.stem}: the scenario has no quick variant: add --full")
    return path, scenario


def bench(args: argparse.Namespace) -> int:
    from chaos.errors import ChaosError
    from chaos.lab.provision import find_prometheus

    quick = not args.full
    path, scenario = resolve_scenario(args.scenario, quick)
    try:
        if find_prometheus() is None:
            raise BenchError("Prometheus not found: run `make setup` (or set PROMETHEUS_BIN)")
    except ChaosError as e:  # PROMETHEUS_BIN set to something that is not a program
        raise BenchError(f"{e}: fix it, or run `make setup`") from e
    name = path.stem
    out = (args.out or Path("reports") / "stability" / f"{name}-{time.strftime('%Y%m%dT%H%M%S')}").resolve()
    if (out / "stability.json").exists():
        raise BenchError(f"{out} already holds a stability table: give another --out")
    try:
        (out / "logs").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BenchError(f"cannot use {out} for the runs: {e.strerror or e}") from e
    cmd = [sys.executable, "-m", "chaos.cli", "run", str(path), *(["--quick"] if quick else [])]
    if args.scale is not None:
        cmd += ["--scale", f"{args.scale:g}"]
    speed = scenario.quick.speed if quick else scenario.speed
    expected = scenario.duration / speed + (25 if quick else 40)  # `failwhale run` says the same
    timeout_s = 3 * expected + 120
    variant = ("quick" if quick else "full") + (f", --scale {args.scale:g}" if args.scale is not None else "")
    title = f"{name} ({variant}): {args.runs} run{'s' if args.runs != 1 else ''}, each on a fresh lab"
    load_start = os.getloadavg()[0]
    print(f"{title}; about {expected:.0f} s a run, {args.runs * expected / 60:.0f} min in all", flush=True)
    print(f"run folders, their output (logs/) and stability.json in {out}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="failwhale-stability-"))
    runs: list[Run] = []
    meta = {
        "scenario": name,
        "scenario_file": str(path),
        "quick": quick,
        "smoke": args.smoke,
        "scale": args.scale,
        "runs_asked": args.runs,
        "command": cmd,
        "out": str(out),
        "started": time.time(),
        "cpus": len(os.sched_getaffinity(0)),
        "load_average_start": load_start,
    }

    def save(done: bool) -> dict[str, Any]:
        table = build_table(runs)
        data = meta | {"finished": done, "load_average_end": os.getloadavg()[0]} | table
        (out / "stability.json").write_text(json.dumps(data, indent=1), encoding="utf-8")
        return data

    try:
        for k in range(1, args.runs + 1):
            run = run_once(k, cmd, out, work, timeout_s)
            runs.append(run)
            save(done=False)
            print(progress_line(run, args.runs), flush=True)
            if run.summary is None and run.exit_code == 2:
                # Bad input is the same for every run: say it once instead of N times.
                raise BenchError(
                    f"`failwhale run` refused its input (exit code 2): "
                    f"{run.tail[-1] if run.tail else 'no output'}; log: {run.log}"
                )
    except KeyboardInterrupt:
        if runs:
            print(f"\ninterrupted after {len(runs)} run(s); they are in {out / 'stability.json'}", file=sys.stderr)
        raise
    finally:
        # A crashed run's lab logs say why it crashed; a refused one never started its lab.
        crashed = [r for r in runs if r.summary is None and r.exit_code != 2]
        if not crashed:
            shutil.rmtree(work, ignore_errors=True)
    data = save(done=True)
    print()
    print(format_table(data, f"{title}\n{machine_line(load_start, data['load_average_end'])}"))
    print(f"\nthe table with every run's values: {out / 'stability.json'}; reports: {out / 'index.html'}")
    if args.smoke:
        print(SMOKE_NOTE)
    if crashed:
        print(f"the lab folders (service logs, Prometheus data) of the crashed runs are kept in {work}")
    return 0


# --------------------------------------------------------------------------- the command


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, as every failwhale command says what is wrong
        self.exit(2, f"error: {message} (see --help)\n")


def _checked(kind, ok, what: str):
    """An argparse type whose one-line error says what is allowed."""

    def parse(text: str):
        try:
            n = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not (math.isfinite(n) and ok(n)):
            raise argparse.ArgumentTypeError(f"{text} is out of range: use {what}")
        return n

    return parse


def parser() -> argparse.ArgumentParser:
    intro, rest = __doc__.split("\n\n", 1)
    p = _Parser(
        prog="python -m bench.stability",
        description=intro,
        epilog=rest.split("Run it from")[0].strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--scenario",
        metavar="NAME",
        default=HEADLINE,
        help="a catalog scenario (failwhale list) or a scenario file (default: %(default)s)",
    )
    p.add_argument(
        "--full", action="store_true", help="play the scenario at its own speed instead of its quick variant"
    )
    p.add_argument(
        "--runs",
        type=_checked(int, lambda n: 1 <= n <= MAX_RUNS, f"a whole number from 1 to {MAX_RUNS}"),
        default=DEFAULT_RUNS,
        metavar="N",
        help="how many runs, one after the other (default: %(default)s)",
    )
    # failwhale run says how large K may be; only what can never work is refused here.
    p.add_argument(
        "--scale",
        type=_checked(float, lambda k: k > 0, "a number above 0"),
        metavar="K",
        help="pass --scale K to every failwhale run: K times the users and the capacities "
        "(default: not passed, the scenario's own)",
    )
    p.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="where the run folders, their output (logs/) and stability.json go "
        "(default: reports/stability/<scenario>-<time>/)",
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help=f"about a minute, to show the bench still works: --runs {SMOKE['runs']} of "
        f"{SMOKE_SCENARIO.relative_to(REPO_ROOT)} (both deviate by design) --full (flags given still win)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parse_args(parser(), argv, SMOKE)
    return run_main(bench, args, "the run in progress rolled back and stopped its lab")


if __name__ == "__main__":
    sys.exit(main())
