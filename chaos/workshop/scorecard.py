"""How the room did: the scorecard of a game (time to detect, to mitigate, to tell users, users
hurt, every lever with what it did), read from the run's summary and journal, and the text of it
the facilitator's terminal and the postmortem show.

Times are scenario seconds from when the change really reached the lab (a paused rollout comes
later than planned), with wall seconds beside them.
"""

from __future__ import annotations

from chaos.records import JournalEntry, LeverEntry, LeverPulled, Pull, Scorecard, ServedAfter, Since, StepEntry, Summary
from chaos.scenario import CHANGES, Scenario, Workshop
from chaos.workshop.levers import LEVERS


def game_end_at(journal: list[JournalEntry], now_at: float) -> float:
    """When the game ended (scenario seconds): the end lever, the clock's end, or now."""
    end = next(
        (e.at for e in journal if isinstance(e, LeverEntry) and e.lever == "end" and e.at is not None),
        None,
    )
    return now_at if end is None else end


def fix_pulled(
    journal: list[JournalEntry], w: Workshop | None, change_at: float | None, end_at: float = float("inf")
) -> Pull | None:
    """The room's first successful pull of the scenario's fix, from the change until the game's end."""
    if w is None or change_at is None:
        return None
    return next(
        (
            Pull(at=e.at, lever=e.lever, who=e.who)
            for e in journal
            if isinstance(e, LeverEntry)
            and e.lever == w.fix
            # The same lever on something else is no fix (a restart of the wrong backend).
            and all(e.args.get(k) == v for k, v in w.fix_args.items())
            and e.outcome == "ok"
            and e.at is not None
            and change_at <= e.at < end_at
        ),
        None,
    )


def actual_change_at(journal: list[JournalEntry], t0: float | None, speed: float) -> float | None:
    """When the change really reached the lab (scenario seconds): a paused rollout's first wave
    moves later than planned, and a stopped one (or one the game's end left unplayed) never does (None)."""
    step = next((e for e in journal if isinstance(e, StepEntry) and e.action in CHANGES), None)
    if step is None or t0 is None or step.unplayed is not None:
        return None
    if step.action == "rollout":
        moved = step.wave_times or []
        return round((moved[0] - t0) * speed, 1) if moved else None
    return round((step.started - t0) * speed, 1) if step.outcome == "ok" else None


# Levers that change what the lab does (the rest notice, tell, or look): only these can mitigate.
ACTING = tuple(s.name for s in LEVERS.values() if s.acts)


def _since(at: float | None, change_at: float, speed: float) -> Since | None:
    if at is None:
        return None
    return Since(scenario_s=round(at - change_at, 1), wall_s=round((at - change_at) / speed, 1))


def _users_failed(summary: Summary, change_at: float, end_at: float) -> bool:
    """Whether users were in trouble at any time between the change and the game's end."""
    trouble = summary.trouble
    return trouble is not None and trouble.end >= change_at and trouble.start <= end_at


def _recovered_at(summary: Summary, change_happened: bool, end_at: float) -> float | None:
    """When users were fine again (scenario s), if that was during the game."""
    trouble = summary.trouble
    if trouble is None or trouble.seconds is None or not change_happened:
        return None
    # After the game's end, that was the lab's own cleanup, not the room's doing.
    return trouble.end if trouble.end <= end_at else None


