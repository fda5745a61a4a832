"""Workshop mode without a lab: the seed's plan, the hidden scenario, the sheet, the scorecard and
the lever server's manners."""

from __future__ import annotations

import copy
import re
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from chaos import promql, records
from chaos.control import Answer
from chaos.lab.ports import free_port_lab_config, free_ports
from chaos.lab.supervisor import write_private
from chaos.lease import LeaseKeeper
from chaos.records import (
    Alert,
    Journal,
    JournalEntry,
    JournalFile,
    LeverEntry,
    Pull,
    ServedAfter,
    Since,
    StepDetail,
    StepEntry,
    Summary,
    Trouble,
)
from chaos.scenario import CATALOG, Kill, Rollback, Rollout, load_scenario
from chaos.workshop.actions import Levers
from chaos.workshop.client import room_link, send
from chaos.workshop.game import SERVED_WINDOW_S, UNPLAYED_NOTES, Game
from chaos.workshop.levers import LEVERS, DeclareArgs, DrainArgs, RateLimitArgs, ScaleArgs, parse_args
from chaos.workshop.plan import LEAD_IN_S, catalog, hidden, plan, sheet
from chaos.workshop.room import WorkshopError, workshop_dir
from chaos.workshop.scorecard import ACTING, actual_change_at, fix_pulled, scorecard, scorecard_text
from chaos.workshop.server import lever_app
from services.architecture import parse_architecture
from services.config import load_lab_config
from services.web.status import MAX_UPDATE_CHARS, UPDATE_STATES
from tests.chaos.workshop.conftest import FakeRun
from tests.conftest import LabServer

HEADLINE = "twitter-2022-12-28"


def test_the_same_seed_plays_the_same_scenario_at_the_same_times():
    assert plan(7) == plan(7)
    plans = {plan(seed) for seed in range(20)}
    assert len({p.path for p in plans}) > 1  # the seed really picks
    assert len({p.lead_in_s for p in plans}) > 1
    assert all(LEAD_IN_S[0] <= p.lead_in_s <= LEAD_IN_S[1] for p in plans)
    a, b = (hidden(load_scenario(plan(7).path), plan(7).lead_in_s) for _ in range(2))
    assert [s.at for s in a.timeline] == [s.at for s in b.timeline]


def test_only_scenarios_with_a_workshop_section_are_played():
    names = [p.stem for p in catalog()]
    assert HEADLINE in names and "canary-counterfactual" not in names
    with pytest.raises(WorkshopError, match=r"no workshop scenario named 'canary-counterfactual'; there are: "):
        plan(1, "canary-counterfactual")


def test_the_hidden_scenario_is_later_by_the_lead_in_and_judges_nothing():
    p = plan(3, HEADLINE)
    original = load_scenario(p.path)
    h = hidden(original, p.lead_in_s)
    assert [s.at for s in h.timeline] == [s.at + p.lead_in_s for s in original.timeline]
    assert [(x.start, x.end) for x in h.phases] == [
        (x.start + p.lead_in_s, x.end + p.lead_in_s) for x in original.phases
    ]
    assert h.expectations == [] and h.compare is None
    assert h.source == original.source  # architecture files are still found beside it
    assert any(isinstance(s, Rollback) for s in h.timeline)  # kept, but left to the participants


def test_the_sheet_gives_the_facilitator_everything():
    p = plan(3, HEADLINE)
    h = hidden(load_scenario(p.path), p.lead_in_s)
    text = sheet(p, h, speed=2)
    assert h.title in text and f"seed {p.seed}" in text
    for hint in h.workshop.hints + h.workshop.look_for + h.workshop.debrief:
        assert hint in text
    assert "left to the participants" in text
    assert "failwhale workshop lever rollback" in text


T0 = 1000.0  # the game's clock started here (wall seconds); its speed is 2 throughout


def _changed(at: float) -> list[JournalEntry]:
    """The change's rollout step, its first wave moved at scenario second ``at``."""
    return [
        StepEntry(
            index=1,
            action="rollout",
            name="the change",
            at=at,
            started=T0 + at / 2,
            outcome="ok",
            wave_times=[T0 + at / 2, T0 + at / 2 + 1],
        )
    ]


def _summary(**fields: Any) -> Summary:
    """A game's summary: started at T0, nobody hurt, no alert, no trouble, unless ``fields`` say otherwise."""
    return Summary(scenario="workshop", title="a game", verdict="held", speed=2.0, duration=300.0, started=T0, **fields)


def _journal(*levers: tuple[str, str, float | None, str], **extra: Any) -> list[JournalEntry]:
    """Lever entries as the journal keeps them; ``extra`` adds fields to every one."""
    return [
        LeverEntry(lever=name, who=who, at=at, outcome=outcome, note="", **extra) for name, who, at, outcome in levers
    ]


