"""A run's figures and verdict: each phase measured from Prometheus, each expectation judged on its
measured value, the comparison with another scenario's run, and ``summary.json`` and ``series.json``
written through :mod:`chaos.records`."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from chaos import measure, records, series
from chaos.errors import LabError
from chaos.records import (
    Comparison,
    ExpectationResult,
    PhaseFigures,
    PhaseSpan,
    RecordError,
    Series,
    Summary,
    Verdict,
    Window,
    WorksForMeProbe,
)
from chaos.scenario import Expectation, Phase, Scenario
from loadtest.ledger import read_ledger
from services.tweets.store import db_path, stored_ids

if TYPE_CHECKING:
    from chaos.engine.runner import Runner

SERIES_LEAD_S = 5.0  # wall seconds of warm-up kept in series.json, to show the baseline


LOST_NOT_MEASURED = "not measured: the tweets databases or the load's ledger are not on this machine (docs/deploy.md)"


def judge(e: Expectation, value: float | None, figures: Window) -> ExpectationResult:
    """One expectation as the summary keeps it: held or not on the measured value alone.

    A share of user reports also carries its 95% Wilson interval and how many reports it rests
    on, for whoever reads the report; the interval decides nothing (see docs/reports.md)."""
    out = ExpectationResult(name=e.name, phase=e.phase, bound=e.bound(), measured=value, held=e.holds(value))
    if e.measure and e.measure.startswith("reports.") and e.measure.endswith("_share"):
        interval = measure.report_share_interval(figures, e.measure)
        if interval is not None:
            out.interval, out.reports = (round(interval[0], 3), round(interval[1], 3)), interval[2]
    return out


def focus_phase(scenario: Scenario) -> str:
    """The phase the headline figures come from: the first one an expectation about users names."""
    for e in scenario.expectations:
        if e.measure and e.measure.startswith(("web.", "app.")):
            return e.phase
    return scenario.phases[0].name


def summarise(run: Runner, verdict: Verdict, problems: list[str], t0: float | None) -> Summary:
    """Measure every phase and expectation, save series.json, and write summary.json."""
    assert run.lab is not None and run.run_dir is not None  # the lab ran
    if not run.attach:
        run.lab.stop_instance("loadgen")  # final counts scraped, then stopped
    time.sleep(1.5)
    acked, lost = lost_tweets(run)
    # A workshop measures the game as it went, not as the scenario planned it.
    s = run.scenario if t0 is None else run.hooks.as_played(t0, run.scenario)
    summary = Summary(
        scenario=run.name,
        title=s.title,
        verdict=verdict,
        problems=problems,
        speed=run.speed,
        quick=run.quick,
        scale=run.scale_k,
        duration=s.duration,
        focus_phase=run.hooks.focus_phase(focus_phase(s)),
        status_page=status_share(run.status_samples, 0, s.duration),
        works_for_me=run.probes,
        acked_tweets=acked,
        lost_tweets=lost,
        teaches=s.teaches,
        description=s.description,
        facts=s.incident.facts,
        incident_date=s.incident.date,
        run_dir=str(run.run_dir),
        started=t0,
        dashboard=run.dashboard_shots,
    )
    if t0 is not None:
        measure_run(run, s, summary, t0, lost)
    run.hooks.summarised(summary)
    records.write(run.run_dir / "summary.json", summary)
    for e in summary.expectations:
        within = (
            f"; 95% interval {e.interval[0]:g}-{e.interval[1]:g} of {e.reports} reports, for information"
            if e.interval
            else ""
        )
        run.say(f"  {'held' if e.held else 'DEVIATED':<9}{e.name}: {e.measured} (wanted {e.bound}){within}")
    return summary


def measure_run(run: Runner, s: Scenario, summary: Summary, t0: float, lost: int | None) -> None:
    """The figures of each phase and of the whole run, the series and alerts, and the expectations."""
    prom = run.url("prometheus")
    figures: dict[str, Window] = {}
    for p in s.phases:
        f = figures[p.name] = measure.window(prom, t0 + run.wall(p.start), t0 + run.wall(p.end))
        summary.phases[p.name] = PhaseFigures(
            start=p.start,
            end=p.end,
            web=f.clients["web"],
            app=f.clients["app"],
            reasons=f.reasons,
            user_reports=f.user_reports,
            health_checks=f.health_checks,
            status_page=status_share(run.status_samples, p.start, p.end),
            works_for_me=[x for x in run.probes if p.start <= x.at <= p.end],
        )
        if f.clients["web"].journeys + f.clients["app"].journeys == 0:
            # Every expectation of this phase then reads "None": say why, so nobody hunts a bug in the lab.
            summary.problems.append(
                f"phase '{p.name}': no journey was counted in it (Prometheus has no fresh scrape of the load "
                "generator there: an overloaded machine, or a phase too short at this speed)"
            )
    whole = measure.window(prom, t0, t0 + run.wall(s.duration))
    summary.user_reports, summary.health_checks = whole.user_reports, whole.health_checks
    summary.users_hurt = {c: whole.clients[c].users_hurt for c in measure.CLIENTS}
    save_series(run, s, summary, t0)
    if s.compare:
        summary.comparison = compare(run, s.compare.against, sum(summary.users_hurt.values()))
    for e in s.expectations:
        value = expectation_value(run, s, e, summary, figures, t0, lost)
        judged = judge(e, value, figures[e.phase])
        summary.expectations.append(judged)
        if not judged.held and summary.verdict == "held":
            summary.verdict = "deviated"
            c = summary.comparison
            why = c.missing if c is not None and e.measure == "comparison.times_fewer" else None
            if e.measure == "lost_tweets" and lost is None:
                why = LOST_NOT_MEASURED
            summary.problems.append(
                f"expectation '{e.name}' measured {value} (wanted {judged.bound})" + (f": {why}" if why else "")
            )


def save_series(run: Runner, s: Scenario, summary: Summary, t0: float) -> None:
    """series.json and the alerts, saved before the lab stops: the next lab start wipes Prometheus's data."""
    assert run.run_dir is not None and run.journal is not None  # made as the run starts
    prom = run.url("prometheus")
    try:
        summary.alerts = series.alerts(prom, t0=t0, end=time.time(), speed=run.speed)
        data = series.export(prom, t0=t0, end=time.time(), speed=run.speed, lead_s=SERIES_LEAD_S)
    except LabError as e:  # the verdict and figures still matter without the plots
        run.say(f"warning: no series.json, so no plots: {e}")
        return
    summary.trouble = series.time_to_recover(data)
    summary.time_to_recover_s = summary.trouble.seconds if summary.trouble else None
    marks = series.marks_from_journal(run.journal.entries, t0, run.speed) + series.alert_marks(summary.alerts)
    records.write(
        run.run_dir / "series.json",
        Series(
            scenario=run.name,
            speed=run.speed,
            duration=s.duration,
            t0=t0,
            step=max(0.25, 1 / run.speed) * run.speed,
            phases=[PhaseSpan(name=p.name, start=p.start, end=p.end) for p in s.phases],
            marks=marks,
            series=data,
        ),
    )


