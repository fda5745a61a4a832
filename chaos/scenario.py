"""Scenario files: a replayed incident as data, validated whole before anything runs.

A scenario says what it teaches and which incident facts it replays, the load to run, the
steady state to check before and after, a timeline of steps (inject faults, roll out or back
an architecture, kill a process, pause, leave a note, look at the service as a "works for me"
user), the phases it measures, what it expects in each phase, and the rollbacks that always
run at the end. Every problem in a file is one
line naming file, line and field: ``failwhale validate FILE...`` checks files without a lab.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, model_validator

from chaos.errors import BadInput
from chaos.lab.supervisor import MAX_USERS
from configfiles.errors import ConfigError
from configfiles.yamlconf import Loc, parse_yaml, read_text, validate
from services.architecture.model import InstanceName, load_architecture, scaled_count
from services.common.faults import FaultSpec

SCHEMA_FILE = Path(__file__).with_name("scenario.schema.json")
# The scenario catalog: what `make scenarios` plays and a workshop can pick from.
CATALOG = Path(__file__).with_name("scenarios")
_DURATION = re.compile(r"^(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?$")


class ScenarioError(BadInput):
    """A scenario file cannot be used; the message is one line naming file, line and field."""


def _seconds(value: Any) -> Any:
    """``90``, ``90.5``, ``"90s"``, ``"1m30s"``, ``"2h"`` -> seconds; anything else is left for the type check."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        m = _DURATION.match(value.strip())
        if not value.strip() or m is None:
            raise ValueError(f"{value!r} is not a duration (use seconds, or e.g. 90s, 2m, 1m30s)")
        return sum(float(m.group(k) or 0) * f for k, f in (("h", 3600), ("m", 60), ("s", 1)))
    return value


