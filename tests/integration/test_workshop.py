"""A whole workshop, headless: a seeded hidden outage, a scripted room that declares after the
first page, pulls a wrong lever, then the right one, and a scorecard and postmortem that agree
with the journal."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chaos.lab.supervisor import Lab
from chaos.workshop import workshop_dir
from services.config import load_lab_config
from tests.integration.conftest import prom_query, write_lab_config
from tests.integration.test_failwhale_up import lab_pids

pytestmark = pytest.mark.integration
FAILWHALE = [sys.executable, "-m", "chaos.cli"]


def failwhale(*args: str, config: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*FAILWHALE, "workshop", *args, "--config", str(config)], capture_output=True, text=True, timeout=30)


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


def test_a_scripted_room_detects_and_mitigates_the_hidden_outage(tmp_path):
    config = write_lab_config(tmp_path)
    lab = Lab.from_files(config)
    out = tmp_path / "reports"
    log = (tmp_path / "workshop.log").open("w")
    game = subprocess.Popen([*FAILWHALE, "workshop", "start", "--scenario", "twitter-2022-12-28", "--seed", "3", "--quick",
                             "--for", "240", "--config", str(config), "--out", str(out)],
                            stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        token = workshop_dir(load_lab_config(config)) / "token"
        wait_for("the levers to open", token.exists, 60)
        sheet = failwhale("sheet", config=config)
        assert sheet.returncode == 0 and "twitter" not in (tmp_path / "workshop.log").read_text().lower()
        assert "Facilitator sheet (seed 3)" in sheet.stdout and "2022-12-28" in sheet.stdout

        # The room notices when the web SLO pages, and declares.
        wait_for("the web SLO to page", lambda: prom_query(
            lab, 'ALERTS{alertname="JourneyErrorBudgetBurn", client="web", alertstate="firing"}'), 120)
        declared = failwhale("lever", "declare", "--severity", "SEV1", "--who", "ic", config=config)
        assert declared.returncode == 0, declared.stderr
        acked = failwhale("lever", "ack", "--who", "ic", config=config)
        assert acked.returncode == 0 and "JourneyErrorBudgetBurn (web)" in acked.stdout, acked.stdout + acked.stderr
        # A wrong lever first: more timeline capacity does not help users who are rate limited.
        scaled = failwhale("lever", "scale", "--backend", "timeline", "--factor", "2", "--who", "ops", config=config)
        assert scaled.returncode == 0, scaled.stderr
        time.sleep(6)
        assert (web_served(lab) or 0) < 0.5, "scaling the timeline should not have helped the web"
        rolled = failwhale("lever", "rollback", "--who", "ops", config=config)
        assert rolled.returncode == 0, rolled.stderr
        # The scenario's bound: journeys hold again within 60 scenario s (12 s at quick speed 5).
        wait_for("web journeys to be served again", lambda: (web_served(lab) or 0) >= 0.95, 30)
        time.sleep(4)
        ended = failwhale("end", "--who", "facilitator", config=config)
        assert ended.returncode == 0, ended.stderr
        assert game.wait(timeout=180) == 0, (tmp_path / "workshop.log").read_text()[-3000:]
    finally:
        if game.poll() is None:
            game.kill()
        log.close()

    printed = (tmp_path / "workshop.log").read_text()
    assert "scorecard" in printed and "time to detect" in printed
    (run_dir,) = (d for d in out.iterdir() if d.is_dir())
    card = json.loads((run_dir / "scorecard.json").read_text())
    journal = json.loads((run_dir / "journal.json").read_text())
    levers = [e for e in journal if e["kind"] == "lever"]
    assert [(e["lever"], e["who"]) for e in levers] == [
        ("declare", "ic"), ("ack", "ic"), ("scale", "ops"), ("rollback", "ops"), ("end", "facilitator")]
    declare, ack, scale, rollback = levers[:4]
    assert ack["note"].startswith("acknowledged: ") and "JourneyErrorBudgetBurn (web)" in ack["note"]
    # Consistent with the journal: detection is the declaration, mitigation follows the rollback.
    assert card["detected"] == {"at": declare["at"], "lever": "declare", "who": "ic"}
    assert card["time_to_detect"]["scenario_s"] == round(declare["at"] - card["change_at"], 1)
    assert card["first_alert"]["alert"] in ("JourneyErrorBudgetBurn", "RolloutErrorsRising")
    assert card["first_alert"]["first_at"] <= declare["at"]
    assert card["fixed"]["lever"] == "rollback" and card["fixed"]["at"] == rollback["at"]
    assert card["recovered_at"] is not None and card["recovered_at"] > rollback["at"] > scale["at"]
    assert card["recovered_within_bound"] is True
    assert card["time_to_mitigate"]["scenario_s"] == round(card["recovered_at"] - card["change_at"], 1)
    assert "timeline capacity now" in scale["note"]
    # The scorecard shows what each lever did: the wrong one left the web failing, the right one fixed it.
    by_lever = {x["lever"]: x for x in card["levers"]}
    assert by_lever["scale"]["served_after"]["web"] < 0.5, by_lever["scale"]
    assert by_lever["rollback"]["served_after"]["web"] >= 0.9, by_lever["rollback"]
    # The scenario's own rollback step was not played: the fix was the room's.
    (step,) = [e for e in journal if e["kind"] == "step" and e["action"] == "rollback"]
    assert step["note"] == "left to the participants"
    # The postmortem lists every action in order.
    post = (run_dir / "postmortem.md").read_text()
    order = [post.index(f"**{who}** pulled **{lever}**")
             for lever, who in (("declare", "ic"), ("ack", "ic"), ("scale", "ops"), ("rollback", "ops"))]
    assert order == sorted(order)
    assert "JourneyErrorBudgetBurn (web) fires" in post and "## Debrief" in post
    assert lab_pids(str(tmp_path)) == []