def _journal_of(path: Path, entries: list[JournalEntry]) -> Journal:
    """A game's journal (in ``path``) that holds these entries."""
    journal = Journal(path, "workshop")
    for e in entries:
        journal.start(e)
    return journal


def test_the_scorecard_counts_from_the_change():
    h = hidden(load_scenario(plan(3, HEADLINE).path), 20.0)
    change = next(s.at for s in h.timeline if s.action == "rollout")
    summary = _summary(
        alerts=[Alert(alert="JourneyErrorBudgetBurn", client="web", first_at=change + 9, last_at=200)],
        trouble=Trouble(start=change + 3, end=change + 100, seconds=97.0),
        users_hurt={"web": 40, "app": 9},
        user_reports={"website": 30, "app": 8},
    )
    journal = _changed(change) + _journal(
        ("scale", "ops", change + 20, "ok"),
        ("declare", "ic", change + 30, "ok"),
        ("rollback", "ops", change + 60, "ok"),
    )
    card = scorecard(summary, journal, h, speed=2)
    assert card.change_at == change
    assert card.time_to_detect == Since(scenario_s=30.0, wall_s=15.0)
    assert card.detected == Pull(at=change + 30, lever="declare", who="ic")
    assert card.fixed is not None and card.fixed.lever == "rollback"
    assert card.time_to_mitigate == Since(scenario_s=100.0, wall_s=50.0)
    assert card.recovered_within_bound is True  # 40 s after the rollback; the scenario allows 60
    assert [x.lever for x in card.levers] == ["scale", "declare", "rollback"]
    assert card.first_alert is not None and card.first_alert.alert == "JourneyErrorBudgetBurn"
    text = scorecard_text(card)
    assert "time to detect    30 scenario s (15 s on the clock), by ic (declare)" in text
    assert "time to mitigate  100 scenario s (50 s on the clock), after rollback by ops" in text
    assert "users hurt        web 40, app 9" in text


def test_a_paused_change_counts_from_when_it_really_came():
    h = hidden(load_scenario(plan(3, HEADLINE).path), 20.0)
    planned = next(s.at for s in h.timeline if s.action == "rollout")
    came = planned + 40  # a pause held it; then someone resumed it
    journal = _changed(came) + _journal(("declare", "ic", planned + 10, "ok"), ("declare", "ic", came + 15, "ok"))
    card = scorecard(_summary(), journal, h, speed=2)
    assert card.change_at == came and card.time_to_detect == Since(scenario_s=15.0, wall_s=7.5)
    # A change stopped before its first wave never came: nothing to detect or mitigate.
    stopped = [_changed(planned)[0].model_copy(update={"wave_times": [], "outcome": "rolled_back"})]
    never = scorecard(_summary(), stopped + _journal(("declare", "ic", planned + 10, "ok")), h, speed=2)
    assert never.change_happened is False and never.time_to_detect is None
    assert "the change never reached the lab" in scorecard_text(never)


def test_recovery_after_the_game_ended_is_the_labs_cleanup_not_a_mitigation():
    h = hidden(load_scenario(plan(3, HEADLINE).path), 20.0)
    change = next(s.at for s in h.timeline if s.action == "rollout")
    summary = _summary(trouble=Trouble(start=change + 3, end=change + 130, seconds=127.0))
    wrong = _changed(change) + _journal(("scale", "ops", change + 20, "ok"), ("end", "facilitator", change + 100, "ok"))
    card = scorecard(summary, wrong, h, speed=2)
    assert card.recovered_at is None and card.time_to_mitigate is None and card.mitigated_by is None
    assert "users were still failing when the game ended (no fix was pulled)" in scorecard_text(card)


def test_a_game_where_no_user_failed_says_so_instead_of_still_failing():
    h = hidden(load_scenario(plan(3, HEADLINE).path), 20.0)
    change = next(s.at for s in h.timeline if s.action == "rollout")
    end = _journal(("end", "facilitator", change + 100, "ok"))
    fixed = _changed(change) + _journal(("rollback", "ops", change + 5, "ok")) + end
    card = scorecard(_summary(), fixed, h, speed=2)  # no trouble at all
    assert card.change_happened and not card.users_failed and card.time_to_mitigate is None
    text = scorecard_text(card)
    assert "users were not hurt after the change: rollback by ops came first" in text and "still failing" not in text
    # Trouble only before the change (a cold start) or after the game's end is not this game's.
    for trouble in (
        Trouble(start=1, end=change - 10, seconds=5.0),
        Trouble(start=change + 120, end=change + 150, seconds=None),
    ):
        quiet = scorecard(_summary(trouble=trouble), _changed(change) + end, h, speed=2)
        assert not quiet.users_failed and "users were not hurt after the change\n" in scorecard_text(quiet) + "\n"
    # Users who did fail and were still failing at the end are told apart.
    hurt = scorecard(
        _summary(trouble=Trouble(start=change + 3, end=change + 150, seconds=None)), _changed(change) + end, h, speed=2
    )
    assert hurt.users_failed and "users were still failing when the game ended (no fix was pulled)" in scorecard_text(
        hurt
    )