Duration = Annotated[float, BeforeValidator(_seconds), Field(ge=0, le=24 * 3600)]
Fraction = Annotated[float, Field(ge=0, le=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def within(value: float | None, lo: float | None, hi: float | None) -> bool:
    """The one rule for every bound (probes and expectations): the measured value itself lies
    in [lo, hi]; a value that could not be measured never holds."""
    return value is not None and (lo is None or value >= lo) and (hi is None or value <= hi)


def bound_text(lo: float | None, hi: float | None) -> str:
    """``>= 0.7 and <= 0.9``: a bound as reports print it."""
    return " and ".join(
        x for x in (f">= {lo:g}" if lo is not None else "", f"<= {hi:g}" if hi is not None else "") if x
    )


class Incident(_Model):
    date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    facts: list[str] = Field(min_length=1)


class Load(_Model):
    users: Annotated[int, Field(ge=1, le=MAX_USERS)] = 30
    web_share: Fraction = 0.4
    shape: Literal["evening", "constant"] = "evening"
    app_cache: bool = True
    app_retries: Annotated[int, Field(ge=0, le=10)] = 3
    app_jitter: bool = True
    # Share of app users who open the app already signed in (a session from an earlier day).
    app_signed_in: Fraction = 0.6
    web_reloads: Annotated[int, Field(ge=0, le=10)] = 2
    # Seconds a user waits between journeys: [min, max].
    think_s: Annotated[list[Annotated[float, Field(ge=0, le=600)]], Field(min_length=2, max_length=2)] = [1.0, 4.0]
    # k times the users, with every per-time capacity the run uses k times too (rate limits,
    # concurrency; see Architecture.scaled): a bigger sample of the same story. `failwhale run
    # --scale` overrides it.
    scale: Annotated[float, Field(gt=0, le=100)] = 1.0

    @model_validator(mode="after")
    def _think_in_order(self) -> Load:
        if self.think_s[0] > self.think_s[1]:
            raise ValueError(f"think_s: min {self.think_s[0]:g} is above max {self.think_s[1]:g}")
        return self


class Probe(_Model):
    name: str
    promql: str = Field(min_length=1)
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _has_a_bound(self) -> Probe:
        if self.min is None and self.max is None:
            raise ValueError("a probe needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self

    def holds(self, value: float | None) -> bool:
        return within(value, self.min, self.max)


class SteadyState(_Model):
    probes: list[Probe] = Field(min_length=1)


class _Step(_Model):
    at: Duration
    name: str = ""


class Inject(_Step):
    action: Literal["inject"]
    target: list[InstanceName] = Field(min_length=1)
    faults: list[FaultSpec] = Field(min_length=1)

    def scaled(self, k: float) -> Inject:
        """This step for k times the users: see :func:`scaled_fault`."""
        return self.model_copy(update={"faults": [scaled_fault(f, k) for f in self.faults]})


def scaled_fault(spec: FaultSpec, k: float) -> FaultSpec:
    """A fault for k times the users, as Architecture.scaled scales an architecture.

    Scaled, being capacities: a capacity fault's ``max_in_flight`` (a cut to 0, nothing let
    through, stays 0) and a rate_limit fault's ``rate_per_s`` and ``burst``. Not scaled: the
    TTL, latency and jitter, ``retry_after_s`` (times), the status, and ``probability`` (a share
    of requests, the same share however many there are).
    """
    if spec.kind == "capacity" and spec.max_in_flight:
        return spec.model_copy(update={"max_in_flight": scaled_count(spec.max_in_flight, k)})
    if spec.kind == "rate_limit" and spec.rate_per_s and spec.burst:
        return spec.model_copy(update={"rate_per_s": spec.rate_per_s * k, "burst": scaled_count(spec.burst, k)})
    return spec


class Rollout(_Step):
    action: Literal["rollout"]
    architecture: str  # a file, relative to the scenario file
    # Cumulative shares of the API replicas, or the replicas of each wave by name.
    waves: list[Annotated[float, Field(gt=0, le=1)]] | list[list[InstanceName]] = [1.0]
    bake: Duration = 0.0
    guard: str | None = None
    # How often the guard is asked while a wave bakes (scenario seconds, at least 0.25 s of wall time).
    guard_every: Annotated[Duration, Field(gt=0)] = 4.0


class Rollback(_Step):
    action: Literal["rollback"]


class Kill(_Step):
    action: Literal["kill"]
    target: InstanceName
    restart_after: Duration | None = None


class Pause(_Step):
    action: Literal["pause"]
    seconds: Duration


class Note(_Step):
    action: Literal["note"]
    text: str = Field(min_length=1)


class WorksForMe(_Step):
    """Look at the service as a logged-in app user with a warm cache, and as a fresh web visitor."""

    action: Literal["works_for_me"]


Step = Annotated[Inject | Rollout | Rollback | Kill | Pause | Note | WorksForMe, Field(discriminator="action")]
# The steps that change the lab: a workshop's clocks count from the first of them.
CHANGES = ("rollout", "inject", "kill")


class Phase(_Model):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]
    start: Duration
    end: Duration


MEASURES = (
    "web.failure_ratio",
    "app.failure_ratio",
    "web.degraded_ratio",
    "app.degraded_ratio",
    "web.ok_ratio",
    "app.ok_ratio",
    "reports.website_share",
    "reports.app_share",
    "reports.server_connection_share",
    "health_checks",
    "lost_tweets",
    "users_hurt",
    "web.users_hurt",
    "app.users_hurt",
    "comparison.times_fewer",
    "status_page",
    "works_for_me",
    "works_for_me.web_failed",
)


class Expectation(_Model):
    """A bound on a named measure of a phase, or on a PromQL value at the phase's end, in which
    ``$phase`` stands for the phase's length in wall-clock time. To count requests in the phase,
    take each total at the end less the total at the start (``offset $phase``), as the catalog's
    scenarios do: ``increase(...[$phase])`` misses the first requests of a series born inside
    the phase."""

    name: str
    phase: str
    measure: Literal[MEASURES] | None = None  # type: ignore[valid-type]
    promql: str | None = None
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _one_source_and_a_bound(self) -> Expectation:
        if (self.measure is None) == (self.promql is None):
            raise ValueError("an expectation needs exactly one of measure or promql")
        if self.min is None and self.max is None:
            raise ValueError("an expectation needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self

    def holds(self, value: float | None) -> bool:
        return within(value, self.min, self.max)

    def bound(self) -> str:
        return bound_text(self.min, self.max)


class Quick(_Model):
    """How ``failwhale run --quick`` plays the scenario: the same timeline, faster, for tests."""

    speed: Annotated[float, Field(gt=0, le=100)]
    users: Annotated[int, Field(ge=1, le=MAX_USERS)] | None = None


class Compare(_Model):
    """Compare the users this run hurt with the newest run of another scenario (same folder)."""

    against: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,79}$")]


class Workshop(_Model):
    """How a facilitator runs the scenario as a game day (``failwhale workshop``): what
    participants should notice, the hints to give (gentlest first), and what mitigates it."""

    look_for: list[str] = Field(min_length=1)
    hints: list[str] = Field(min_length=1)
    # The lever that mitigates, one that acts on the lab (failwhale workshop lever --help), and
    # what it must be pulled with (``{service: notifications}``): the same lever on anything else
    # is no fix. The scenario's own rollback steps are left to the participants.
    fix: str = "rollback"
    fix_args: dict[str, str | float | bool] = {}
    # The fix also ends the trouble the timeline keeps making (a crash loop's next kills, faults
    # not yet injected): its remaining kill and inject steps are not played once it is pulled.
    fix_ends_timeline: bool = False
    # After the fix, web and app journeys hold again within this much scenario time.
    recovers_within: Annotated[Duration, Field(gt=0)] = 60.0
    debrief: list[str] = Field(min_length=1)

    @property
    def fix_command(self) -> str:
        """The fix as the command line pulls it: ``restart --service notifications``."""
        return " ".join([self.fix, *(f"--{k.replace('_', '-')} {v}" for k, v in self.fix_args.items())])

    @model_validator(mode="after")
    def _fix_is_a_lever_that_acts(self) -> Workshop:
        # Imported here: the levers' table is the workshop's, which a scenario file only names.
        from chaos.workshop.levers import LEVERS, parse_args
        from chaos.workshop.room import WorkshopError

        spec = LEVERS.get(self.fix)
        if spec is None or not spec.acts:
            acting = ", ".join(name for name, s in LEVERS.items() if s.acts)
            raise ValueError(f"fix: {self.fix!r} is not a lever that acts on the lab (one of {acting})")
        try:
            parse_args(self.fix, self.fix_args)
        except WorkshopError as e:
            raise ValueError(f"fix_args: {e}") from e
        return self


class Final(_Model):
    """A rollback that always runs at the end, however the run ended."""

    action: Literal["rollback", "halt", "restart"]
    target: InstanceName | None = None


class Scenario(_Model):
    title: str = Field(min_length=1, max_length=120)
    description: str = Field(min_length=1)
    teaches: str = Field(min_length=1)
    incident: Incident
    duration: Annotated[Duration, Field(gt=0)]
    speed: Annotated[float, Field(gt=0, le=100)] = 1.0
    quick: Quick | None = None
    load: Load = Load()
    steady_state: SteadyState
    timeline: list[Step] = Field(min_length=1)
    phases: list[Phase] = Field(min_length=1)
    expectations: list[Expectation] = []
    compare: Compare | None = None
    workshop: Workshop | None = None
    rollbacks: list[Final] = [Final(action="halt")]

    # Set by load_scenario: where the file is, to find architecture files beside it.
    _source: Path | None = PrivateAttr(default=None)

    @property
    def source(self) -> Path | None:
        return self._source

    def users(self, quick: bool = False) -> int:
        """Users at the evening peak at scale 1: the quick variant's when ``quick`` and it names them."""
        return self.quick.users if quick and self.quick and self.quick.users else self.load.users


def _check(s: Scenario, where: str, lines: dict[Loc, int], folder: Path) -> None:
    """What a schema cannot say: order in time, references between parts, files that exist."""

    def fail(loc: Loc, message: str) -> None:
        line = next((lines[loc[:cut]] for cut in range(len(loc), -1, -1) if loc[:cut] in lines), 1)
        raise ScenarioError(f"{where}:{line}: {'.'.join(map(str, loc))}: {message}")

    last = 0.0
    for i, step in enumerate(s.timeline):
        if step.at < last:
            fail(("timeline", i, "at"), f"steps must be in time order: {step.at:g}s comes after {last:g}s")
        if step.at > s.duration:
            fail(("timeline", i, "at"), f"{step.at:g}s is after the end of the scenario ({s.duration:g}s)")
        last = step.at
        if isinstance(step, Rollout):
            path = (folder / step.architecture).resolve()
            if not path.is_file():
                fail(("timeline", i, "architecture"), f"file not found: {path}")
            try:
                load_architecture(path)
            except ConfigError as err:
                fail(("timeline", i, "architecture"), f"not a valid architecture ({err})")
    names = set()
    for i, p in enumerate(s.phases):
        if p.end <= p.start:
            fail(("phases", i, "end"), f"a phase must end after it starts ({p.start:g}s)")
        if p.end > s.duration:
            fail(("phases", i, "end"), f"{p.end:g}s is after the end of the scenario ({s.duration:g}s)")
        if p.name in names:
            fail(("phases", i, "name"), f"phase {p.name!r} is defined twice")
        names.add(p.name)
    for i, e in enumerate(s.expectations):
        if e.phase not in names:
            fail(("expectations", i, "phase"), f"no phase named {e.phase!r} (phases: {', '.join(sorted(names))})")
        if e.measure == "comparison.times_fewer" and s.compare is None:
            fail(
                ("expectations", i, "measure"),
                "comparison.times_fewer needs a compare section naming the other scenario",
            )
    if s.quick is not None and s.quick.speed < s.speed:
        fail(("quick", "speed"), f"quick speed {s.quick.speed:g} is slower than the scenario's speed {s.speed:g}")
    for quick in (False, True):
        if problem := too_many_users(s.users(quick), s.load.scale):
            fail(("load", "scale"), problem)


def too_many_users(users: int, scale: float) -> str | None:
    """Why ``users`` at ``scale`` is more than a load can run, or None if it is not."""
    scaled = scaled_count(users, scale)
    if scaled <= MAX_USERS:
        return None
    # Rounded down, so the scale offered is one that fits.
    fits = math.floor(MAX_USERS / users * 100) / 100
    return (
        f"scale {scale:g} makes {scaled:,} users at the peak ({users:,} x {scale:g}), more than the "
        f"{MAX_USERS:,} a load can run: use a scale of at most {fits:g}"
    )


def parse_scenario(text: str, where: str, folder: Path) -> Scenario:
    try:
        data, lines = parse_yaml(text, where)
        scenario = validate(Scenario, data, where, lines)
    except ConfigError as e:
        raise ScenarioError(str(e)) from e
    _check(scenario, where, lines, folder)
    return scenario


def load_scenario(path: str | Path) -> Scenario:
    """Read and check a scenario file; every problem is a ScenarioError (one line)."""
    path = Path(path)
    try:
        text = read_text(path)
    except ConfigError as e:
        raise ScenarioError(str(e)) from e
    scenario = parse_scenario(text, str(path), path.parent)
    scenario._source = path.resolve()
    return scenario


def json_schema() -> dict[str, Any]:
    """The scenario schema, as shipped in ``chaos/scenario.schema.json`` for editors and tools."""
    schema = Scenario.model_json_schema()
    schema["$id"] = "https://failwhale.invalid/scenario.schema.json"
    schema["title"] = "failwhale scenario"
    return schema
