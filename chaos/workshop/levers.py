"""The workshop's levers in one table: each lever's name, what it is for, and what it takes.

Every lever is a :class:`LeverSpec` in :data:`LEVERS`: its name, its help and a small frozen
pydantic model of its arguments (besides who pulls it). Everything that knows a lever's
arguments reads them from here, so a lever is declared once:

- a pull is validated by :func:`parse_args` (a bad argument is one line; the server answers 400);
- ``failwhale workshop lever`` builds one subcommand per lever, with an option per argument
  (``chaos/cli/workshop.py``), from :attr:`LeverSpec.args`;
- ``GET /levers`` lists every lever with its arguments, their types, choices and help
  (:func:`listing`), and the levers page (``chaos/static/levers.html``) builds its controls
  from that list.

What each lever does to the lab is :class:`chaos.workshop.actions.Levers`.
"""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from chaos.workshop.room import WorkshopError
from services.web.status import MAX_UPDATE_CHARS


class LeverArgs(BaseModel):
    """What a lever takes besides who pulls it: nothing, unless a lever's own model says more.

    A blank value (JSON null, or an empty string, as a form leaves it) is a value left out, so
    the argument's default applies; an argument the lever does not take is refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _blank_is_left_out(cls, data: object) -> object:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None and v != ""}
        return data


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


Factor = Annotated[float, Field(ge=0.1, le=10)]
CacheName = Literal["timelines", "tokens"]
# The status page's states (services/web/status.py UPDATE_STATES; a type needs them written out, and a test
# checks they agree).
StatusState = Literal["investigating", "identified", "monitoring", "resolved"]


class DeclareArgs(LeverArgs):
    """declare: how bad the incident is (upper or lower case)."""

    severity: Annotated[
        Literal["SEV1", "SEV2", "SEV3"],
        BeforeValidator(_upper),
        Field(description="how bad it is: SEV1 is the worst"),
    ] = "SEV2"


class ScaleArgs(LeverArgs):
    """scale: which backend, and by how much."""

    backend: Annotated[
        str,
        Field(
            description="the backend to give machines to: timeline, auth, tweets or notifications "
            "(the API tier's replicas are fixed: drain one instead)"
        ),
    ] = "timeline"
    factor: Annotated[Factor, Field(description="how many times the machines it has (0.5 halves them)")] = 2.0


class RateLimitArgs(LeverArgs):
    """rate-limit: by how much."""

    factor: Annotated[Factor, Field(description="what to multiply auth's rate limits by (2 raises, 0.5 lowers)")] = 2.0


class FlushCacheArgs(LeverArgs):
    """flush-cache: one cache, or (None) every cache."""

    cache: CacheName | None = Field(None, description="the cache to empty", json_schema_extra={"blank": "all"})


class WarmCacheArgs(LeverArgs):
    """warm-cache: the timeline cache, or (None) every cache that can be warmed: the same one."""

    # Only the timeline cache can be built ahead of users: a token is issued when a user signs in.
    cache: Literal["timelines"] | None = Field(
        None,
        description="the cache to build again",
        json_schema_extra={"blank": "all"},
    )


class DrainArgs(LeverArgs):
    """drain: the API replica (checked against the running architecture when pulled)."""

    replica: Annotated[str, Field(description="the API replica the edge stops sending to", examples=["api-2"])]


class RestartArgs(LeverArgs):
    """restart: the process (checked against the running lab when pulled)."""

    service: Annotated[
        str, Field(description="the process to restart: a backend or an API replica", examples=["notifications"])
    ]


class StatusArgs(LeverArgs):
    """status: where the incident stands, and the words users read (stripped, never empty)."""

    state: Annotated[StatusState, Field(description="where the incident stands; resolved ends the update")] = (
        "investigating"
    )
    text: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_UPDATE_CHARS),
        Field(
            description="what the update tells users",
            examples=["Some of you cannot load the website. We are looking into it."],
        ),
    ]


@dataclass(frozen=True)
class ArgSpec:
    """One argument of a lever as its consumers show it; read off the lever's model by :func:`arg_specs`."""

    name: str
    type: Literal["choice", "number", "text"]
    help: str
    required: bool
    default: str | float | None = None
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    example: str | None = None
    blank: str | None = None  # what leaving an optional choice out means ("all")


def _without_none(annotation: Any) -> Any:
    """``X | None`` as X (the None is a default, not a value); anything else as it is."""
    if get_origin(annotation) in (Union, types.UnionType) and type(None) in get_args(annotation):
        (inner,) = (a for a in get_args(annotation) if a is not type(None))
        return inner
    return annotation


def _bound(found: Sequence[object]) -> float | None:
    """A number field's bound (from its ``Field(ge=..., le=...)``), if it has one."""
    return float(found[0]) if found and isinstance(found[0], int | float) else None


def _arg(name: str, field: FieldInfo) -> ArgSpec:
    annotation = _without_none(field.annotation)
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    blank = extra.get("blank")
    arg = ArgSpec(
        name=name,
        type="text",
        help=field.description or name,
        required=field.is_required(),
        default=None if field.is_required() else field.default,
        example=str(field.examples[0]) if field.examples else None,
        blank=blank if isinstance(blank, str) else None,
    )
    if get_origin(annotation) is Literal:
        return replace(arg, type="choice", choices=tuple(get_args(annotation)))
    if annotation in (int, float):
        ge = [m.ge for m in field.metadata if isinstance(m, annotated_types.Ge)]
        le = [m.le for m in field.metadata if isinstance(m, annotated_types.Le)]
        return replace(arg, type="number", minimum=_bound(ge), maximum=_bound(le))
    if annotation is str:
        return replace(
            arg, max_length=next((m.max_length for m in field.metadata if isinstance(m, StringConstraints)), None)
        )
    raise TypeError(f"lever argument {name}: no way to show a {annotation!r} (use a Literal, a number or str)")


