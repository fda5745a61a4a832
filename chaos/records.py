"""The files a run folder holds, as types: each one is defined here once, and written and read
through these models only.

A run folder (``failwhale run``, ``failwhale workshop``) holds:

- ``journal.json``: :class:`JournalFile`, every action of the run as it happened;
- ``summary.json``: :class:`Summary`, the verdict and the figures of each phase;
- ``series.json``: :class:`Series`, the time series the plots are drawn from;
- ``scorecard.json`` (workshops only): :class:`Scorecard`, how the room did.

Each file carries ``format_version``. A file of another version is refused with one line that
says so (:class:`RecordError`), never half read. JSON Schemas of the four files, built from these
models, live in ``chaos/schemas/`` for other tools (``python -m chaos.records`` writes them again).
Times named ``at`` are scenario seconds; ``started``, ``ended`` and ``t0`` are Unix wall-clock
seconds.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from chaos.errors import BadInput

FORMAT_VERSION: Literal[2] = 2
SCHEMAS = Path(__file__).with_name("schemas")
Client = Literal["web", "app"]
Verdict = Literal["held", "deviated", "aborted"]
Unit = Literal["ratio", "per_s", "seconds", "count"]
MarkKind = Literal["rollout", "wave", "guard", "rollback", "fault", "kill", "restart", "note", "alert"]


class RecordError(BadInput):
    """A run-folder file that cannot be read as its record; the message is one line naming the file."""


class Record(BaseModel):
    """A part of a run-folder file: unknown fields are an error, so a misspelt one never hides,
    and a field set later is checked as one read from the file is."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class VersionedFile(Record):
    """A whole run-folder file: it says which format it is written in."""

    format_version: Literal[2] = FORMAT_VERSION


# ---- what the probes saw ------------------------------------------------------------------------


class AppUserView(Record):
    """What the works-for-me app user (signed in, warm cache) saw."""

    sees: Literal["timeline", "error"]
    fresh: bool
    age_s: float | None = None  # how old its cached timeline was, when it showed that
    refresh_error: str | None = None


class WebVisit(Record):
    """What a first visit to the website got."""

    page: Literal["ok", "failed"]
    failed_call: str | None = None
    error: str | None = None


class WorksForMeProbe(Record):
    """One works-for-me probe: the app user and a fresh web visit at the same moment."""

    at: float
    app_user: AppUserView
    web_visit: WebVisit


# ---- the journal --------------------------------------------------------------------------------


class Entry(Record):
    """What every journal entry has: when it started and ended, and how it came out."""

    started: float = Field(default_factory=time.time)
    ended: float | None = None
    outcome: str = "running"  # running, ok, failed, skipped, rolled_back, refused, held, deviated
    error: str | None = None


class StepDetail(Record):
    """What a step's journal entry keeps of how it went. Which fields it has depends on the step's action."""

    note: str | None = None
    # Set when a workshop did not play the step: its fix was the room's to find, or the game had ended.
    unplayed: Literal["left_to_participants", "after_the_game", "after_the_fix"] | None = None
    ttl_s: float | None = None  # inject: the longest fault's TTL, scenario seconds
    waves: list[list[str]] | None = None  # rollout
    completed_waves: int | None = None
    wave_times: list[float] | None = None  # wall clock, when each wave had moved
    rolled_back_at: float | None = None
    guard_breached: bool | None = None  # rollout: rolled back because its guard fired
    app_user: AppUserView | None = None  # works_for_me
    web_visit: WebVisit | None = None


class StepEntry(StepDetail, Entry):
    """A timeline step."""

    kind: Literal["step"] = "step"
    index: int
    action: str
    name: str
    at: float


class ProbeEntry(Entry):
    """A check made before the timeline (the works-for-me app user signing in)."""

    kind: Literal["probe"] = "probe"
    what: str


class RestartEntry(Entry):
    """A killed process started again after its step's delay."""

    kind: Literal["restart"] = "restart"
    target: str