def test_whatever_lever_restored_users_is_credited_even_if_it_is_not_the_scenarios_fix():
    h = hidden(load_scenario(plan(3, HEADLINE).path), 20.0)
    change = next(s.at for s in h.timeline if s.action == "rollout")
    summary = _summary(trouble=Trouble(start=change + 3, end=change + 50, seconds=47.0))
    journal = _changed(change) + _journal(
        ("declare", "ic", change + 10, "ok"),
        ("rate-limit", "sre", change + 30, "ok"),
        ("rollback", "ops", change + 80, "ok"),
        ("end", "facilitator", change + 120, "ok"),
    )
    card = scorecard(summary, journal, h, speed=2)
    assert card.mitigated_by == Pull(at=change + 30, lever="rate-limit", who="sre")
    assert card.time_to_mitigate == Since(scenario_s=50.0, wall_s=25.0)
    assert card.fixed is not None and card.fixed.lever == "rollback"
    assert card.recovered_within_bound is None  # users were fine before it
    # A rollback pulled before the change is not the fix.
    early = _changed(change) + _journal(("rollback", "ops", change - 5, "ok"))
    assert scorecard(_summary(), early, h, speed=2).fixed is None


def test_without_the_fix_there_is_no_time_to_mitigate():
    h = hidden(load_scenario(plan(3, HEADLINE).path), 20.0)
    summary = _summary(trouble=Trouble(start=40, end=200, seconds=None))  # users failed to the end
    card = scorecard(summary, _changed(30) + _journal(("scale", "ops", 60, "ok")), h, speed=2)
    assert card.fixed is None and card.time_to_mitigate is None and card.time_to_detect is None
    assert "no fix was pulled" in scorecard_text(card)


async def test_levers_refuse_a_request_for_another_host(tmp_path, http):
    levers = Levers(FakeRun(tmp_path))
    port = free_ports(1)[0]
    app = lever_app(levers, "sesame", facilitator_token="open-sesame", address=("127.0.0.1", port))
    server = LabServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    try:
        auth = {"Authorization": "Bearer sesame"}
        async with http.get(f"http://127.0.0.1:{port}/levers", headers={**auth, "Host": "rebind.example"}) as resp:
            assert resp.status == 421 and "rebind.example" in (await resp.json())["error"]
        async with http.get(f"http://127.0.0.1:{port}/levers", headers=auth) as resp:
            assert resp.status == 200
    finally:
        await server.close()


async def test_levers_need_the_token(lever_server, http):
    url, _ = lever_server
    async with http.post(f"{url}/levers/rollback", json={"who": "mallory"}) as resp:
        assert resp.status == 401
        assert "workshop token" in (await resp.json())["error"]
    async with http.post(f"{url}/levers/rollback", json={}, headers={"Authorization": "Bearer wrong"}) as resp:
        assert resp.status == 401


async def test_a_bad_lever_request_is_one_line_naming_what_is_wrong(lever_server, http):
    url, _ = lever_server
    auth = {"Authorization": "Bearer sesame"}
    async with http.post(f"{url}/levers/reboot", json={}, headers=auth) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"].startswith("no lever named 'reboot'; there are: declare, ack, pause")
    async with http.post(f"{url}/levers/declare", data=b"{nope", headers=auth) as resp:
        assert resp.status == 400 and (await resp.json())["error"] == "the body must be JSON"
    async with http.post(f"{url}/levers/declare", data=b"[" * 100_000 + b"]" * 100_000, headers=auth) as resp:
        assert resp.status == 400 and (await resp.json())["error"] == "the body nests too deeply"
    async with http.post(f"{url}/levers/declare", data=b'{"who": ' + b"9" * 5000 + b"}", headers=auth) as resp:
        assert resp.status == 400 and (await resp.json())["error"] == "the body must be JSON"
    async with http.post(f"{url}/levers/rollback", json={"who": "ops"}, headers=auth) as resp:
        assert resp.status == 409 and "still starting" in (await resp.json())["error"]