def arg_specs(model: type[LeverArgs]) -> tuple[ArgSpec, ...]:
    """A lever model's arguments, in the order the model declares them."""
    return tuple(_arg(name, field) for name, field in model.model_fields.items())


@dataclass(frozen=True)
class LeverSpec:
    """One lever: its name, what it is for, and the model of what it takes."""

    name: str
    help: str
    model: type[LeverArgs] = LeverArgs
    acts: bool = False  # changes what the lab does (the rest notice, tell, or look): it may mitigate
    answer_within_s: float = 15.0  # how long the command line waits for the lever's answer

    @property
    def args(self) -> tuple[ArgSpec, ...]:
        """What the lever takes, as :func:`listing` and the command line show it."""
        return arg_specs(self.model)


LEVERS: dict[str, LeverSpec] = {
    s.name: s
    for s in (
        LeverSpec("declare", "declare an incident, with a severity", DeclareArgs),
        LeverSpec("ack", "acknowledge the alerts that page now"),
        LeverSpec("pause", "hold the rollout in progress (or the next one) before its next wave", acts=True),
        LeverSpec("resume", "let a paused rollout go on", acts=True),
        LeverSpec("rollback", "move every process back to the architecture it started with", acts=True),
        LeverSpec("scale", "give a backend more (or fewer) machines", ScaleArgs, acts=True),
        LeverSpec("rate-limit", "multiply auth's rate limits", RateLimitArgs, acts=True),
        LeverSpec("flush-cache", "empty caches", FlushCacheArgs, acts=True),
        # A warm-up builds under the timeline's capacity, and works-for-me visits the site as two
        # users: under an outage either may take a while.
        LeverSpec(
            "warm-cache",
            "build the timeline cache's entries again before users ask",
            WarmCacheArgs,
            acts=True,
            answer_within_s=90.0,
        ),
        LeverSpec("drain", "stop the edge sending requests to an API replica", DrainArgs, acts=True),
        LeverSpec(
            "restart",
            "restart a process: what it holds (a stuck connection pool, anything injected into it) is gone",
            RestartArgs,
            acts=True,
        ),
        LeverSpec("status", "post a status-page update", StatusArgs),
        LeverSpec(
            "works-for-me",
            "the facilitator's view: a logged-in app user with a warm cache, and a fresh web visit",
            answer_within_s=90.0,
        ),
    )
}


def spec(lever: str) -> LeverSpec:
    """The lever named ``lever``, or a WorkshopError naming those there are."""
    found = LEVERS.get(lever)
    if found is None:
        raise WorkshopError(f"no lever named {lever!r}; there are: {', '.join(LEVERS)}")
    return found


def _problem(lever: LeverSpec, error: ErrorDetails) -> str:
    """One pydantic error as a sentence that says what the argument must be."""
    name = str(error["loc"][0]) if error["loc"] else ""
    got, kind = error.get("input"), error["type"]
    arg = next((a for a in lever.args if a.name == name), None)
    if arg is None:  # an argument the lever does not take
        takes = ", ".join(a.name for a in lever.args) or "nothing but who pulls it"
        return f"no argument {name!r} (it takes {takes})"
    if kind in ("missing", "string_too_short"):
        return f"{name} is missing: {arg.help}"
    if arg.type == "choice":
        return f"{name} must be one of {', '.join(arg.choices)}, not {got!r}"
    if arg.type == "number" and kind in ("greater_than_equal", "less_than_equal"):
        return f"{name} must be between {arg.minimum:g} and {arg.maximum:g}, not {float(got):g}"
    if arg.type == "number":
        return f"{name} must be a number, not {got!r}"
    if kind == "string_too_long":
        return f"{name} must be at most {arg.max_length} characters, not {len(str(got))}"
    return f"{name} must be text, not {got!r}"


def parse_args(lever: str, raw: Mapping[str, object]) -> LeverArgs:
    """A pull's arguments (without who pulls it) as the lever's model, or a WorkshopError of one line."""
    s = spec(lever)
    try:
        return s.model.model_validate(raw)
    except ValidationError as e:
        raise WorkshopError(f"{lever}: " + "; ".join(_problem(s, err) for err in e.errors())) from e


def listing() -> dict[str, object]:
    """Every lever for ``GET /levers``: its help, and each argument with its type, choices and help."""
    return {
        s.name: {
            "help": s.help,
            "args": [{k: v for k, v in asdict(a).items() if v is not None and v != ()} for a in s.args],
        }
        for s in LEVERS.values()
    }


class LeverAnswer(BaseModel):
    """What the levers' server answers a pull (and the end of the game), and the command line reads."""

    model_config = ConfigDict(frozen=True)

    lever: str
    who: str
    note: str
    at: float | None = None  # scenario seconds; None before the game's clock started
    run_dir: str | None = None  # the end's answer: where the scorecard and postmortem go
