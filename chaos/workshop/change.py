"""Change the architecture the running lab runs, as the scale, rate-limit and drain levers do:
read what each process runs, edit each running version (a frozen :class:`Architecture`, copied
with ``model_copy(update=...)``), move every process to its edited copy, and undo the lot if one
process does not take it, so a lever never half-applies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from chaos.control import Answer, LabControl
from chaos.errors import LabError
from chaos.lease import LeaseKeeper
from configfiles.errors import ConfigError
from services.architecture.model import Architecture, parse_architecture

# An edit: the changed copy of an architecture, and a note saying what changed (or a WorkshopError
# saying why this architecture cannot take it).
Edited = tuple[Architecture, str]
VERSION_CHARS = 32  # an architecture's version is at most this long (services/architecture/model.py)


@dataclass
class Running:
    """One architecture version the lab runs now, the processes that run it, and its edited copy."""

    before: Architecture
    names: list[str] = field(default_factory=list)
    after: Architecture | None = None


async def running_versions(control: LabControl) -> dict[str, Running]:
    """What each process runs now, by version: mid-rollout, processes run different versions."""
    current = await control.each("GET", "/control/architecture")
    unread = [a for a in current if not a.ok]
    if unread:
        raise LabError(
            f"could not read the running architecture of {', '.join(a.instance for a in unread)}: {unread[0].body}"
        )
    by_version: dict[str, Running] = {}
    for a in current:
        version = a.body["version"]
        if version not in by_version:
            try:
                arch = parse_architecture(a.body["architecture"], f"{a.instance}'s running architecture")
            except ConfigError as e:  # a process that runs what no architecture file could say
                raise LabError(str(e)) from e
            by_version[version] = Running(arch)
        by_version[version].names.append(a.instance)
    return by_version


async def _put(control: LabControl, arch: Architecture, names: list[str]) -> list[Answer]:
    return await control.each(
        "PUT", "/control/architecture", json={"architecture": arch.model_dump(mode="json")}, only=names, timeout_s=3
    )


async def change_architecture(
    control: LabControl, suffix: str, edit: Callable[[Architecture], Edited], keeper: LeaseKeeper | None
) -> str:
    """Change the architecture each process runs now, and move it to the changed copy; the edits' notes.

    Mid-rollout, processes run different versions: each version is edited on its own, so the
    lever neither finishes nor undoes the rollout. Every edit is made (and may be refused)
    before any process moves. Each change is a lease the game's ``keeper`` renews: when the
    game ends, however it ends, the lab goes back to its baseline within one lease."""
    by_version = await running_versions(control)
    notes = []
    for running in by_version.values():
        changed, note = edit(running.before)
        version = f"{running.before.version}-{suffix}"[:VERSION_CHARS]
        running.after = changed.model_copy(update={"version": version})
        notes.append(note)
    answers: dict[str, list[Answer]] = {}
    for old, running in by_version.items():
        assert running.after is not None
        if keeper is not None:
            keeper.hold(running.names, running.after.version)  # before the request: its answer may be lost
        answers[old] = await _put(control, running.after, running.names)
    bad = [a for group in answers.values() for a in group if not a.ok]
    if keeper is not None:
        keeper.release([a.instance for a in bad if a.status != 0])  # refused: it runs what it ran before
    if bad:
        undone = await _undo(control, by_version, answers, keeper)
        raise LabError(
            f"could not move {len(bad)} process(es) ({', '.join(a.instance for a in bad)}): {bad[0].body}{undone}"
        )
    return "; ".join(dict.fromkeys(notes))


async def _undo(
    control: LabControl, by_version: dict[str, Running], answers: dict[str, list[Answer]], keeper: LeaseKeeper | None
) -> str:
    """No half-applied change: every process asked goes back to what it ran before (one whose
    answer was lost may have moved), and the undo's own answers are checked; what to add to the error."""
    stuck = []
    for old, running in by_version.items():
        # Those that took the change, and those whose answer was lost (they may have):
        # a process that refused it runs what it ran before.
        moved = [a.instance for a in answers[old] if a.ok or a.status == 0]
        if not moved:
            continue
        if keeper is not None:
            keeper.hold(moved, old)
        stuck += [a.instance for a in await _put(control, running.before, moved) if not a.ok]
    if stuck:
        return f"; {', '.join(stuck)} did not confirm going back (their leases lapse to the baseline)"
    return "; the others went back, so nothing changed"