async def test_end_stops_the_game_and_is_journaled(lever_server, http):
    url, levers = lever_server
    assert not levers.ended.is_set()
    async with http.post(
        f"{url}/levers/end", json={"who": "facilitator"}, headers={"Authorization": "Bearer open-sesame"}
    ) as resp:
        assert resp.status == 200 and (await resp.json())["run_dir"] == str(levers.runner.run_dir)
    assert levers.ended.is_set()
    async with http.post(
        f"{url}/levers/end", json={"who": "facilitator"}, headers={"Authorization": "Bearer open-sesame"}
    ) as resp:
        assert "already ending" in (await resp.json())["note"]
    assert [(e.lever, e.who) for e in levers.runner.journal.entries if isinstance(e, LeverEntry)] == [
        ("end", "facilitator")
    ]
    # After the end, no lever acts (and none is journaled).
    async with http.post(
        f"{url}/levers/rollback", json={"who": "ops"}, headers={"Authorization": "Bearer sesame"}
    ) as resp:
        assert (
            resp.status == 400 and (await resp.json())["error"] == "the game has ended: levers no longer act on the lab"
        )
    assert len(levers.runner.journal.entries) == 1


async def test_only_the_facilitators_token_ends_the_game(lever_server, http):
    url, levers = lever_server
    # The room's token is in every participant's link: it pulls levers but cannot end the game.
    async with http.post(
        f"{url}/levers/end", json={"who": "mallory"}, headers={"Authorization": "Bearer sesame"}
    ) as resp:
        assert resp.status == 403 and "only the facilitator ends the game" in (await resp.json())["error"]
    async with http.post(f"{url}/levers/end", json={"who": "mallory"}) as resp:
        assert resp.status == 401
    # Nor does the facilitator's token stand in for the room's on an ordinary lever.
    async with http.post(
        f"{url}/levers/declare", json={"who": "x", "severity": "sev1"}, headers={"Authorization": "Bearer open-sesame"}
    ) as resp:
        assert resp.status == 401
    assert not levers.ended.is_set() and levers.runner.journal.entries == []


def test_the_cli_ends_the_game_with_the_facilitators_token_and_pulls_levers_with_the_rooms(tmp_path):
    lab = load_lab_config(free_port_lab_config(tmp_path))
    write_private(workshop_dir(lab) / "token", "room\n")
    # The room's token alone (a participant's copy) cannot even try to end the game.
    with pytest.raises(
        WorkshopError, match=r"only the facilitator ends the game \(.*facilitator-token is missing here\)"
    ):
        send(lab, "end", "ic", {})


def test_pulling_a_lever_with_no_workshop_running_says_how_to_start_one(tmp_path):
    lab = load_lab_config(free_port_lab_config(tmp_path))
    with pytest.raises(
        WorkshopError, match=r"no workshop is running here .*: start one with `failwhale workshop start`"
    ):
        send(lab, "declare", "ic", {})


async def test_the_levers_page_and_list_need_no_token_but_pulls_do(lever_server, http):
    url, _ = lever_server
    async with http.get(f"{url}/") as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        page = await resp.text()
    assert "Bearer" in page and "sesame" not in page  # the page sends the token; it does not hold it
    async with http.get(f"{url}/levers") as resp:
        listed = (await resp.json())["levers"]
    assert list(listed) == list(LEVERS) and "end" not in listed  # only the facilitator ends the game
    for lever in ("pause", "drain", "flush-cache", "warm-cache", "status", "works-for-me"):
        assert lever in listed


async def test_the_list_says_what_each_lever_takes_for_the_page_to_build_its_controls(lever_server, http):
    url, _ = lever_server
    async with http.get(f"{url}/levers") as resp:
        listed = (await resp.json())["levers"]
    assert listed["rollback"] == {"help": LEVERS["rollback"].help, "args": []}
    (severity,) = listed["declare"]["args"]
    assert severity["name"] == "severity" and severity["type"] == "choice" and severity["default"] == "SEV2"
    assert severity["choices"] == ["SEV1", "SEV2", "SEV3"] and severity["help"]
    backend, factor = listed["scale"]["args"]
    assert backend["type"] == "text" and backend["default"] == "timeline"
    assert factor == {
        "name": "factor",
        "type": "number",
        "help": LEVERS["scale"].args[1].help,
        "required": False,
        "default": 2.0,
        "minimum": 0.1,
        "maximum": 10.0,
    }
    (cache,) = listed["flush-cache"]["args"]
    assert "default" not in cache and cache["blank"] == "all" and cache["choices"] == ["timelines", "tokens"]
    (replica,) = listed["drain"]["args"]
    assert replica["required"] is True and replica["example"] == "api-2"
    state, text = listed["status"]["args"]
    assert state["choices"] == list(UPDATE_STATES) and text["max_length"] == MAX_UPDATE_CHARS and text["required"]