class RollbackEntry(Entry):
    """One of the scenario's rollbacks, run on every way out of a run."""

    kind: Literal["rollback"] = "rollback"
    action: str
    target: str | None = None


class ProbeResult(Record):
    """One steady-state probe, read once."""

    name: str
    value: float | None
    min: float | None = None
    max: float | None = None
    held: bool


class SteadyStateEntry(Entry):
    """The steady-state probes, before the timeline or after the rollbacks."""

    kind: Literal["steady_state"] = "steady_state"
    when: Literal["before", "after"]
    probes: list[ProbeResult] = []


class ServedAfter(Record):
    """Share of each client's journeys served a while after a lever; ``too_soon`` when the next
    lever came before that could be told."""

    at: float | None
    too_soon: bool = False
    web: float | None = None
    app: float | None = None


class LeverEntry(Entry):
    """A workshop lever pulled by someone in the room (or the game's end)."""

    kind: Literal["lever"] = "lever"
    lever: str
    who: str
    args: dict[str, str | float | bool | None] = {}  # the lever's arguments, as validated
    at: float | None = None  # None: pulled before the scenario clock started
    note: str | None = None
    firing: list[str] | None = None  # ack: the alerts that were firing
    served_after: ServedAfter | None = None


JournalEntry = Annotated[
    StepEntry | ProbeEntry | RestartEntry | RollbackEntry | SteadyStateEntry | LeverEntry,
    Field(discriminator="kind"),
]


class JournalFile(VersionedFile):
    """``journal.json``."""

    scenario: str
    entries: list[JournalEntry] = []


E = TypeVar("E", StepEntry, ProbeEntry, RestartEntry, RollbackEntry, SteadyStateEntry, LeverEntry)


class Journal:
    """Every action of a run, rewritten to disk after each change so a crash loses nothing."""

    def __init__(self, path: Path, scenario: str) -> None:
        self.path = path
        self.file = JournalFile(scenario=scenario)
        # A workshop's levers write from another thread than the timeline's.
        self._lock = threading.RLock()

    @property
    def entries(self) -> list[JournalEntry]:
        return self.file.entries

    def start(self, entry: E) -> E:
        """Add an entry and save."""
        with self._lock:
            self.file.entries.append(entry)
            self.save()
        return entry

    def end(self, entry: Entry, outcome: str, **detail: Any) -> None:
        """Close an entry with its outcome and detail fields (checked against its type), and save."""
        with self._lock:
            for key, value in detail.items():
                setattr(entry, key, value)
            entry.ended, entry.outcome = time.time(), outcome
            self.save()

    def end_step(self, entry: StepEntry, outcome: str, detail: StepDetail) -> None:
        """Close a step's entry with its outcome and what its detail says."""
        self.end(entry, outcome, **{k: getattr(detail, k) for k in detail.model_fields_set})

    def save(self) -> None:
        with self._lock:
            write(self.path, self.file)


# ---- the summary --------------------------------------------------------------------------------


class ClientFigures(Record):
    """One client's journeys in a window of time."""

    journeys: int
    ok: int
    degraded: int
    failed: int
    failure_ratio: float | None
    degraded_ratio: float | None
    ok_ratio: float | None
    users_hurt: int


class Window(Record):
    """Figures of any window of time, read back from Prometheus (:func:`chaos.measure.window`)."""

    clients: dict[Client, ClientFigures]
    user_reports: dict[str, int]
    reasons: dict[Client, dict[str, int]]  # how journeys went wrong, by client and reason
    health_checks: float | None


class PhaseFigures(Record):
    """A phase of the run and its figures."""

    start: float
    end: float
    web: ClientFigures
    app: ClientFigures
    reasons: dict[Client, dict[str, int]]
    user_reports: dict[str, int]
    health_checks: float | None
    status_page: float | None = None  # share of status-page readings that said operational
    works_for_me: list[WorksForMeProbe] = []

    def client(self, name: str) -> ClientFigures:
        return self.web if name == "web" else self.app


