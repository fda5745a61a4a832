"""``failwhale run``: play a scenario against a fresh lab under load, and always roll back.

The run: start the lab and the load, warm up, check the steady state, play the timeline in
compressed time (scenario seconds / speed), run the scenario's rollbacks whatever happened
(normal end, failed step, Ctrl-C, SIGTERM), check the steady state again, measure each phase
from Prometheus, and write ``<out>/<scenario>-<timestamp>/`` with ``journal.json`` (every action
with start, end and outcome, written as it happens) and ``summary.json`` (the verdict).

At a scale k (the scenario's ``load.scale``, or ``--scale``) the load has k times the users,
and the lab's architecture, each rollout's and each injected fault k times the capacities
(rate limits, concurrency); time constants stay (see ``Architecture.scaled``).

Exit codes: 0 expectations held, 1 a hypothesis or expectation deviated, 2 bad input,
130 interrupted (after rolling back).
"""

from __future__ import annotations

import asyncio
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.metrics_core import GaugeMetricFamily
from prometheus_client.registry import Collector

from chaos import camera, measure, probe, promql, records, series
from chaos.camera import Camera
from chaos.control import LabControl, halt
from chaos.errors import BadInput, ChaosError, LabError
from chaos.lab.supervisor import DASHBOARD, DEFAULT_SPAWN_PER_S, Lab, LoadOptions
from chaos.lease import LeaseKeeper
from chaos.probe import AppUser, describe, fresh_web_visit
from chaos.records import (
    AppUserView,
    Comparison,
    ExpectationResult,
    Journal,
    PhaseFigures,
    PhaseSpan,
    ProbeEntry,
    ProbeResult,
    RecordError,
    RestartEntry,
    RollbackEntry,
    Series,
    Shot,
    SteadyStateEntry,
    StepEntry,
    Summary,
    Verdict,
    Window,
    WorksForMeProbe,
)
from chaos.rollout import plan_waves, rollback, rollout
from chaos.scenario import Expectation, Inject, Kill, Note, Pause, Rollback, Rollout, Scenario, WorksForMe
from configfiles.errors import ConfigError
from loadtest.ledger import read_ledger
from services.architecture import load_architecture
from services.architecture.model import scaled_count
from services.tweets.store import db_path, stored_ids

# Step counters start at zero for every action and outcome (see Events).
STEP_ACTIONS = ("inject", "rollout", "rollback", "kill", "pause", "note", "works_for_me")
STEP_OUTCOMES = ("ok", "rolled_back", "failed", "skipped")
EXIT_HELD, EXIT_DEVIATED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
WARMUP_S = 8.0  # wall seconds of healthy load before the steady-state check
QUICK_WARMUP_S = 5.0
# Where in each phase the dashboard is photographed: late, once the phase has shown itself,
# and before the step that ends it.
PHOTO_AT = 0.8
# Wall seconds a photograph takes: three visits to the site and one look at the dashboard.
PHOTO_TAKES_S = 2.5
SERIES_LEAD_S = 5.0  # wall seconds of warm-up kept in series.json, to show the baseline
SETTLE_S = 15.0  # more wall seconds of warm-up allowed when the steady state does not hold yet
RECOVERY_S = 20.0  # wall seconds allowed for the steady state to return after rollback
PROGRESS_QUERY_TIMEOUT_S = 1.5  # the progress line's query: it must never hold the timeline up
Say = Callable[[str], None]


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


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: stop the timeline, roll back, exit 130."""


class _ScenarioClock(Collector):
    """``failwhale_chaos_scenario_seconds``: present only while a timeline plays, so dashboards
    can tell scenario time from wall time and show nothing outside a run."""

    def __init__(self, events: Events) -> None:
        self.events = events

    def describe(self) -> list:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self.events.scenario_now()
        if now is not None:
            yield GaugeMetricFamily(
                "failwhale_chaos_scenario_seconds", "The scenario's clock: seconds since its t = 0.", value=now
            )


class Events:
    """The run as Prometheus sees it (job ``chaos``): steps by outcome, the phase now, faults sent."""

    def __init__(self, port: int | None, host: str) -> None:
        self.registry = r = CollectorRegistry()
        self.steps = Counter(
            "failwhale_chaos_steps_total",
            "Scenario steps run, by action and outcome.",
            ["action", "outcome"],
            registry=r,
        )
        self.phase = Gauge("failwhale_chaos_phase", "1 while the scenario is in this phase.", ["phase"], registry=r)
        self.running = Gauge("failwhale_chaos_run_active", "1 while a scenario run plays its timeline.", registry=r)
        # Every action and outcome from zero, so a step's first occurrence is an increase that
        # dashboards can mark (a series born at 1 has no increase to see).
        for action in STEP_ACTIONS:
            for outcome in STEP_OUTCOMES:
                self.steps.labels(action, outcome)
        self._t0: float | None = None
        self._speed = 1.0
        r.register(_ScenarioClock(self))
        self.server = start_http_server(port, addr=host, registry=r)[0] if port else None

    def scenario_now(self) -> float | None:
        return None if self._t0 is None else (time.time() - self._t0) * self._speed

    def start_clock(self, t0: float, speed: float) -> None:
        self._t0, self._speed = t0, speed
        self.running.set(1)

    def stop_clock(self) -> None:
        self._t0 = None
        self.running.set(0)

    def close(self) -> None:
        """Free the port: `failwhale scenarios` plays many runs in one process."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@dataclass