async def test_a_bad_argument_is_one_line_and_a_400_before_any_lever_acts(lever_server, http):
    url, levers = lever_server
    auth = {"Authorization": "Bearer sesame"}
    refusals = {
        "scale": ({"factor": 50}, "scale: factor must be between 0.1 and 10, not 50"),
        "rate-limit": ({"factor": "lots"}, "rate-limit: factor must be a number, not 'lots'"),
        "declare": ({"severity": "sev9"}, "declare: severity must be one of SEV1, SEV2, SEV3, not 'SEV9'"),
        "flush-cache": (
            {"cache": "everything"},
            "flush-cache: cache must be one of timelines, tokens, not 'everything'",
        ),
        "drain": ({}, "drain: replica is missing: the API replica the edge stops sending to"),
        "status": ({"text": "  "}, "status: text is missing: what the update tells users"),
        "ack": ({"colour": "red"}, "ack: no argument 'colour' (it takes nothing but who pulls it)"),
    }
    for lever, (body, error) in refusals.items():
        async with http.post(f"{url}/levers/{lever}", json={"who": "ops", **body}, headers=auth) as resp:
            assert resp.status == 400 and (await resp.json())["error"] == error, lever
    assert levers.runner.journal.entries == []  # refused at the door: no lever was pulled


def test_a_pulls_arguments_are_its_levers_model_with_its_defaults():
    assert parse_args("declare", {"severity": "sev1"}) == DeclareArgs(severity="SEV1")
    # What a form leaves blank, or JSON leaves null, is left out: the default applies.
    assert parse_args("scale", {"backend": "", "factor": None}) == ScaleArgs(backend="timeline", factor=2.0)
    assert parse_args("status", {"text": "  We are on it. "}).model_dump() == {
        "state": "investigating",
        "text": "We are on it.",
    }
    with pytest.raises(WorkshopError, match=r"^no lever named 'reboot'; there are: declare, ack, pause"):
        parse_args("reboot", {})


def test_only_acting_levers_can_be_credited_with_a_mitigation():
    assert set(ACTING) == {
        "pause",
        "resume",
        "rollback",
        "scale",
        "rate-limit",
        "flush-cache",
        "warm-cache",
        "drain",
        "restart",
    }


def test_the_room_link_carries_the_token_in_its_fragment(tmp_path):
    lab = load_lab_config(free_port_lab_config(tmp_path))
    assert room_link(lab) is None
    write_private(workshop_dir(lab) / "token", "t0ken\n")
    assert room_link(lab) == f"{lab.url('workshop')}/#token=t0ken"


def test_the_scorecard_times_the_first_status_update_and_keeps_levers_from_before_the_start():
    h = hidden(load_scenario(plan(3, HEADLINE).path), 20.0)
    change = next(s.at for s in h.timeline if s.action == "rollout")
    summary = _summary()
    journal = (
        _changed(change)
        + _journal(("pause", "ops", None, "ok"))
        + _journal(("status", "comms", change - 5, "ok"), args={"state": "investigating"})
        + _journal(("status", "comms", change + 30, "ok"), args={"state": "resolved"})
        + _journal(
            ("status", "comms", change + 40, "refused"),
            ("status", "comms", change + 50, "ok"),
            args={"state": "investigating"},
        )
    )
    card = scorecard(summary, journal, h, speed=2)
    # Before the change there was nothing to tell; "resolved" tells users all is well.
    assert card.time_to_tell == Since(scenario_s=50.0, wall_s=25.0)
    assert card.told_users is not None and card.told_users.who == "comms"
    assert [x.lever for x in card.levers] == ["pause", "status", "status", "status", "status"]
    text = scorecard_text(card)
    assert "before the start pause by ops (ok)" in text and "time to tell      50 scenario s" in text
    early = scorecard(
        summary,
        _changed(change) + _journal(("status", "comms", None, "ok"), args={"state": "investigating"}),
        h,
        speed=2,
    )
    assert early.time_to_tell is None
    assert "no status update was posted" in scorecard_text(scorecard(summary, [], h, speed=2))


def test_detection_is_a_declaration_or_an_ack_of_a_firing_alert_after_the_change():
    h = hidden(load_scenario(plan(3, HEADLINE).path), 20.0)
    change = next(s.at for s in h.timeline if s.action == "rollout")
    summary = _summary()
    guess = _changed(change) + _journal(
        ("declare", "ic", change - 3, "ok")
    )  # before anything broke: a guess, not a detection
    quiet_ack = _journal(("ack", "ops", change + 5, "ok"), firing=[])
    paged_ack = _journal(("ack", "ops", change + 12, "ok"), firing=["JourneyErrorBudgetBurn (web)"])
    card = scorecard(summary, guess + quiet_ack + paged_ack, h, speed=2)
    assert card.detected == Pull(at=change + 12, lever="ack", who="ops")
    assert card.time_to_detect == Since(scenario_s=12.0, wall_s=6.0)
    assert scorecard(summary, guess + quiet_ack, h, speed=2).time_to_detect is None