def scorecard(summary: Summary, journal: list[JournalEntry], scenario: Scenario, speed: float) -> Scorecard:
    """How the room did, in scenario seconds from the change (wall seconds beside)."""
    w = scenario.workshop
    planned = next((s.at for s in scenario.timeline if s.action in CHANGES), 0.0)
    actual = actual_change_at(journal, summary.started, speed)
    change_at = planned if actual is None else actual
    pulled = [e for e in journal if isinstance(e, LeverEntry)]
    end_at = game_end_at(journal, float("inf"))
    # Only what came after the change can have noticed it, told users about it or fixed it (levers
    # pulled before the clock started have no time, and came before it); an ack detects only when
    # something was paging, and "resolved" tells users nothing is wrong.
    after = [
        (Pull(at=e.at, lever=e.lever, who=e.who), e)
        for e in pulled
        if actual is not None and e.at is not None and e.lever != "end" and e.outcome == "ok" and e.at >= change_at
    ]
    detect = next((p for p, e in after if e.lever == "declare" or (e.lever == "ack" and e.firing)), None)
    told = next((p for p, e in after if e.lever == "status" and e.args.get("state") != "resolved"), None)
    fix = fix_pulled(journal, w, change_at if actual is not None else None, end_at)
    recovered_at = _recovered_at(summary, actual is not None, end_at)
    # Whatever the room pulled last before users were fine again is what mitigated it.
    mitigated = (
        None
        if recovered_at is None
        else next((p for p, e in reversed(after) if e.lever in ACTING and p.at <= recovered_at), None)
    )
    return Scorecard(
        change_at=change_at,
        first_alert=summary.alerts[0] if summary.alerts else None,
        detected=detect,
        time_to_detect=_since(None if detect is None else detect.at, change_at, speed),
        told_users=told,
        time_to_tell=_since(None if told is None else told.at, change_at, speed),
        change_happened=actual is not None,
        users_failed=_users_failed(summary, change_at, end_at),
        fixed=fix,
        recovered_at=recovered_at,
        time_to_mitigate=_since(recovered_at, change_at, speed),
        mitigated_by=mitigated,
        recovered_within_bound=None
        if fix is None or recovered_at is None or w is None or recovered_at < fix.at
        else recovered_at - fix.at <= w.recovers_within,
        users_hurt=summary.users_hurt,
        user_reports=summary.user_reports,
        levers=[
            LeverPulled(at=e.at, who=e.who, lever=e.lever, outcome=e.outcome, note=e.note, served_after=e.served_after)
            for e in pulled
        ],
        works_for_me=summary.works_for_me,
    )


def _dur(d: Since | None) -> str:
    return "-" if d is None else f"{d.scenario_s:g} scenario s ({d.wall_s:g} s on the clock)"


def _mitigation(card: Scorecard) -> str:
    if not card.change_happened:
        return "-, the change never reached the lab"
    if not card.users_failed:
        fix = card.fixed
        return "-, users were not hurt after the change" + (f": {fix.lever} by {fix.who} came first" if fix else "")
    if card.time_to_mitigate is None:
        return "-, users were still failing when the game ended" + ("" if card.fixed else " (no fix was pulled)")
    by = card.mitigated_by
    return _dur(card.time_to_mitigate) + (f", after {by.lever} by {by.who}" if by else ", with no lever pulled")


def _effect(after: ServedAfter | None) -> str:
    """What the scorecard says a lever did, from the journeys served after it."""
    if after is not None and after.at is not None and after.web is not None and after.app is not None:
        return f"; then web {after.web:.0%}, app {after.app:.0%} of journeys served at T+{after.at:g}s"
    if after is not None and after.too_soon:
        return "; the next lever came too soon to tell what this one did"
    return ""


def scorecard_text(card: Scorecard) -> str:
    """The scorecard as the facilitator's terminal and the postmortem show it."""
    hurt, reports, detected, told = card.users_hurt, card.user_reports, card.detected, card.told_users
    lines = [
        "scorecard",
        f"  time to detect    {_dur(card.time_to_detect)}"
        + (f", by {detected.who} ({detected.lever})" if detected else ""),
        f"  time to mitigate  {_mitigation(card)}",
        f"  time to tell      {_dur(card.time_to_tell)}"
        + (f", by {told.who}" if told else ", no status update was posted"),
        f"  users hurt        web {hurt.get('web', '-')}, app {hurt.get('app', '-')}",
        "  user reports      " + ", ".join(f"{k} {v}" for k, v in reports.items()),
        "  levers pulled     " + ("" if card.levers else "none"),
    ]
    for x in card.levers:
        when = "before the start" if x.at is None else f"T+{x.at:g}s"
        lines.append(f"    {when} {x.lever} by {x.who} ({x.outcome}){_effect(x.served_after)}")
    return "\n".join(lines)