def expectation_value(
    run: Runner,
    s: Scenario,
    e: Expectation,
    summary: Summary,
    figures: dict[str, Window],
    t0: float,
    lost: int | None,
) -> float | None:
    """What an expectation measured in its phase; a bad PromQL query is its problem, not the run's."""
    p = next(p for p in s.phases if p.name == e.phase)
    if e.measure == "comparison.times_fewer":
        return summary.comparison.times_fewer if summary.comparison else None
    if e.measure == "status_page":
        return summary.phases[p.name].status_page
    if e.measure in ("works_for_me", "works_for_me.web_failed"):
        return probe_share(run.probes, p, e.measure)
    if e.measure:
        return measure.measure(figures[p.name], e.measure, lost)
    assert e.promql is not None  # an expectation has a measure or a query (chaos.scenario checks)
    try:
        return measure.phase_scalar(run.url("prometheus"), e.promql, t0 + run.wall(p.start), t0 + run.wall(p.end))
    except LabError as err:
        summary.problems.append(f"expectation '{e.name}': {err}")
        return None


def status_share(samples: list[tuple[float, bool]], start: float, end: float) -> float | None:
    """Share of the status page's readings in [start, end) (scenario s) that said operational."""
    seen = [ok for t, ok in list(samples) if start <= t < end]
    return round(sum(seen) / len(seen), 4) if seen else None


def probe_share(probes: list[WorksForMeProbe], phase: Phase, name: str) -> float | None:
    """works_for_me: share of probes whose app user saw a timeline; .web_failed: whose fresh web visit failed."""
    seen = [x for x in probes if phase.start <= x.at <= phase.end]
    if not seen:
        return None
    if name == "works_for_me":
        return sum(x.app_user.sees == "timeline" for x in seen) / len(seen)
    return sum(x.web_visit.page != "ok" for x in seen) / len(seen)


def compare(run: Runner, against: str, users_hurt: int) -> Comparison:
    """Users hurt here against the newest finished run of the other scenario in the same folder."""
    for folder in sorted(run.out.glob(f"{against}-*"), reverse=True):
        try:
            other = records.read(folder / "summary.json", Summary)
        except RecordError:
            continue  # unfinished, or written by another failwhale
        # Users hurt compare only between runs of the same kind: quick or not, and at the same scale.
        if other.scenario != against or other.verdict == "aborted" or other.quick != run.quick:
            continue
        if other.scale != run.scale_k:
            continue
        theirs = sum(other.users_hurt.values())
        # With no user hurt here, "times fewer" is at least their count: divide by one.
        return Comparison(
            against=against,
            against_run=folder.name,
            users_hurt=users_hurt,
            against_users_hurt=theirs,
            times_fewer=round(theirs / max(users_hurt, 1), 2),
        )
    missing = f"no finished run of {against} in {run.out} to compare with (run it first; make scenarios does)"
    run.say(missing)
    return Comparison(against=against, users_hurt=users_hurt, missing=missing)


def lost_tweets(run: Runner) -> tuple[int, int | None]:
    """Tweets the load saw acknowledged, and how many of them no tweets database holds; None for
    the second when this machine cannot tell: an attached run on a lab whose tweets databases,
    or whose load's ledger, live on other machines."""
    assert run.lab is not None and run.run_dir is not None
    # Attached runs use the lab's running load, which keeps its ledger in the lab's folder.
    ledger = (run.lab.lab.data_path / "load" if run.attach else run.run_dir) / "ledger"
    acked = read_ledger(ledger) if ledger.exists() else []
    databases = [
        db_path(run.lab.lab.data_path, n) for n, kind in run.lab.arch.instance_kinds().items() if kind == "tweets"
    ]
    if any(not db.exists() for db in databases) or (run.attach and not ledger.exists()):
        return len(acked), None
    stored: set[int] = set()
    for db in databases:
        stored |= stored_ids(db)
    return len(acked), len(set(acked) - stored)