class _Control:
    """A lab control plane in memory: every process runs ``arch_data``; PUTs are remembered, the
    processes named in ``refuse`` do not take theirs and those in ``lose`` take it but their
    answer is lost."""

    def __init__(self, arch, arch_data, refuse=(), lose=()) -> None:
        self.arch, self.data, self.refuse, self.lose, self.puts = arch, arch_data, set(refuse), set(lose), []

    async def each(self, method, path, *, json=None, only=None, timeout_s=0.8):
        names = list(only or self.arch.instance_kinds())
        if method == "GET":
            return [
                Answer(n, 200, {"version": self.data["version"], "architecture": copy.deepcopy(self.data)})
                for n in names
            ]
        self.puts.append((names, json["architecture"]))
        if len(self.puts) > 1:  # the undo: everyone answers
            return [Answer(n, 200, {}) for n in names]
        return [
            Answer(n, 500, {})
            if n in self.refuse
            else Answer(n, 0, "TimeoutError")
            if n in self.lose
            else Answer(n, 200, {})
            for n in names
        ]


@pytest.fixture
def levers_on(tmp_path, arch, arch_data):
    def make(refuse=(), lose=()):
        runner = FakeRun(tmp_path)
        runner.control, runner.arch_lock, runner.rolling_out = (
            _Control(arch, arch_data, refuse, lose),
            threading.Lock(),
            None,
        )
        runner.keeper = LeaseKeeper(runner.control)  # never started: what it would renew is read by hand
        levers = Levers(runner)
        runner.over = levers.ended.is_set
        return levers

    return make


async def test_scaling_the_timeline_gives_it_capacity_and_other_backends_change_nothing(levers_on, arch_data):
    levers = levers_on()
    puts = levers.runner.control.puts
    answer = await levers.pull("scale", "ops", ScaleArgs(backend="tweets", factor=3))
    assert "not short of any: nothing changed for users" in answer.note and puts == []
    assert "rate limits (a policy" in (await levers.pull("scale", "ops", ScaleArgs(backend="auth"))).note and puts == []
    with pytest.raises(WorkshopError, match=r"backend must be one of auth, timeline, tweets, notifications, not 'api'"):
        await levers.pull("scale", "ops", ScaleArgs(backend="api"))
    answer = await levers.pull("scale", "ops", ScaleArgs(backend="timeline", factor=2))
    capacity = arch_data["backends"]["timeline"]["capacity"]
    assert answer.note == f"timeline capacity now {2 * capacity} concurrent builds"
    ((_names, sent),) = puts
    assert sent["backends"]["timeline"]["capacity"] == 2 * capacity and sent["version"] == "v1-timeline-x2"
    assert [e.outcome for e in levers.runner.journal.entries] == ["ok", "ok", "refused", "ok"]


async def test_no_architecture_lever_acts_under_a_rollout_in_progress(levers_on):
    levers = levers_on()
    levers.runner.rolling_out = "the change"
    for lever, args in (("scale", ScaleArgs()), ("rate-limit", RateLimitArgs()), ("drain", DrainArgs(replica="api-2"))):
        with pytest.raises(WorkshopError, match="the rollout 'the change' is still in progress"):
            await levers.pull(lever, "ops", args)
    assert levers.runner.control.puts == []


async def test_a_change_one_process_refuses_is_undone_on_the_others(levers_on, arch):
    levers = levers_on(refuse={"api-2"})
    with pytest.raises(WorkshopError, match=r"could not move 1 process\(es\) \(api-2\).*the others went back"):
        await levers.pull("rate-limit", "ops", RateLimitArgs(factor=2))
    (changed, sent), (back, restored) = levers.runner.control.puts
    assert sent["version"] == "v1-limits-x2" and parse_architecture(restored) == arch
    assert back == [n for n in changed if n != "api-2"]
    assert levers.runner.journal.entries[-1].outcome == "failed"


async def test_a_process_whose_answer_was_lost_is_undone_too_and_every_change_is_renewed(levers_on, arch):
    levers = levers_on(refuse={"api-2"}, lose={"api-3"})
    with pytest.raises(WorkshopError, match=r"could not move 2 process\(es\) \(api-2, api-3\)"):
        await levers.pull("rate-limit", "ops", RateLimitArgs(factor=2))
    (changed, _), (back, restored) = levers.runner.control.puts
    assert "api-3" in back and "api-2" not in back and parse_architecture(restored) == arch
    # The keeper holds what each process was last asked to run, so nothing lingers past a lease.
    held = levers.runner.keeper.held()
    assert held["api-3"] == arch.version and held["api-1"] == arch.version
    assert "api-2" not in held  # it refused: it runs what it ran before, nothing to renew