class Runner:
    scenario: Scenario
    name: str
    out: Path
    speed: float
    lab_config: Path | None = None
    say: Say = print
    # Use the lab `failwhale up` is running (with its own load) instead of starting one.
    attach: bool = False
    # Play the scenario's quick variant (its `quick:` speed and users).
    quick: bool = False
    # k times the users and every per-time capacity (Architecture.scaled); None: the scenario's load.scale.
    scale: float | None = None
    # Set when the run winds down (the timeline's end, an error, Ctrl-C): waits cut short.
    stopping: threading.Event = field(default_factory=threading.Event, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.scale is None:
            self.scale = self.scenario.load.scale
        if self.scale <= 0:
            raise BadInput(f"scale must be above 0, not {self.scale:g}")
        self.keeper: LeaseKeeper | None = None  # renews this run's architecture changes once the lab is up
        # What a run makes as it goes, None until then (a run that failed early has none of them).
        self.run_dir: Path | None = None
        self.journal: Journal | None = None
        self.lab: Lab | None = None
        self.control: LabControl | None = None
        self.events: Events | None = None
        self.restarter: ThreadPoolExecutor | None = None
        self.camera: Camera | None = None
        self.t0: float | None = None  # wall clock of scenario time 0, once the timeline starts
        self.arch_lock = threading.Lock()  # one writer of the running architecture at a time
        self.app_user: AppUser | None = None
        self.probes: list[WorksForMeProbe] = []
        self.status_samples: list[tuple[float, bool]] = []
        self.dashboard_shots: list[Shot] = []

    @property
    def warmup_s(self) -> float:
        return QUICK_WARMUP_S if self.quick else WARMUP_S

    def wall(self, scenario_s: float) -> float:
        return scenario_s / self.speed

    # ---- the run --------------------------------------------------------------------------

    def run(self) -> int:
        """Play the scenario and write its run folder; the exit code (held 0, deviated 1, aborted 130)."""
        self.check_options()
        self.run_dir = self.out / f"{self.name}-{time.strftime('%Y%m%dT%H%M%S')}"
        self.run_dir.mkdir(parents=True, exist_ok=False)
        self.journal = Journal(self.run_dir / "journal.json", self.name)
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

        def interrupt(signum, _frame):
            raise Interrupted(signal.Signals(signum).name)

        signal.signal(signal.SIGINT, interrupt)
        signal.signal(signal.SIGTERM, interrupt)
        self.lab = Lab.from_files(self.lab_config, say=self.say)
        # The children start from architecture.json, written from this: their baseline is scaled too.
        self.lab.arch = self.lab.arch.scaled(self.scale)
        self.restarter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="restart")
        self.verdict: Verdict = "held"
        self.problems: list[str] = []
        try:
            self.start_and_play()
        except Interrupted as e:
            self.verdict, self.problems = "aborted", [f"interrupted by {e}"]
            self.say(f"\ninterrupted by {e}: rolling back")
        finally:
            # Nothing may stop the rollbacks now, not even a second Ctrl-C.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            try:
                self.wind_down()
            finally:
                self.shut_down()
                for s, handler in previous.items():
                    signal.signal(s, handler)
        verdict, problems = self.verdict, self.problems
        self.say(f"verdict: {verdict.upper()}" + (f" ({'; '.join(problems)})" if problems else ""))
        return {"held": EXIT_HELD, "deviated": EXIT_DEVIATED, "aborted": EXIT_INTERRUPTED}[verdict]

    def check_options(self) -> None:
        if self.attach and any(isinstance(s, Kill) for s in self.scenario.timeline):
            raise BadInput("kill steps need processes this run starts itself: run without --attach")
        if self.attach and self.scale != 1:
            # The running lab's load and starting architecture are not this run's to scale.
            raise BadInput(
                f"scale {self.scale:g} needs the lab and load this run starts itself: "
                "run without --attach, or with --scale 1"
            )

    def start_and_play(self) -> None:
        """Start (or attach to) the lab and its load, warm up, check the steady state, play the timeline."""
        self.say(f"run folder {self.run_dir}")
        self.say(self.scale_line())
        if self.attach:
            self.control = LabControl.connect(self.lab.lab, self.lab.arch)
            self.say(f"attached to the running lab ({self.lab.url('web')}/) and its load")
        else:
            took = self.lab.start()
            self.say(f"lab ready in {took:.1f}s")
            self.control = LabControl.connect(self.lab.lab, self.lab.arch)
        # This run owns its architecture changes: they live while it renews them, no longer.
        self.keeper = LeaseKeeper(self.control, say=lambda m: self.say("\n" + m)).start()
        self.on_lab_ready()
        self.events = Events(self.lab.lab.ports.get("chaos-metrics"), self.lab.lab.host)
        if not self.attach:
            self.start_load()
        self.open_camera()
        self.sleep_until(time.time() + self.warmup_s, "warm-up", None)
        if not self.settled():
            self.verdict, self.problems = "deviated", ["steady state did not hold before the timeline"]
            return
        self.warm_probe()
        t0 = self.t0 = time.time()
        self.watch_status_page(t0)
        self.events.start_clock(t0, self.speed)
        self.start_camera(t0)
        failed = self.play(t0)
        if failed:
            self.verdict, self.problems = "deviated", [failed]
        self.until_end(t0)

    def start_load(self) -> None:
        """The scenario's users, for the warm-up, the timeline and the steady-state check after it."""
        load = self.scenario.load
        extra = (
            "--app-cache",
            "on" if load.app_cache else "off",
            "--app-retries",
            str(load.app_retries),
            "--app-jitter",
            "on" if load.app_jitter else "off",
            "--web-reloads",
            str(load.web_reloads),
            "--think",
            *(f"{t:g}" for t in load.think_s),
            "--app-signed-in",
            f"{load.app_signed_in:g}",
        )
        tail = RECOVERY_S + 15  # the load outlasts the timeline: the steady-state check after it, and a margin
        total = self.warmup_s + self.load_s() + tail
        # The load's evening follows the scenario, however much longer the load runs after it.
        evening = self.warmup_s + self.wall(self.scenario.duration) + tail
        self.lab.start_load(
            LoadOptions(
                peak_users=self.peak_users(),
                web_share=load.web_share,
                shape=load.shape,
                duration_s=total,
                evening_s=evening if total > evening else 0.0,
                spawn_per_s=self.spawn_per_s(),
                extra=extra,
            ),
            self.run_dir,
        )

    def wind_down(self) -> None:
        """Roll back, check the steady state came back, and write the summary (when the lab got that far)."""
        if self.control is None or self.events is None:
            return
        self.events.stop_clock()
        self.stopping.set()
        if self.camera is not None:
            self.dashboard_shots = self.camera.finish()
        self.rollbacks()
        if self.verdict != "aborted" and not self.recovered():
            self.verdict = "deviated"
            self.problems.append("steady state did not return after rollback")
        self.verdict = self.summarise(self.verdict, self.problems, self.t0).verdict

    def shut_down(self) -> None:
        """Stop everything this run started, whatever happened before."""
        self.stopping.set()
        if self.keeper is not None:
            self.keeper.stop()  # whatever the rollbacks could not undo lapses within a lease
        if self.camera is not None:
            self.camera.finish(timeout_s=5)  # closes the browser if the run ended early
        if self.restarter is not None:
            self.restarter.shutdown(wait=False, cancel_futures=True)
        if self.events is not None:
            self.events.close()
        if self.lab is not None:
            stopped = self.lab.stop()
            if stopped:
                self.say(f"stopped {stopped} processes")

    # ---- timeline ---------------------------------------------------------------------------

    def spawn_per_s(self) -> float:
        """Users the load starts (or stops) per second: K times as many users arrive K times as fast,
        so a scaled run's users are in place when its unscaled twin's are."""
        return DEFAULT_SPAWN_PER_S * self.scale

    def peak_users(self) -> int:
        """The load's users at the evening peak: the scenario's (or its quick variant's), scaled."""
        quick = self.scenario.quick
        users = quick.users if self.quick and quick and quick.users else self.scenario.load.users
        return scaled_count(users, self.scale)

    def scale_line(self) -> str:
        """What the run's scale means for this run, said before the lab starts."""
        if self.attach:
            return "scale 1: the running lab's own load and architecture"
        if self.scale == 1:
            return f"scale 1: {self.peak_users()} users at the peak, capacities as the architecture files say"
        return (
            f"scale {self.scale:g}: {self.peak_users()} users at the peak; rate limits and concurrency capacities "
            f"x{self.scale:g} (in the architecture files and injected faults), time constants as they are"
        )

    def load_s(self) -> float:
        """How long the load runs after its warm-up, in wall seconds: the scenario's length."""
        return self.wall(self.scenario.duration)

    def on_lab_ready(self) -> None:
        """Called once the lab runs and answers its control plane (a workshop opens its levers)."""

    def until_end(self, t0: float) -> None:
        """After the last step: wait for the scenario's end (a workshop waits for its facilitator)."""
        self.sleep_until(t0 + self.wall(self.scenario.duration), "to the end", t0)

    def play(self, t0: float) -> str | None:
        """Run every step at its time; the first failed step ends the timeline (its reason)."""
        for i, step in enumerate(self.scenario.timeline):
            self.sleep_until(t0 + self.wall(step.at), f"step {i + 1}", t0)
            label = step.name or step.action
            entry = self.journal.start(StepEntry(index=i, action=step.action, name=label, at=step.at))
            try:
                outcome, detail = self.do(step)
            except ChaosError as e:
                self.journal.end(entry, "failed", error=str(e))
                self.events.steps.labels(step.action, "failed").inc()
                return f"step {i + 1} ({label}) failed: {e}"
            self.journal.end(entry, outcome, **detail)
            self.events.steps.labels(step.action, outcome).inc()
            self.say(f"\n[{step.at:>6.0f}s] {label}: {outcome}" + (f" ({detail['note']})" if "note" in detail else ""))
        return None

    def do(self, step) -> tuple[str, dict[str, Any]]:
        """Play one step: its outcome, and the detail the journal keeps (fields of ``StepEntry``)."""
        if isinstance(step, Note):
            return "ok", {"note": step.text}
        if isinstance(step, Pause):
            time.sleep(self.wall(step.seconds))
            return "ok", {}
        if isinstance(step, Inject):
            return self.inject(step)
        if isinstance(step, Rollout):
            return self.roll_out(step)
        if isinstance(step, WorksForMe):
            return self.works_for_me(step)
        if isinstance(step, Rollback):
            stuck = asyncio.run(rollback(self.control, keeper=self.keeper))
            if stuck:
                raise ChaosError(f"no answer from {', '.join(stuck)}")
            return "ok", {}
        if isinstance(step, Kill):
            return self.kill(step)
        raise ChaosError(f"unknown step {step!r}")

    def inject(self, step: Inject) -> tuple[str, dict[str, Any]]:
        # kind has no default, so it is always in the dump; the TTL runs in wall time.
        faults = [
            f.model_dump(exclude_defaults=True) | {"ttl_s": max(1.0, self.wall(f.ttl_s))}
            for f in step.scaled(self.scale or 1).faults
        ]
        answers = asyncio.run(self.control.each("POST", "/control/faults", json={"faults": faults}, only=step.target))
        bad = [f"{a.instance}: {a.body}" for a in answers if not a.ok]
        if bad:
            raise ChaosError(f"faults refused: {'; '.join(bad)}")
        return "ok", {
            "note": f"{len(faults)} fault(s) on {', '.join(step.target)}",
            "ttl_s": max(f.ttl_s for f in step.faults),
        }

    def roll_out(self, step: Rollout) -> tuple[str, dict[str, Any]]:
        path = (self.scenario.source.parent / step.architecture).resolve()
        try:
            new = load_architecture(path).scaled(self.scale or 1)
        except ConfigError as e:
            raise ChaosError(str(e)) from e
        waves = plan_waves(new, step.waves)
        result = asyncio.run(
            rollout(
                self.control,
                new,
                waves,
                bake_s=self.wall(step.bake),
                guard=step.guard,
                guard_every_s=max(0.25, self.wall(step.guard_every)),
                prometheus_url=self.lab.url("prometheus"),
                say=lambda m: self.say("\n" + m),
                hold=self.rollout_hold,
                lock=self.arch_lock,
                keeper=self.keeper,
            )
        )
        return "rolled_back" if result.rolled_back else "ok", {
            "note": result.reason or f"{new.version} on {result.completed_waves}/{result.total_waves} waves",
            "waves": waves,
            "completed_waves": result.completed_waves,
            "wave_times": result.wave_times,
            "rolled_back_at": result.rolled_back_at,
            "guard_breached": result.guard_breached,
        }

    def works_for_me(self, step: WorksForMe) -> tuple[str, dict[str, Any]]:
        app = (
            self.app_user.look()
            if self.app_user
            else AppUserView(sees="error", fresh=False, refresh_error="could not sign in before the timeline")
        )
        web = fresh_web_visit(self.lab.url("web"))
        self.probes.append(WorksForMeProbe(at=step.at, app_user=app, web_visit=web))
        return "ok", {"note": describe(app, web), "app_user": app, "web_visit": web}

    def kill(self, step: Kill) -> tuple[str, dict[str, Any]]:
        if step.target not in self.lab.procs:
            raise ChaosError(f"no process named {step.target}")
        self.lab.stop_instance(step.target, signal.SIGKILL)
        if step.restart_after is not None:
            # Not a Timer thread: a child dies when the *thread* that started it ends (Linux's
            # parent-death signal is per thread), so restarts run on one long-lived worker.
            self.restarter.submit(self._restart, step.target, time.time() + self.wall(step.restart_after))
        return "ok", {"note": f"killed {step.target}"}

    # ---- probes -----------------------------------------------------------------------------

    def shown_phase(self, name: str) -> str:
        """A phase's name as the progress line and Prometheus show it."""
        return name

    def rollout_hold(self) -> str:
        """Between a rollout's waves: "go" on. (A workshop's participants may pause or stop it.)"""
        return "go"

    def needs_app_user(self) -> bool:
        return any(isinstance(s, WorksForMe) for s in self.scenario.timeline)

    def warm_probe(self) -> None:
        """Sign the "works for me" app user in and load their timeline, before anything breaks."""
        if not self.needs_app_user():
            return
        entry = self.journal.start(ProbeEntry(what="works-for-me app user signs in and loads the timeline"))
        user = AppUser(self.lab.url("edge"))
        warmed = user.warm()
        self.app_user = user if warmed else None
        self.journal.end(entry, "ok" if warmed else "failed")

    def open_camera(self) -> None:
        """Start a browser for photographs of the live dashboard and the website, if there is one."""
        if DASHBOARD not in self.lab.lab.ports:
            return
        missing = camera.available()
        if missing:
            self.say(f"no dashboard photographs in this run: {missing}")
            return
        # The charts span the warm-up and the whole timeline, however short a quick run is.
        window = math.ceil(self.warmup_s + self.wall(self.scenario.duration) + 10)
        self.camera = Camera(
            f"{self.lab.url(DASHBOARD)}/?board=overview&window={window}",
            f"{self.lab.url('web')}/",
            self.run_dir / "photos",
            self.say,
            self.stopping,
        )

    def start_camera(self, t0: float) -> None:
        """Photograph late in each phase, when the phase shows at its clearest."""
        if self.camera is not None:
            moments = []
            for p in self.scenario.phases:
                late = p.start + PHOTO_AT * (p.end - p.start)
                # Done before the phase ends, even when a quick run makes it last two seconds.
                moments.append((p.name, max(p.start, min(late, p.end - PHOTO_TAKES_S * self.speed))))
            self.camera.schedule(moments, t0, self.speed)

    def watch_status_page(self, t0: float) -> None:
        """Read the public status page every second, as a user checking it would, until the run ends."""
        url = f"{self.lab.url('web')}/status.json"

        def loop() -> None:
            while not self.stopping.wait(1.0):
                status, body = probe.call("GET", url, probe.WEB_AGENT, timeout_s=2)
                ok = status == 200 and isinstance(body, dict) and body.get("status") == "operational"
                self.status_samples.append(((time.time() - t0) * self.speed, ok))

        threading.Thread(target=loop, name="status-page", daemon=True).start()

    def _restart(self, name: str, when: float) -> None:
        if self.stopping.wait(max(0.0, when - time.time())):
            return  # the run is ending: the final rollbacks restart what is down
        entry = self.journal.start(RestartEntry(target=name))
        try:
            self.lab.start_instance(name)
            self.journal.end(entry, "ok")
        except ChaosError as e:
            self.journal.end(entry, "failed", error=str(e))

    # ---- rollbacks, steady state ---------------------------------------------------------------

    def rollbacks(self) -> None:
        for final in self.scenario.rollbacks:
            entry = self.journal.start(RollbackEntry(action=final.action, target=final.target))
            try:
                if final.action == "halt":
                    answers = asyncio.run(halt(self.control))
                    bad = [a.instance for a in answers if not a.ok]
                    self.keeper.release([a.instance for a in answers if a.ok])
                elif final.action == "rollback":
                    bad = asyncio.run(rollback(self.control, keeper=self.keeper))
                else:  # restart: the named process, or every lab process that is down
                    names = [final.target] if final.target else self.lab.dead()
                    for name in names:
                        self.lab.start_instance(name)
                    bad = []
                self.journal.end(
                    entry, "failed" if bad else "ok", **({"error": f"no answer from {bad}"} if bad else {})
                )
            except ChaosError as e:
                self.journal.end(entry, "failed", error=str(e))
            self.say(f"rollback: {final.action}: {entry.outcome}")

    def probes_hold(self) -> tuple[bool, list[ProbeResult]]:
        results = []
        for p in self.scenario.steady_state.probes:
            value = promql.scalar(self.lab.url("prometheus"), p.promql)
            results.append(ProbeResult(name=p.name, value=value, min=p.min, max=p.max, held=p.holds(value)))
        return all(r.held for r in results), results

    def steady_state(self, when: Literal["before", "after"]) -> bool:
        entry = self.journal.start(SteadyStateEntry(when=when))
        held, results = self.probes_hold()
        self.journal.end(entry, "held" if held else "deviated", probes=results)
        self.say(
            f"steady state {when}: {'held' if held else 'DEVIATED'} "
            + ", ".join(f"{r.name}={r.value if r.value is None else round(r.value, 3)}" for r in results)
        )
        return held

    def settled(self) -> bool:
        """Before the timeline: the probes need data, so give a slow-starting load SETTLE_S more."""
        deadline = time.time() + SETTLE_S
        while not self.probes_hold()[0] and time.time() < deadline:
            time.sleep(1)
        return self.steady_state("before")

    def recovered(self) -> bool:
        """After rollback, give the lab RECOVERY_S to get back to its steady state."""
        deadline = time.time() + RECOVERY_S
        while True:
            held, _ = self.probes_hold()
            if held or time.time() > deadline:
                return self.steady_state("after")
            time.sleep(2)

    # ---- progress ------------------------------------------------------------------------

    def sleep_until(self, when: float, what: str, t0: float | None) -> None:
        """Wait, showing progress: phase, scenario time, and how web and app users are doing now."""
        while (left := when - time.time()) > 0:
            time.sleep(min(left, 2.0))
            if t0 is None:
                continue
            now_s = (time.time() - t0) * self.speed
            phase = self.shown_phase(next((p.name for p in self.scenario.phases if p.start <= now_s < p.end), "-"))
            for name in {self.shown_phase(p.name) for p in self.scenario.phases}:
                self.events.phase.labels(name).set(1 if name == phase else 0)
            try:
                shares = {
                    s["metric"].get("client"): float(s["value"][1])
                    for s in promql.query(
                        self.lab.url("prometheus"),
                        'sum by (client) (rate(failwhale_journeys_total{outcome!="failed"}[15s]))'
                        " / sum by (client) (rate(failwhale_journeys_total[15s]))",
                        timeout_s=PROGRESS_QUERY_TIMEOUT_S,
                    )
                }
            except LabError:
                shares = None  # a slow or restarting Prometheus: the progress line waits, the run goes on
            ok = {
                c: "  ?"
                if shares is None
                else "  -"
                if shares.get(c) is None or math.isnan(shares[c])
                else f"{100 * shares[c]:3.0f}%"
                for c in measure.CLIENTS
            }
            line = (
                f"[{phase:<10}] {now_s:6.0f}s of {self.scenario.duration:.0f}s (scenario time), "
                f"{max(0.0, self.wall(self.scenario.duration) - (time.time() - t0)):4.0f}s left | "
                f"journeys not failed: web {ok['web']}  app {ok['app']} | next: {what}"
            )
            if sys.stdout.isatty():
                print("\r" + line, end="", flush=True)
            else:
                self.say(line)

    # ---- summary ---------------------------------------------------------------------------

    def lost_tweets(self) -> tuple[int, int]:
        """Tweets the load saw acknowledged, and how many of them no tweets database holds."""
        # Attached runs use the load `failwhale up` started, which keeps its ledger in the lab's folder.
        ledger = (self.lab.lab.data_path / "load" if self.attach else self.run_dir) / "ledger"
        acked = read_ledger(ledger) if ledger.exists() else []
        stored: set[int] = set()
        for name, kind in self.lab.arch.instance_kinds().items():
            if kind == "tweets":
                stored |= stored_ids(db_path(self.lab.lab.data_path, name))
        return len(acked), len(set(acked) - stored)

    def summarise(self, verdict: Verdict, problems: list[str], t0: float | None) -> Summary:
        """Measure every phase and expectation, save series.json, and write summary.json."""
        if not self.attach:
            self.lab.stop_instance("loadgen")  # final counts scraped, then stopped
        time.sleep(1.5)
        acked, lost = self.lost_tweets()
        s = self.scenario
        summary = Summary(
            scenario=self.name,
            title=s.title,
            verdict=verdict,
            problems=problems,
            speed=self.speed,
            quick=self.quick,
            scale=float(self.scale or 1),
            duration=s.duration,
            focus_phase=self.focus_phase(),
            status_page=self.status_share(0, s.duration),
            works_for_me=self.probes,
            acked_tweets=acked,
            lost_tweets=lost,
            teaches=s.teaches,
            description=s.description,
            facts=s.incident.facts,
            incident_date=s.incident.date,
            run_dir=str(self.run_dir),
            started=t0,
            dashboard=self.dashboard_shots,
        )
        if t0 is not None:
            self.measure_run(summary, t0, lost)
        records.write(self.run_dir / "summary.json", summary)
        for e in summary.expectations:
            within = (
                f"; 95% interval {e.interval[0]:g}-{e.interval[1]:g} of {e.reports} reports, for information"
                if e.interval
                else ""
            )
            self.say(f"  {'held' if e.held else 'DEVIATED':<9}{e.name}: {e.measured} (wanted {e.bound}){within}")
        return summary

    def measure_run(self, summary: Summary, t0: float, lost: int) -> None:
        """The figures of each phase and of the whole run, the series and alerts, and the expectations."""
        prom = self.lab.url("prometheus")
        figures: dict[str, Window] = {}
        for p in self.scenario.phases:
            f = figures[p.name] = measure.window(prom, t0 + self.wall(p.start), t0 + self.wall(p.end))
            summary.phases[p.name] = PhaseFigures(
                start=p.start,
                end=p.end,
                web=f.clients["web"],
                app=f.clients["app"],
                reasons=f.reasons,
                user_reports=f.user_reports,
                health_checks=f.health_checks,
                status_page=self.status_share(p.start, p.end),
                works_for_me=[x for x in self.probes if p.start <= x.at <= p.end],
            )
            if f.clients["web"].journeys + f.clients["app"].journeys == 0:
                # Every expectation of this phase then reads "None": say why, so nobody hunts a bug in the lab.
                summary.problems.append(
                    f"phase '{p.name}': no journey was counted in it (Prometheus has no fresh scrape of the load "
                    "generator there: an overloaded machine, or a phase too short at this speed)"
                )
        whole = measure.window(prom, t0, t0 + self.wall(self.scenario.duration))
        summary.user_reports, summary.health_checks = whole.user_reports, whole.health_checks
        summary.users_hurt = {c: whole.clients[c].users_hurt for c in measure.CLIENTS}
        self.save_series(summary, t0)
        if self.scenario.compare:
            summary.comparison = self.compare(sum(summary.users_hurt.values()))
        for e in self.scenario.expectations:
            value = self.expectation_value(e, summary, figures, t0, lost)
            judged = judge(e, value, figures[e.phase])
            summary.expectations.append(judged)
            if not judged.held and summary.verdict == "held":
                summary.verdict = "deviated"
                c = summary.comparison
                why = c.missing if c is not None and e.measure == "comparison.times_fewer" else None
                summary.problems.append(
                    f"expectation '{e.name}' measured {value} (wanted {judged.bound})" + (f": {why}" if why else "")
                )

    def save_series(self, summary: Summary, t0: float) -> None:
        """series.json and the alerts, saved before the lab stops: the next lab start wipes Prometheus's data."""
        prom = self.lab.url("prometheus")
        try:
            summary.alerts = series.alerts(prom, t0=t0, end=time.time(), speed=self.speed)
            data = series.export(prom, t0=t0, end=time.time(), speed=self.speed, lead_s=SERIES_LEAD_S)
        except LabError as e:  # the verdict and figures still matter without the plots
            self.say(f"warning: no series.json, so no plots: {e}")
            return
        summary.trouble = series.time_to_recover(data)
        summary.time_to_recover_s = summary.trouble and summary.trouble.seconds
        records.write(
            self.run_dir / "series.json",
            Series(
                scenario=self.name,
                speed=self.speed,
                duration=self.scenario.duration,
                t0=t0,
                step=max(0.25, 1 / self.speed) * self.speed,
                phases=[PhaseSpan(name=p.name, start=p.start, end=p.end) for p in self.scenario.phases],
                marks=series.marks_from_journal(self.journal.entries, t0, self.speed)
                + series.alert_marks(summary.alerts),
                series=data,
            ),
        )

    def expectation_value(
        self, e: Expectation, summary: Summary, figures: dict[str, Window], t0: float, lost: int
    ) -> float | None:
        """What an expectation measured in its phase; a bad PromQL query is its problem, not the run's."""
        p = next(p for p in self.scenario.phases if p.name == e.phase)
        if e.measure == "comparison.times_fewer":
            return summary.comparison and summary.comparison.times_fewer
        if e.measure == "status_page":
            return summary.phases[p.name].status_page
        if e.measure in ("works_for_me", "works_for_me.web_failed"):
            return self.probe_share(p, e.measure)
        if e.measure:
            return measure.measure(figures[p.name], e.measure, lost)
        assert e.promql is not None  # an expectation has a measure or a query (chaos.scenario checks)
        try:
            return measure.phase_scalar(
                self.lab.url("prometheus"), e.promql, t0 + self.wall(p.start), t0 + self.wall(p.end)
            )
        except LabError as err:
            summary.problems.append(f"expectation '{e.name}': {err}")
            return None

    def status_share(self, start: float, end: float) -> float | None:
        """Share of the status page's readings in [start, end) (scenario s) that said operational."""
        seen = [ok for t, ok in list(self.status_samples) if start <= t < end]
        return round(sum(seen) / len(seen), 4) if seen else None

    def probe_share(self, phase, name: str) -> float | None:
        """works_for_me: share of probes whose app user saw a timeline; .web_failed: whose fresh web visit failed."""
        probes = [x for x in self.probes if phase.start <= x.at <= phase.end]
        if not probes:
            return None
        if name == "works_for_me":
            return sum(x.app_user.sees == "timeline" for x in probes) / len(probes)
        return sum(x.web_visit.page != "ok" for x in probes) / len(probes)

    def focus_phase(self) -> str:
        """The phase the headline figures come from: the first one an expectation about users names."""
        for e in self.scenario.expectations:
            if e.measure and e.measure.startswith(("web.", "app.")):
                return e.phase
        return self.scenario.phases[0].name

    def compare(self, users_hurt: int) -> Comparison:
        """Users hurt here against the newest finished run of the other scenario in the same folder."""
        assert self.scenario.compare is not None
        against = self.scenario.compare.against
        for folder in sorted(self.out.glob(f"{against}-*"), reverse=True):
            try:
                other = records.read(folder / "summary.json", Summary)
            except RecordError:
                continue  # unfinished, or written by another failwhale
            # Users hurt compare only between runs of the same kind: quick or not, and at the same scale.
            if (
                other.scenario != against
                or other.verdict == "aborted"
                or other.quick != self.quick
                or other.scale != self.scale
            ):
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
        missing = f"no finished run of {against} in {self.out} to compare with (run it first; make scenarios does)"
        self.say(missing)
        return Comparison(against=against, users_hurt=users_hurt, missing=missing)