class ExpectationResult(Record):
    """One expectation, judged on the measured value alone."""

    name: str
    phase: str
    bound: str
    measured: float | None
    held: bool
    # For a share of user reports, for information: its 95% Wilson interval and its sample size.
    interval: tuple[float, float] | None = None
    reports: int | None = None


class Trouble(Record):
    """When users' trouble started and ended (scenario s); ``seconds`` None while it lasted to the end."""

    start: float
    end: float
    seconds: float | None


class Comparison(Record):
    """Users hurt here against the newest finished run of another scenario."""

    against: str
    against_run: str | None = None
    users_hurt: int
    against_users_hurt: int | None = None
    times_fewer: float | None = None
    missing: str | None = None  # why there was nothing to compare with


class Alert(Record):
    """An alert that fired during the run, with the scenario times it first and last fired."""

    alert: str
    client: str | None = None
    severity: str | None = None
    first_at: float
    last_at: float


class DashboardPhoto(Record):
    """A photograph of the live dashboard and what its panels read (as the page's data attributes)."""

    file: str | None = None
    error: str | None = None
    at: float | None = None  # scenario seconds when its panels were read
    body: dict[str, str] = {}
    panels: dict[str, dict[str, Any]] = {}
    scenario_clock: str | None = None


class SiteVisit(Record):
    """A new visitor opening the website in the browser."""

    state: str | None = None
    message: str | None = None
    tweets: int | None = None
    at: float | None = None


class SitePhoto(Record):
    """A photograph of the website (the first visit) and what every visit saw."""

    file: str | None = None
    error: str | None = None
    visits: list[SiteVisit] = []


class Shot(Record):
    """The photographs taken late in one phase."""

    name: str
    planned_at: float
    at: float | None = None
    site: SitePhoto | None = None
    dashboard: DashboardPhoto | None = None


class Since(Record):
    """A time since the change, in scenario seconds and on the clock."""

    scenario_s: float
    wall_s: float


class Pull(Record):
    """Who pulled which lever, when (scenario s)."""

    at: float
    lever: str | None = None
    who: str


class LeverPulled(Record):
    """One lever as the scorecard lists it."""

    at: float | None
    who: str
    lever: str
    outcome: str
    note: str | None = None
    served_after: ServedAfter | None = None


class Scorecard(VersionedFile):
    """``scorecard.json``: how the room did, in scenario seconds from the change."""

    change_at: float
    first_alert: Alert | None = None
    detected: Pull | None = None
    time_to_detect: Since | None = None
    told_users: Pull | None = None
    time_to_tell: Since | None = None
    change_happened: bool
    # False when no user failed from the change until the game's end (a fix in time, a mild scenario)
    users_failed: bool = True
    fixed: Pull | None = None
    recovered_at: float | None = None
    time_to_mitigate: Since | None = None
    mitigated_by: Pull | None = None
    recovered_within_bound: bool | None = None
    users_hurt: dict[str, int] = {}
    user_reports: dict[str, int] = {}
    levers: list[LeverPulled] = []
    works_for_me: list[WorksForMeProbe] = []


class WorkshopRecord(Record):
    """What a workshop adds to its summary."""

    seed: int | None
    lead_in_s: float
    scorecard: Scorecard