def test_the_figures_phases_follow_the_game_as_it_went(tmp_path):
    p = plan(3, HEADLINE)
    h = hidden(load_scenario(p.path), p.lead_in_s)
    runner = Game(h, "workshop", tmp_path, 2.0, plan=p)
    game = _changed(50) + _journal(("rollback", "ops", 90, "ok"), ("end", "facilitator", 150, "ok"))
    runner.runner.journal = _journal_of(tmp_path / "journal.json", game)
    played = runner.as_played(T0, h)
    # The scenario's own phases are where it planned things; these are where the room had them.
    assert [(x.name, x.start, x.end) for x in played.phases] == [
        ("before", 0, 50),
        ("outage", 50, 90),
        ("after", 90, 150),
    ]
    assert played.duration == 150 and played.source == h.source
    ended_early = _journal(("end", "facilitator", 40, "ok"))  # before the change
    runner.runner.journal = _journal_of(tmp_path / "ended.json", ended_early)
    assert [(x.name, x.start, x.end) for x in runner.as_played(T0, h).phases] == [("before", 0, 40)]


def test_steps_the_workshop_does_not_play_say_why_in_the_journal(tmp_path):
    p = plan(3, HEADLINE)
    h = hidden(load_scenario(p.path), p.lead_in_s)
    runner = Game(h, "workshop", tmp_path, 2.0, plan=p).runner
    journal = Journal(tmp_path / "journal.json", "workshop")
    fix = next(s for s in h.timeline if isinstance(s, Rollback))
    change = next(s for s in h.timeline if isinstance(s, Rollout))
    played: list[StepEntry] = []
    for step in (fix, change):
        if step is change:
            runner.hooks.levers.ended.set()  # the facilitator ended the game before this step's time
        entry = journal.start(StepEntry(index=len(played), action=step.action, name=step.action, at=step.at))
        outcome, detail = runner.do(step)
        journal.end_step(entry, outcome, detail)
        played.append(entry)
    # Code reads why a step was not played from ``unplayed``; the note is for people.
    assert [(e.outcome, e.unplayed, e.note) for e in played] == [
        ("skipped", "left_to_participants", UNPLAYED_NOTES["left_to_participants"]),
        ("ok", "after_the_game", UNPLAYED_NOTES["after_the_game"]),
    ]
    saved = records.read(journal.path, JournalFile).entries
    assert [e.unplayed for e in saved if isinstance(e, StepEntry)] == ["left_to_participants", "after_the_game"]
    # The change never came, so the scorecard counts from its planned time and finds nothing to detect.
    assert actual_change_at(saved, T0, speed=2) is None


def test_a_change_the_games_end_left_unplayed_never_reached_the_lab():
    injected = StepEntry(index=1, action="inject", name="the change", at=40, started=T0 + 20, outcome="ok")
    assert actual_change_at([injected], T0, speed=2) == 40
    unplayed = injected.model_copy(update={"unplayed": "after_the_game"})
    assert actual_change_at([unplayed], T0, speed=2) is None


def test_each_lever_is_followed_by_how_many_journeys_were_served_after_it(tmp_path, monkeypatch):
    p = plan(3, HEADLINE)
    h = hidden(load_scenario(p.path), p.lead_in_s)
    played = Game(h, "workshop", tmp_path, 2.0, plan=p)
    runner = played.runner
    runner.lab = SimpleNamespace(url=lambda name: f"http://127.0.0.1:1/{name}")
    game = _journal(
        ("declare", "ic", None, "ok"),  # before the clock started: nothing to measure
        ("scale", "ops", 100, "ok"),  # the next lever came 10 s later: too soon to tell
        ("rollback", "ops", 110, "ok"),
        ("pause", "ops", 450, "ok"),  # read no later than the game's end
        ("end", "facilitator", 500, "ok"),
    )
    runner.journal = _journal_of(tmp_path / "journal.json", game)
    asked: list[float] = []

    def query(url: str, promql_text: str, at: float) -> list[dict[str, Any]]:
        asked.append((at - T0) * 2)
        ratios = {"web": "0.5", "app": "0.9", "": "1"}  # a series without a client is no client's
        return [{"metric": {"client": c} if c else {}, "value": [at, v]} for c, v in ratios.items()]

    monkeypatch.setattr(promql, "query", query)
    played.lever_effects(T0)
    # Read after the scenario's bound and the ratio's 15 s window (30 scenario s at speed 2).
    assert h.workshop is not None
    read_at = 110 + h.workshop.recovers_within + SERVED_WINDOW_S * 2
    assert asked == [read_at, 500]
    served = ServedAfter(at=read_at, web=0.5, app=0.9)
    after = [e.served_after for e in runner.journal.entries if isinstance(e, LeverEntry)]
    assert after == [None, ServedAfter(at=None, too_soon=True), served, ServedAfter(at=500, web=0.5, app=0.9), None]
    saved = records.read(runner.journal.path, JournalFile).entries  # the journal keeps them too
    assert [e.served_after for e in saved if isinstance(e, LeverEntry)] == after
    text = scorecard_text(scorecard(_summary(), runner.journal.entries, h, speed=2))
    assert f"T+110s rollback by ops (ok); then web 50%, app 90% of journeys served at T+{read_at:g}s" in text
    assert "T+100s scale by ops (ok); the next lever came too soon to tell what this one did" in text


