"""A whole workshop, headless: a seeded hidden outage, a scripted room that declares after the
first page, pulls a wrong lever, then the right one, and a scorecard and postmortem that agree
with the journal."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from chaos import records
from chaos.lab.supervisor import Lab
from chaos.records import JournalEntry, JournalFile, LeverEntry, Pull, Scorecard, StepEntry, Summary
from chaos.workshop.levers import LEVERS
from chaos.workshop.room import workshop_dir
from services.config import load_lab_config
from tests.integration.conftest import prom_query, write_lab_config
from tests.integration.test_browser import browser, page  # noqa: F401  (fixtures)
from tests.integration.test_failwhale_up import lab_pids

pytestmark = pytest.mark.integration

HEADLINE = "twitter-2022-12-28"
FAILWHALE = [sys.executable, "-m", "chaos.cli"]


def failwhale(*args: str, config: Path, timeout_s: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*FAILWHALE, "workshop", *args, "--config", str(config)], capture_output=True, text=True, timeout=timeout_s
    )


def wait_for(what: str, check, timeout_s: float, every_s: float = 0.5):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")


def web_served(lab: Lab) -> float | None:
    result = prom_query(lab, 'client:failwhale_journeys_served:ratio_rate15s{client="web"}')
    return float(result[0]["value"][1]) if result else None


def web_failing(lab: Lab) -> bool:
    """Most web journeys fail now; no figure yet is not a failure (nor a success)."""
    served = web_served(lab)
    return served is not None and served < 0.5


def web_served_at_least(lab: Lab, share: float) -> bool:
    served = web_served(lab)
    return served is not None and served >= share


def test_a_scripted_room_detects_and_mitigates_the_hidden_outage(tmp_path):
    config = write_lab_config(tmp_path)
    lab = Lab.from_files(config)
    with playing(tmp_path, config, "--scenario", "twitter-2022-12-28", "--seed", "3", "--for", "240") as (game, out):
        token = workshop_dir(load_lab_config(config)) / "token"
        wait_for("the levers to open", token.exists, 60)
        sheet = failwhale("sheet", config=config)
        assert sheet.returncode == 0 and "twitter" not in (tmp_path / "workshop.log").read_text().lower()
        assert "Facilitator sheet (seed 3)" in sheet.stdout and "2022-12-28" in sheet.stdout

        # The room notices when the web SLO pages, and declares.
        wait_for(
            "the web SLO to page",
            lambda: prom_query(lab, 'ALERTS{alertname="JourneyErrorBudgetBurn", client="web", alertstate="firing"}'),
            120,
        )
        declared = failwhale("lever", "declare", "--severity", "SEV1", "--who", "ic", config=config)
        assert declared.returncode == 0, declared.stderr
        acked = failwhale("lever", "ack", "--who", "ic", config=config)
        assert acked.returncode == 0 and "JourneyErrorBudgetBurn (web)" in acked.stdout, acked.stdout + acked.stderr
        # A wrong lever first: more timeline capacity does not help users who are rate limited.
        scaled = failwhale("lever", "scale", "--backend", "timeline", "--factor", "2", "--who", "ops", config=config)
        assert scaled.returncode == 0, scaled.stderr
        # Give it the scenario's bound (60 scenario s, 12 s at quick speed 5) and then a whole
        # 15 s window of the served ratio: had it helped, that window would be all recovered.
        time.sleep(12 + 15 + 2)
        assert web_failing(lab), f"scaling the timeline should not have helped the web: {web_served(lab)}"
        rolled = failwhale("lever", "rollback", "--who", "ops", config=config)
        assert rolled.returncode == 0, rolled.stderr
        # The scenario's bound: journeys hold again within 60 scenario s (12 s at quick speed 5).
        wait_for("web journeys to be served again", lambda: web_served_at_least(lab, 0.95), 30)
        time.sleep(4)
        ended = end_game(game, tmp_path, config)
        # The facilitator's own terminal gets the scorecard and where the postmortem is.
        assert "time to detect" in ended.stdout and "after rollback by ops" in ended.stdout, ended.stdout
        assert "postmortem.html" in ended.stdout

    printed = (tmp_path / "workshop.log").read_text()
    assert "scorecard" in printed and "time to detect" in printed
    (run_dir,) = (d for d in out.iterdir() if d.is_dir())
    card = records.read(run_dir / "scorecard.json", Scorecard)
    journal = records.read(run_dir / "journal.json", JournalFile).entries
    levers = [e for e in journal if isinstance(e, LeverEntry)]
    assert [(e.lever, e.who) for e in levers] == [
        ("declare", "ic"),
        ("ack", "ic"),
        ("scale", "ops"),
        ("rollback", "ops"),
        ("end", "facilitator"),
    ]
    declare, ack, scale, rollback = levers[:4]
    assert declare.at is not None and scale.at is not None and rollback.at is not None
    assert ack.note is not None and ack.note.startswith("acknowledged: ") and "JourneyErrorBudgetBurn (web)" in ack.note
    # Consistent with the journal: detection is the declaration, mitigation follows the rollback.
    assert card.detected == Pull(at=declare.at, lever="declare", who="ic")
    assert card.time_to_detect is not None
    assert card.time_to_detect.scenario_s == round(declare.at - card.change_at, 1)
    assert card.first_alert is not None
    assert card.first_alert.alert in ("JourneyErrorBudgetBurn", "RolloutErrorsRising")
    assert card.first_alert.first_at <= declare.at
    assert card.fixed is not None and card.fixed.lever == "rollback" and card.fixed.at == rollback.at
    assert card.recovered_at is not None and card.recovered_at > rollback.at > scale.at
    assert card.recovered_within_bound is True
    assert card.mitigated_by is not None and card.mitigated_by.lever == "rollback"
    assert card.time_to_mitigate is not None
    assert card.time_to_mitigate.scenario_s == round(card.recovered_at - card.change_at, 1)
    assert scale.note is not None and "timeline capacity now" in scale.note
    # The scorecard shows what each lever did: the wrong one left the web failing, the right one fixed it.
    by_lever = {x.lever: x.served_after for x in card.levers}
    wrong, right = by_lever["scale"], by_lever["rollback"]
    assert wrong is not None and wrong.web is not None and wrong.web < 0.5, wrong
    assert right is not None and right.web is not None and right.web >= 0.9, right
    # The scenario's own rollback step was not played: the fix was the room's.
    (step,) = [e for e in journal if isinstance(e, StepEntry) and e.action == "rollback"]
    assert step.unplayed == "left_to_participants" and step.outcome == "skipped", step
    # The postmortem lists every action in order.
    post = (run_dir / "postmortem.md").read_text()
    order = [
        post.index(f"**{who}** pulled **{lever}**")
        for lever, who in (("declare", "ic"), ("ack", "ic"), ("scale", "ops"), ("rollback", "ops"))
    ]
    assert order == sorted(order)
    assert "JourneyErrorBudgetBurn (web) fires" in post and "## Debrief" in post
    # Why web and app differed, read in the phase that shows it (the hidden copy names none itself).
    assert "Website users failed more often than app users in the outage phase" in post
    html = (run_dir / "postmortem.html").read_text()
    assert html.count("<svg") >= 4 and "rollback by ops" in html  # the plots, with the levers marked on them
    assert lab_pids(str(tmp_path)) == []


def journal_of(out: Path) -> list[JournalEntry]:
    """The running game's journal, as the runner last rewrote it ([] before it exists)."""
    # The journal is replaced whole on each change (records.write), so a read never sees half of one.
    for path in out.glob("*/journal.json"):
        return records.read(path, JournalFile).entries
    return []