class Summary(VersionedFile):
    """``summary.json``: the verdict, and the figures of the run and of each phase."""

    scenario: str
    title: str
    verdict: Verdict
    problems: list[str] = []
    speed: float
    quick: bool = False
    scale: float = 1.0
    duration: float
    phases: dict[str, PhaseFigures] = {}
    focus_phase: str | None = None  # the phase the headline figures come from
    user_reports: dict[str, int] = {}
    health_checks: float | None = None
    users_hurt: dict[str, int] = {}
    trouble: Trouble | None = None
    time_to_recover_s: float | None = None
    comparison: Comparison | None = None
    status_page: float | None = None
    works_for_me: list[WorksForMeProbe] = []
    acked_tweets: int = 0
    # None: not measured (an attached run that cannot see the tweets databases or the ledger).
    lost_tweets: int | None = 0
    expectations: list[ExpectationResult] = []
    teaches: str | None = None
    description: str | None = None
    facts: list[str] = []
    incident_date: str | None = None
    run_dir: str = ""
    started: float | None = None  # wall clock of scenario time 0; None when the run never started
    dashboard: list[Shot] = []
    alerts: list[Alert] = []
    workshop: WorkshopRecord | None = None


# ---- the series ---------------------------------------------------------------------------------

Point = tuple[float, float | None]  # [scenario seconds, value or null]


class SeriesEntry(Record):
    """One chart's data: a line per label."""

    title: str
    unit: Unit
    lines: dict[str, list[Point]] = {}


class PhaseSpan(Record):
    name: str
    start: float
    end: float


class Mark(Record):
    """Something that happened, drawn on every chart: at a time, or over a span (``end``)."""

    at: float
    end: float | None = None
    kind: MarkKind
    label: str = ""


class Series(VersionedFile):
    """``series.json``: every time series of the run on the scenario-time axis (see :mod:`chaos.series`)."""

    scenario: str
    speed: float
    duration: float
    t0: float  # wall clock of scenario time 0
    step: float  # scenario seconds between points
    phases: list[PhaseSpan] = []
    marks: list[Mark] = []
    series: dict[str, SeriesEntry] = {}


# ---- reading and writing ------------------------------------------------------------------------

M = TypeVar("M", bound=VersionedFile)
FILES: dict[str, type[VersionedFile]] = {
    "summary": Summary,
    "series": Series,
    "journal": JournalFile,
    "scorecard": Scorecard,
}


def write(path: Path, record: VersionedFile) -> None:
    """Write a record whole or not at all (a temporary file, then renamed over the old one)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(record.model_dump_json(indent=1), encoding="utf-8")
    tmp.replace(path)


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "the file"


def read(path: Path, model: type[M]) -> M:
    """A run-folder file as its record; one :class:`RecordError` line naming the file and what is wrong."""
    what = next(k for k, v in FILES.items() if v is model)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecordError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise RecordError(f"{path}: not UTF-8 text") from None
    except OSError as e:
        raise RecordError(f"{path}: cannot read it ({e.strerror or e})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise RecordError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    if not isinstance(data, dict):
        raise RecordError(f"{path}: not a run {what} (expected a JSON object)")
    version = data.get("format_version", data.get("version", 1))
    if version != FORMAT_VERSION:
        raise RecordError(
            f"{path}: {what} format version {version!r}; this failwhale reads version {FORMAT_VERSION}"
            + (
                " (run the scenario again to report it)"
                if isinstance(version, int) and version < FORMAT_VERSION
                else ""
            )
        )
    try:
        return model.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        raise RecordError(f"{path}: {_where(first['loc'])}: {first['msg']}") from None


def schema(model: type[BaseModel]) -> str:
    """A model's JSON Schema, as the committed file holds it."""
    return json.dumps(model.model_json_schema(mode="serialization"), indent=1, sort_keys=True) + "\n"


def journal_entries(data: Sequence[Mapping[str, object]]) -> list[JournalEntry]:
    """Journal entries from plain data (for tools and tests that build a journal by hand)."""
    return TypeAdapter(list[JournalEntry]).validate_python(data)


def main() -> int:
    """Write ``chaos/schemas/<file>.schema.json`` for every run-folder file."""
    SCHEMAS.mkdir(exist_ok=True)
    for name, model in FILES.items():
        (SCHEMAS / f"{name}.schema.json").write_text(schema(model), encoding="utf-8")
        print(f"wrote {SCHEMAS / name}.schema.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
