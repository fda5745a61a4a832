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
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from chaos import camera, probe, promql
from chaos.camera import Camera
from chaos.control import LabControl, halt
from chaos.engine import steps, verdicts
from chaos.engine.events import Events
from chaos.engine.hooks import PlainRun, RunHooks, StepResult
from chaos.engine.progress import RunProgress, Tick
from chaos.errors import BadInput, ChaosError, LabError
from chaos.lab.supervisor import DASHBOARD, DEFAULT_SPAWN_PER_S, Lab, LoadOptions, check_port
from chaos.lease import LeaseKeeper
from chaos.probe import AppUser
from chaos.records import (
    Journal,
    ProbeEntry,
    ProbeResult,
    RestartEntry,
    RollbackEntry,
    Shot,
    SteadyStateEntry,
    StepEntry,
    Verdict,
    WorksForMeProbe,
)
from chaos.rollout import rollback
from chaos.scenario import Kill, Scenario, Step, WorksForMe, too_many_users
from services.architecture.model import scaled_count

EXIT_HELD, EXIT_DEVIATED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
WARMUP_S = 8.0  # wall seconds of healthy load before the steady-state check
QUICK_WARMUP_S = 5.0
# Where in each phase the dashboard is photographed: late, once the phase has shown itself,
# and before the step that ends it.
PHOTO_AT = 0.8
# Wall seconds a photograph takes: three visits to the site and one look at the dashboard.
PHOTO_TAKES_S = 2.5
SETTLE_S = 15.0  # more wall seconds of warm-up allowed when the steady state does not hold yet
RECOVERY_S = 20.0  # wall seconds allowed for the steady state to return after rollback
PROGRESS_QUERY_TIMEOUT_S = 1.5  # the progress line's query: it must never hold the timeline up
Say = Callable[[str], None]


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: stop the timeline, roll back, exit 130."""


def run_scale(scenario: Scenario, scale: float | None, *, attach: bool, quick: bool) -> float:
    """The scale a run of ``scenario`` plays at: ``scale``, else the scenario's own (1 for a run
    attached to a running lab). :class:`BadInput` for one it cannot play at, before anything starts."""
    if scale is None:
        # An attached run plays on the lab as it runs: the scenario's scale is for labs a run starts.
        scale = 1.0 if attach else scenario.load.scale
    if scale <= 0:
        raise BadInput(f"scale must be above 0, not {scale:g}")
    if problem := too_many_users(scenario.users(quick), scale):
        raise BadInput(problem)
    if attach and scale != 1:
        # The running lab's load and starting architecture are not this run's to scale.
        raise BadInput(
            f"scale {scale:g} needs the lab and load this run starts itself: run without --attach, or with --scale 1"
        )
    return scale


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
    # Whoever shapes the run without subclassing it (a workshop); a plain run by default.
    hooks: RunHooks = field(default_factory=PlainRun)
    # Who watches the run's progress (a live status area in a terminal); None: a line per tick via say.
    progress: RunProgress | None = None
    # Set when the run winds down (the timeline's end, an error, Ctrl-C): waits cut short.
    stopping: threading.Event = field(default_factory=threading.Event, init=False, repr=False)

    def __post_init__(self) -> None:
        """Check the options and read the lab's files up front: nothing starts until run()."""
        self.scale = run_scale(self.scenario, self.scale, attach=self.attach, quick=self.quick)
        if self.attach and any(isinstance(s, Kill) for s in self.scenario.timeline):
            raise BadInput("kill steps need processes this run starts itself: run without --attach")
        self.lab: Lab = Lab.from_files(self.lab_config, say=self.say)
        if self.attach and "chaos-metrics" in self.lab.lab.ports:
            # The one port an attached run opens: on a spread lab, this machine must own its address.
            check_port(self.lab.lab, "chaos-metrics")
        # The children start from architecture.json, written from this: their baseline is scaled too.
        self.lab.arch = self.lab.arch.scaled(self.scale_k)
        self.run_dir: Path = self.out / f"{self.name}-{time.strftime('%Y%m%dT%H%M%S')}"
        self.journal = Journal(self.run_dir / "journal.json", self.name)  # written from the first entry on
        # What a run makes as it goes, None until then (a run that failed early has none of them).
        self.control: LabControl | None = None
        self.keeper: LeaseKeeper | None = None  # renews this run's architecture changes once the lab is up
        self.events: Events | None = None
        self.restarter: ThreadPoolExecutor | None = None
        self.camera: Camera | None = None
        self.t0: float | None = None  # wall clock of scenario time 0, once the timeline starts
        self.arch_lock = threading.Lock()  # one writer of the running architecture at a time
        self.app_user: AppUser | None = None
        self.probes: list[WorksForMeProbe] = []
        self.status_samples: list[tuple[float, bool]] = []
        self.dashboard_shots: list[Shot] = []
        self.verdict: Verdict = "held"
        self.problems: list[str] = []

    @property
    def scale_k(self) -> float:
        """The run's scale (set from the scenario's ``load.scale`` when not given)."""
        assert self.scale is not None  # set in __post_init__
        return self.scale

    @property
    def lab_control(self) -> LabControl:
        """The lab's control planes; a step plays only once the lab is up, so they exist."""
        assert self.control is not None, "the lab is not up yet"
        return self.control

    def url(self, name: str) -> str:
        """The URL of one of the lab's processes (``prometheus``, ``web``, ``edge``...)."""
        return self.lab.url(name)

    @property
    def warmup_s(self) -> float:
        return QUICK_WARMUP_S if self.quick else WARMUP_S

    def wall(self, scenario_s: float) -> float:
        return scenario_s / self.speed

    # ---- the run --------------------------------------------------------------------------

    def run(self) -> int:
        """Play the scenario and write its run folder; the exit code (held 0, deviated 1, aborted 130)."""
        self.run_dir.mkdir(parents=True, exist_ok=False)
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

        def interrupt(signum, _frame):
            raise Interrupted(signal.Signals(signum).name)

        signal.signal(signal.SIGINT, interrupt)
        signal.signal(signal.SIGTERM, interrupt)
        self.restarter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="restart")
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
        self.hooks.lab_ready()
        self.events = Events(self.lab.lab.ports.get("chaos-metrics"), self.lab.lab.listen_host("chaos-metrics"))
        if not self.attach:
            self.start_load()
        self.open_camera()
        self.sleep_until(time.time() + self.warmup_s, "warm-up", None)
        if (problem := self.settled()) is not None:
            self.verdict, self.problems = "deviated", [problem]
            return
        self.warm_probe()
        t0 = self.t0 = time.time()
        self.watch_status_page(t0)
        self.events.start_clock(t0, self.speed)
        self.start_camera(t0)
        failed = self.play(t0)
        if failed:
            # The timeline ended at its failed step: nothing is left to wait for, straight to the rollbacks.
            self.verdict, self.problems = "deviated", [failed]
            return
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
        if self.verdict != "aborted" and (problem := self.recovered()) is not None:
            self.verdict = "deviated"
            self.problems.append(problem)
        self.verdict = verdicts.summarise(self, self.verdict, self.problems, self.t0).verdict

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
        stopped = self.lab.stop()
        if stopped:
            self.say(f"stopped {stopped} processes")
        self.hooks.closed()

    # ---- timeline ---------------------------------------------------------------------------

    def spawn_per_s(self) -> float:
        """Users the load starts (or stops) per second: K times as many users arrive K times as fast,
        so a scaled run's users are in place when its unscaled twin's are."""
        return DEFAULT_SPAWN_PER_S * self.scale_k

    def peak_users(self) -> int:
        """The load's users at the evening peak: the scenario's (or its quick variant's), scaled."""
        return scaled_count(self.scenario.users(self.quick), self.scale_k)

    def scale_line(self) -> str:
        """What the run's scale means for this run, said before the lab starts."""
        if self.attach:
            return "scale 1: the running lab's own load and architecture"
        if self.scale == 1:
            return f"scale 1: {self.peak_users():,} users at the peak, capacities as the architecture files say"
        return (
            f"scale {self.scale:g}: {self.peak_users():,} users at the peak; rate limits and concurrency capacities "
            f"x{self.scale:g} (in the architecture files and injected faults), time constants as they are"
        )

    def load_s(self) -> float:
        """How long the load runs after its warm-up, in wall seconds: the scenario's length, unless the hooks say."""
        hooked = self.hooks.load_s()
        return self.wall(self.scenario.duration) if hooked is None else hooked

    def play(self, t0: float) -> str | None:
        """Run every step at its time; the first failed step ends the timeline (its reason)."""
        assert self.journal is not None and self.events is not None  # made before the timeline
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
            self.journal.end_step(entry, outcome, detail)
            self.events.steps.labels(step.action, outcome).inc()
            self.say(f"\n[{step.at:>6.0f}s] {label}: {outcome}" + (f" ({detail.note})" if detail.note else ""))
        return None

    def do(self, step: Step) -> StepResult:
        """Play one step as the hooks let it (see chaos/engine/steps.py for what each kind does)."""
        return self.hooks.play_step(step, lambda s: steps.play(self, s))

    def until_end(self, t0: float) -> None:
        """After the last step: wait for the scenario's end (a workshop waits for its facilitator)."""
        self.hooks.until_end(t0, lambda: self.sleep_until(t0 + self.wall(self.scenario.duration), "to the end", t0))

    # ---- probes -----------------------------------------------------------------------------

    def needs_app_user(self) -> bool:
        return self.hooks.needs_app_user(any(isinstance(s, WorksForMe) for s in self.scenario.timeline))

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

    def restart_later(self, name: str, when: float) -> None:
        """Start a killed process again at ``when`` (wall clock), unless the run ends first."""
        # Not a Timer thread: a child dies when the *thread* that started it ends (Linux's
        # parent-death signal is per thread), so restarts run on one long-lived worker.
        assert self.restarter is not None  # made as the run starts
        self.restarter.submit(self._restart, name, when)

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
                    answers = asyncio.run(halt(self.lab_control))
                    bad = [a.instance for a in answers if not a.ok]
                    if self.keeper is not None:
                        self.keeper.release([a.instance for a in answers if a.ok])
                elif final.action == "rollback":
                    bad = asyncio.run(rollback(self.lab_control, keeper=self.keeper))
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

    def steady_state(self, when: Literal["before", "after"]) -> str | None:
        """Read, journal and say the steady-state probes: None when they hold, else the problem."""
        entry = self.journal.start(SteadyStateEntry(when=when))
        held, results = self.probes_hold()
        self.journal.end(entry, "held" if held else "deviated", probes=results)
        self.say(
            f"steady state {when}: {'held' if held else 'DEVIATED'} "
            + ", ".join(f"{r.name}={r.value if r.value is None else round(r.value, 3)}" for r in results)
        )
        if held:
            return None
        # What went wrong, and the usual reason a probe then has no data at all.
        problem, usual = {
            "before": (
                "steady state did not hold before the timeline",
                "a load generator still starting its users or too busy to be scraped",
            ),
            "after": (
                "steady state did not return after rollback",
                "a load generator that has stopped or is too busy to be scraped",
            ),
        }[when]
        if unread := [r.name for r in results if r.value is None]:
            # No data is not a bad value: say so, with the usual reason, or people hunt a bug in the lab.
            users = "" if self.attach else f" ({self.peak_users():,} users at the peak in this run)"
            problem += f": no data for {', '.join(unread)}, most often {usual}{users}"
        return problem

    def settled(self) -> str | None:
        """Before the timeline: the probes need data, so give a slow-starting load SETTLE_S more."""
        deadline = time.time() + SETTLE_S
        while not self.probes_hold()[0] and time.time() < deadline:
            time.sleep(1)
        return self.steady_state("before")

    def recovered(self) -> str | None:
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
        # A workshop that has ended skips the rest of the timeline (its hooks then play nothing).
        when = min(when, self.hooks.ends_at())
        while (left := when - time.time()) > 0 and not self.hooks.over():
            time.sleep(min(left, 2.0))
            if t0 is None:
                continue
            tick = self.progress_tick(t0, what)
            if self.progress is not None:
                self.progress.tick(tick)
            else:
                self.say(tick.line())

    def progress_tick(self, t0: float, what: str) -> Tick:
        """The phase now (also set on the phase gauge), scenario time, and each client's journeys not failed."""
        now_s = (time.time() - t0) * self.speed
        phase = self.hooks.shown_phase(next((p.name for p in self.scenario.phases if p.start <= now_s < p.end), "-"))
        if self.events is not None:
            for name in {self.hooks.shown_phase(p.name) for p in self.scenario.phases}:
                self.events.phase.labels(name).set(1 if name == phase else 0)
        try:
            shares = {
                s["metric"].get("client"): float(s["value"][1])
                for s in promql.query(
                    self.url("prometheus"),
                    'sum by (client) (rate(failwhale_journeys_total{outcome!="failed"}[15s]))'
                    " / sum by (client) (rate(failwhale_journeys_total[15s]))",
                    timeout_s=PROGRESS_QUERY_TIMEOUT_S,
                )
            }
        except LabError:
            shares = None  # a slow or restarting Prometheus: the progress waits, the run goes on

        def share(client: str) -> float | None:
            value = (shares or {}).get(client)
            return None if value is None or math.isnan(value) else value

        return Tick(
            scenario_s=now_s,
            duration_s=self.scenario.duration,
            left_s=max(0.0, self.wall(self.scenario.duration) - (time.time() - t0)),
            phase=phase,
            web=share("web"),
            app=share("app"),
            next=what,
            read=shares is not None,
        )