def first_step(out: Path, action: str) -> StepEntry | None:
    return next((e for e in journal_of(out) if isinstance(e, StepEntry) and e.action == action), None)


def levers_of(journal: list[JournalEntry]) -> list[LeverEntry]:
    return [e for e in journal if isinstance(e, LeverEntry)]


@contextlib.contextmanager
def playing(folder: Path, config: Path, *args: str):
    """A quick workshop game started in ``folder`` (its output in workshop.log): (process, reports folder).
    Whatever happens in the block, the game does not outlive it."""
    out = folder / "reports"
    with (folder / "workshop.log").open("w") as log:
        game = subprocess.Popen(
            [*FAILWHALE, "workshop", "start", *args, "--quick", "--config", str(config), "--out", str(out)],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            yield game, out
        finally:
            if game.poll() is None:
                game.kill()
                game.wait()


def end_game(game: subprocess.Popen, folder: Path, config: Path) -> subprocess.CompletedProcess:
    """The facilitator ends the game; it must wrap up and exit cleanly."""
    ended = failwhale("end", "--who", "facilitator", config=config, timeout_s=240)
    assert ended.returncode == 0, ended.stdout + ended.stderr
    assert game.wait(timeout=180) == 0, (folder / "workshop.log").read_text()[-3000:]
    return ended


def pulled(*lever_args: str, config: Path, who: str = "ops") -> str:
    done = failwhale("lever", *lever_args, "--who", who, config=config)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.browser
def test_every_lever_acts_on_the_running_lab(tmp_path, page):  # noqa: F811
    config = write_lab_config(tmp_path)
    lab = Lab.from_files(config)
    # Seed 214: the 2022-12-28 change after a 32 s lead-in.
    with playing(tmp_path, config, "--random", "--seed", "214", "--for", "180") as (game, out):
        wait_for("the levers to open", (workshop_dir(load_lab_config(config)) / "token").exists, 60)
        # A deploy freeze before anything happens: the change, when it comes, holds before its first wave.
        assert "next one will hold before its first wave" in pulled("pause", config=config)

        # Comms posts from the levers page, in a real browser, with the link from the facilitator's sheet.
        sheet = failwhale("sheet", config=config).stdout
        (link,) = [line for line in sheet.splitlines() if "/#token=" in line]
        page.goto(link)
        page.wait_for_selector("body[data-state=ready]", timeout=10_000)
        page.fill("#who", "comms")
        # Every lever's controls come from GET /levers: its choices, defaults and examples.
        assert page.locator("#levers .lever").count() == len(LEVERS)
        assert page.locator("#lever-scale input[name=factor]").input_value() == "2"
        assert page.locator("#lever-flush-cache select[name=cache] option").all_inner_texts() == [
            "all",
            "timelines",
            "tokens",
        ]
        assert page.locator("#lever-drain input[name=replica]").get_attribute("placeholder") == "api-2"
        row = page.locator("#lever-status")
        row.locator("select[name=state]").select_option("investigating")
        row.locator("input[name=text]").fill("Some of you cannot load the website. We are looking into it.")
        row.locator("button").click()
        page.wait_for_selector("#log li", timeout=10_000)
        assert (
            "status page now says: Investigating: Some of you cannot load" in page.locator("#log li").first.inner_text()
        )
        status = subprocess.run(["curl", "-s", f"{lab.url('web')}/status.json"], capture_output=True, text=True).stdout
        assert json.loads(status)["status"] == "incident"
        # Without the right token the page pulls nothing, and says why.
        page.fill("#token", "not-the-token")
        page.locator("#lever-declare button").click()
        page.wait_for_function(
            "document.getElementById('error').textContent.includes('workshop token')", timeout=10_000
        )

        # The change's time comes and goes; the frozen rollout moves nothing, and users stay fine.
        wait_for("the change to start", lambda: first_step(out, "rollout"), 90)
        time.sleep(5)
        change = first_step(out, "rollout")
        assert change is not None and change.outcome == "running"
        assert web_served_at_least(lab, 0.9), web_served(lab)

        # Changing the architecture under a paused rollout is refused: its next wave would undo it.
        refused = failwhale("lever", "drain", "--replica", "api-2", "--who", "ops", config=config)
        assert refused.returncode != 0 and "still in progress" in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
        seen = pulled("works-for-me", config=config, who="facilitator")
        assert "a fresh timeline" in seen and "the page loads" in seen, seen
        flushed = pulled("flush-cache", "--cache", "tokens", config=config)
        assert int(re.search(r"tokens: (\d+) entries dropped", flushed).group(1)) > 0, flushed

        # Lifting the freeze lets the change through, and the website goes down.
        assert "the rollout goes on" in pulled("resume", config=config)
        wait_for("web journeys to fail", lambda: web_failing(lab), 40)
        assert re.search(r"timelines: \d+ entries built", pulled("warm-cache", config=config))
        # A wrong backend: tweets was never short of machines, and the web keeps failing.
        assert "nothing changed for users" in pulled("scale", "--backend", "tweets", config=config)
        time.sleep(3)
        assert web_failing(lab), web_served(lab)
        pulled("rollback", config=config)
        wait_for("web journeys to be served again", lambda: web_served_at_least(lab, 0.95), 40)
        assert "the edge sends nothing to api-2" in pulled("drain", "--replica", "api-2", config=config)
        wait_for(
            "the dashboard to show api-2 drained",
            lambda: prom_query(lab, 'failwhale_edge_replica_drained{upstream="api-2"} == 1'),
            15,
        )
        # The phases' names would tell the room what comes next: Prometheus sees only "game".
        assert {s["metric"]["phase"] for s in prom_query(lab, "failwhale_chaos_phase")} == {"game"}
        end_game(game, tmp_path, config)

    (run_dir,) = (d for d in out.iterdir() if d.is_dir())
    journal = records.read(run_dir / "journal.json", JournalFile).entries
    assert [(e.lever, e.who, e.outcome) for e in levers_of(journal)] == [
        ("pause", "ops", "ok"),
        ("status", "comms", "ok"),
        ("drain", "ops", "refused"),
        ("works-for-me", "facilitator", "ok"),
        ("flush-cache", "ops", "ok"),
        ("resume", "ops", "ok"),
        ("warm-cache", "ops", "ok"),
        ("scale", "ops", "ok"),
        ("rollback", "ops", "ok"),
        ("drain", "ops", "ok"),
        ("end", "facilitator", "ok"),
    ]
    (rollout_step,) = [e for e in journal if isinstance(e, StepEntry) and e.action == "rollout"]
    # Its first wave moved only after the resume, not at the step's own time.
    resume = next(e for e in levers_of(journal) if e.lever == "resume")
    assert rollout_step.wave_times and rollout_step.wave_times[0] >= resume.started
    # So the scorecard counts from when the change really came, not from when it was planned.
    card = records.read(run_dir / "scorecard.json", Scorecard)
    assert resume.at is not None and card.change_happened and card.change_at >= resume.at
    summary = records.read(run_dir / "summary.json", Summary)
    assert any(p.app_user.sees == "timeline" for p in summary.works_for_me)
    post = (run_dir / "postmortem.md").read_text()
    assert "**comms** pulled **status**" in post and "**ops** pulled **drain**" in post


def test_a_game_ends_by_itself_when_its_time_is_up_even_with_the_rollout_paused(tmp_path):
    config = write_lab_config(tmp_path)
    with playing(tmp_path, config, "--scenario", HEADLINE, "--seed", "9", "--for", "20") as (game, out):
        wait_for("the levers to open", (workshop_dir(load_lab_config(config)) / "token").exists, 60)
        pulled("pause", config=config)
        # Nobody resumes and nobody ends it: the clock does.
        assert game.wait(timeout=150) == 0, (tmp_path / "workshop.log").read_text()[-3000:]
    (run_dir,) = (d for d in out.iterdir() if d.is_dir())
    journal = records.read(run_dir / "journal.json", JournalFile).entries
    assert [(e.lever, e.who) for e in levers_of(journal)] == [("pause", "ops"), ("end", "the clock")]
    (change,) = [e for e in journal if isinstance(e, StepEntry) and e.action == "rollout"]
    assert change.completed_waves == 0 and "stopped before wave 1" in (change.note or ""), change
    summary = records.read(run_dir / "summary.json", Summary)
    clock = next(e for e in levers_of(journal) if e.lever == "end")
    assert summary.started is not None
    assert clock.started - summary.started <= 21  # --for counts from the lab's start, warm-up included
    assert "time is up" in (tmp_path / "workshop.log").read_text()
    assert lab_pids(str(tmp_path)) == []


def played_past_the_change(out: Path) -> bool:
    steps = [e for e in journal_of(out) if isinstance(e, StepEntry)]
    change = next((e for e in steps if e.action == "rollout"), None)
    return change is not None and any(e.index > change.index for e in steps)


def test_two_workshops_with_one_seed_play_the_same_game_at_the_same_times(tmp_path):
    # Two rooms at once, each on its own lab (ports apart), at scale 1: what is compared is the
    # plan and its clock, which do not depend on how many users play.
    folders, configs = [], []
    for n in (1, 2):
        folder = tmp_path / f"room{n}"
        folder.mkdir()
        config = write_lab_config(folder)
        while n == 2 and set(load_lab_config(config).ports.values()) & set(load_lab_config(configs[0]).ports.values()):
            config = write_lab_config(folder)
        folders.append(folder)
        configs.append(config)
    played = []
    with contextlib.ExitStack() as rooms:
        games = [
            rooms.enter_context(
                playing(folder, config, "--scenario", HEADLINE, "--seed", "9", "--scale", "1", "--for", "60")
            )
            for folder, config in zip(folders, configs, strict=True)
        ]
        # Past the change and the step after it in both rooms; then each facilitator ends their game.
        for _, out in games:
            wait_for("the change and the step after it", lambda out=out: played_past_the_change(out), 120)
        with ThreadPoolExecutor(2) as facilitators:  # both wrap up at once, as they play
            ends = [
                facilitators.submit(end_game, game, f, c)
                for (game, _), f, c in zip(games, folders, configs, strict=True)
            ]
            for ended in ends:
                ended.result()
    for (_, out), folder in zip(games, folders, strict=True):
        (run_dir,) = (d for d in out.iterdir() if d.is_dir())
        summary = records.read(run_dir / "summary.json", Summary)
        journal = records.read(run_dir / "journal.json", JournalFile).entries
        # Steps due after the facilitator's end are journaled as not played, at the end's time,
        # which the facilitator chose: only the steps played before it follow the seed's clock.
        (end,) = [e for e in levers_of(journal) if e.lever == "end"]
        steps = [e for e in journal if isinstance(e, StepEntry) and e.started < end.started]
        played.append((summary, steps))
        assert lab_pids(str(folder)) == []
    (first, first_steps), (second, second_steps) = played
    assert first.workshop is not None and second.workshop is not None
    assert first.title == second.title and first.workshop.lead_in_s == second.workshop.lead_in_s
    assert first.started is not None and second.started is not None
    both = min(len(first_steps), len(second_steps))
    assert both >= 3
    assert [(s.action, s.at) for s in first_steps[:both]] == [(s.action, s.at) for s in second_steps[:both]]
    # The same scenario times at the same wall times: each step started as long after the start in both rooms.
    for a, b in zip(first_steps[:both], second_steps[:both], strict=True):
        assert abs((a.started - first.started) - (b.started - second.started)) < 1.0, (a, b)