# ---- the catalog's workshop scenarios and their fixes -----------------------------------------


def test_a_random_game_picks_among_at_least_five_scenarios_and_one_seed_plays_one_game():
    assert len(catalog()) >= 5
    picked = {plan(seed).name for seed in range(40)}
    assert picked == {p.stem for p in catalog()}
    assert plan(11) == plan(11)


def test_a_fix_with_arguments_counts_only_when_pulled_with_them():
    hang = load_scenario(CATALOG / "dependency-hang.yaml").workshop
    assert hang is not None and hang.fix_command == "restart --service notifications"
    wrong = _journal(("restart", "ops", 40, "ok"), args={"service": "timeline"})
    right = _journal(("restart", "ops", 45, "ok"), args={"service": "notifications"})
    assert fix_pulled(wrong, hang, change_at=20) is None
    assert fix_pulled(wrong + right, hang, change_at=20) == Pull(at=45, lever="restart", who="ops")


@pytest.mark.parametrize(
    ("workshop", "says"),
    [
        ({"fix": "status"}, "fix: 'status' is not a lever that acts on the lab"),
        ({"fix": "reboot"}, "fix: 'reboot' is not a lever that acts on the lab"),
        ({"fix": "restart"}, "fix_args: restart: service"),
        ({"fix": "scale", "fix_args": {"service": "timeline", "machines": 0}}, "fix_args: scale: "),
    ],
)
def test_a_scenarios_fix_must_be_a_lever_that_acts_with_arguments_it_takes(workshop, says):
    from chaos.scenario import Workshop

    with pytest.raises(ValueError, match=re.escape(says)):
        Workshop(look_for=["x"], hints=["y"], debrief=["z"], **workshop)


async def test_restart_clears_what_the_process_holds_and_names_what_it_restarted(tmp_path, arch, arch_data):
    levers = Levers(FakeRun(tmp_path))
    sent = []

    class Control:
        def instances(self):
            return ["web", "notifications"]

        async def each(self, method, path, *, json=None, only=None, timeout_s=0.8):
            sent.append((method, path, only))
            return [Answer(only[0], 200, {"removed": 1})]

    levers.runner.control = Control()
    levers.runner.over = lambda: False
    answer = await levers.pull("restart", "ops", parse_args("restart", {"service": "notifications"}))
    assert answer.note == "notifications restarted (1 stuck state(s) cleared)"
    assert sent == [("DELETE", "/control/faults", ["notifications"])]
    with pytest.raises(WorkshopError, match="service must be one of web, notifications, not 'tweets'"):
        await levers.pull("restart", "ops", parse_args("restart", {"service": "tweets"}))


def test_once_fixed_a_crash_loops_remaining_kills_are_not_played(tmp_path):
    loop = load_scenario(CATALOG / "replica-crash-loop.yaml")
    assert loop.workshop is not None and loop.workshop.fix_ends_timeline
    game = Game(loop, "workshop", tmp_path, 4.0, free_port_lab_config(tmp_path), plan=plan(1, "replica-crash-loop"))
    kill = next(s for s in loop.timeline if isinstance(s, Kill))
    played = []
    assert game.play_step(kill, lambda s: played.append(s) or ("ok", StepDetail())) == ("ok", StepDetail())
    game.runner.run_dir.mkdir(parents=True)  # made as a run starts
    game.runner.journal.start(LeverEntry(lever="rollback", who="ops", at=30.0, outcome="ok", note=""))
    outcome, detail = game.play_step(kill, lambda s: played.append(s) or ("ok", StepDetail()))
    assert (outcome, detail.unplayed) == ("skipped", "after_the_fix") and len(played) == 1
