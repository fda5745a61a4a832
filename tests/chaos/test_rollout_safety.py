"""What a rollout leaves behind when something goes wrong, and the leases that outlive nobody:
against a stand-in control plane that can lose answers, time out, or refuse."""

from __future__ import annotations

import asyncio
import time

import pytest
import yaml

from chaos.control import Answer, LabControl, halt
from chaos.lease import LeaseKeeper
from chaos.rollout import rollback, rollout
from services.architecture import parse_architecture
from tests.conftest import V1

WAVES = [["api-1"], ["api-2"], ["api-3"]]


class FlakyLab:
    """Every process's control plane. ``lose`` names processes that apply a PUT but whose answer
    is lost; ``deaf_for`` makes a process ignore that many rollback requests first; ``gone``
    names processes that answer a renewal with 409."""

    def __init__(
        self, *, lose: tuple[str, ...] = (), deaf_for: dict[str, int] | None = None, gone: tuple[str, ...] = ()
    ) -> None:
        self.version = {f"api-{i}": "v1" for i in range(1, 5)}
        self.lose, self.deaf_for, self.gone = set(lose), dict(deaf_for or {}), set(gone)
        self.calls: list[tuple[str, str, tuple[str, ...], object]] = []

        self.halted_at: float | None = None  # a halt on this machine (the file's time)
        self.remote_halt_at: float | None = None  # a halt elsewhere, known only to the processes

    # The real check: this machine's file, then what the processes say.
    halt_seen = LabControl.halt_seen

    def instances(self, only=None):
        return list(only) if only else list(self.version)

    def halted_since(self, t: float) -> bool:
        return self.halted_at is not None and self.halted_at >= t

    async def each(self, method, path, *, json=None, only=None, timeout_s=0.8):
        names = tuple(self.instances(only))
        self.calls.append((method, path, names, json))
        out = []
        for n in names:
            if path == "/control/architecture" and method == "PUT":
                self.version[n] = json["architecture"]["version"]
                out.append(Answer(n, 0, "TimeoutError") if n in self.lose else Answer(n, 200, {}))
            elif path.startswith("/control/architecture/baseline"):  # a rollback, or halt's ?halt=1
                if self.deaf_for.get(n, 0) > 0:
                    self.deaf_for[n] -= 1
                    out.append(Answer(n, 0, "TimeoutError"))
                else:
                    self.version[n] = "v1"
                    out.append(Answer(n, 200, {}))
            elif path == "/control/architecture" and method == "GET":
                ago = None if self.remote_halt_at is None else time.time() - self.remote_halt_at
                out.append(Answer(n, 200, {"version": self.version[n], "halted_s_ago": ago}))
            elif path == "/control/architecture/renew":
                out.append(Answer(n, 409, {}) if n in self.gone else Answer(n, 200, {"lease_expires_in_s": 15}))
        return out


def v2():
    doc = yaml.safe_load(V1.read_text())
    doc["version"] = "v2"
    return parse_architecture(doc)


async def test_a_process_that_applied_the_change_but_lost_its_answer_is_rolled_back_too():
    lab, said = FlakyLab(lose=("api-2",)), []
    result = await rollout(lab, v2(), WAVES, bake_s=0, guard=None, prometheus_url="", say=said.append)
    assert result.rolled_back and "wave 2 could not move api-2" in result.reason
    assert lab.version == {"api-1": "v1", "api-2": "v1", "api-3": "v1", "api-4": "v1"}


async def test_a_guard_query_that_times_out_rolls_back_what_moved(monkeypatch):
    async def slow_guard(*_a, **_kw):
        raise TimeoutError

    monkeypatch.setattr("chaos.rollout.guard_breached", slow_guard)
    lab = FlakyLab()
    result = await rollout(
        lab, v2(), WAVES, bake_s=0.05, guard="up", guard_every_s=0.01, prometheus_url="http://127.0.0.1:9"
    )
    assert result.rolled_back and result.completed_waves == 1
    assert set(lab.version.values()) == {"v1"}


async def test_an_unexpected_error_rolls_back_and_is_raised_again(monkeypatch):
    async def broken_guard(*_a, **_kw):
        raise RuntimeError("a bug")

    monkeypatch.setattr("chaos.rollout.guard_breached", broken_guard)
    lab = FlakyLab()
    with pytest.raises(RuntimeError, match="a bug"):
        await rollout(lab, v2(), WAVES, bake_s=0.05, guard="up", guard_every_s=0.01, prometheus_url="")
    assert set(lab.version.values()) == {"v1"}


async def test_a_halt_in_another_process_stops_the_rollout_before_its_next_wave():
    lab, said = FlakyLab(), []

    def hold():
        if sum(1 for c in lab.calls if c[0] == "PUT") == 1:
            lab.halted_at = time.time()  # `failwhale halt` ran after the first wave
        return "go"

    result = await rollout(lab, v2(), WAVES, bake_s=0, guard=None, prometheus_url="", say=said.append, hold=hold)
    assert result.rolled_back and "halted before wave 2/3" in result.reason
    assert sum(1 for c in lab.calls if c[0] == "PUT") == 1 and set(lab.version.values()) == {"v1"}


async def test_a_halt_on_another_machine_stops_the_rollout_through_what_the_processes_say():
    lab, said = FlakyLab(), []

    def hold():
        if sum(1 for c in lab.calls if c[0] == "PUT") == 1:
            lab.remote_halt_at = time.time()  # no file here: the halt ran elsewhere
        return "go"

    result = await rollout(lab, v2(), WAVES, bake_s=0, guard=None, prometheus_url="", say=said.append, hold=hold)
    assert result.rolled_back and "halted before wave 2/3" in result.reason
    assert sum(1 for c in lab.calls if c[0] == "PUT") == 1 and set(lab.version.values()) == {"v1"}


async def test_a_halt_older_than_the_rollout_does_not_stop_it():
    lab = FlakyLab()
    lab.remote_halt_at = time.time() - 60
    result = await rollout(lab, v2(), WAVES, bake_s=0, guard=None, prometheus_url="")
    assert not result.rolled_back and [lab.version[n] for n in ("api-1", "api-2", "api-3")] == ["v2"] * 3


async def test_a_rollback_asks_again_until_every_process_confirms():
    lab = FlakyLab(deaf_for={"api-1": 2})
    lab.version["api-1"] = "v2"
    assert await rollback(lab, deadline_s=5) == []
    assert lab.version["api-1"] == "v1"
    assert sum(1 for c in lab.calls if c[1] == "/control/architecture/baseline") == 3


async def test_a_rollback_names_what_stays_stuck_at_its_deadline():
    lab = FlakyLab(deaf_for={"api-3": 10**6})
    assert await rollback(lab, ["api-2", "api-3"], deadline_s=0.5) == ["api-3"]


async def test_the_keeper_renews_what_a_rollout_moved_and_lets_go_of_what_it_undid():
    lab = FlakyLab()
    keeper = LeaseKeeper(lab, lease_s=15)  # not started: rounds are driven by hand here
    result = await rollout(lab, v2(), WAVES, bake_s=0, guard=None, prometheus_url="", keeper=keeper)
    assert result.ok and keeper.held() == {"api-1": "v2", "api-2": "v2", "api-3": "v2"}
    puts = [c for c in lab.calls if c[0] == "PUT"]
    assert all(c[3]["lease_s"] == 15 for c in puts)
    await keeper.renew_once()
    assert lab.calls[-1][1:3] == ("/control/architecture/renew", ("api-1", "api-2", "api-3"))
    assert lab.calls[-1][3] == {"version": "v2", "lease_s": 15}
    await rollback(lab, ["api-1", "api-2", "api-3"], keeper=keeper)
    assert keeper.held() == {}


async def test_the_keeper_stops_renewing_a_process_that_runs_something_else_now(monkeypatch):
    lab, said = FlakyLab(gone=("api-2",)), []
    keeper = LeaseKeeper(lab, say=said.append)
    keeper.hold(["api-1", "api-2"], "v2")
    # Just sent: the change may not have landed yet, so a 409 does not count.
    assert await keeper.renew_once() == [] and keeper.held() == {"api-1": "v2", "api-2": "v2"}
    monkeypatch.setattr("chaos.lease.LANDING_S", 0.0)
    assert await keeper.renew_once() == ["api-2"]
    assert keeper.held() == {"api-1": "v2"} and "api-2" in said[0]


async def test_a_permanent_rollout_asks_for_no_lease_and_holds_none():
    lab = FlakyLab()
    keeper = LeaseKeeper(lab)
    result = await rollout(lab, v2(), WAVES, bake_s=0, guard=None, prometheus_url="", keeper=keeper, lease_s=None)
    assert result.ok and keeper.held() == {}
    assert all(c[3].get("keep") is True and "lease_s" not in c[3] for c in lab.calls if c[0] == "PUT")


def test_a_started_keeper_renews_on_its_own_and_stops_when_told():
    lab = FlakyLab()
    keeper = LeaseKeeper(lab, lease_s=0.3)
    keeper.hold(["api-1"], "v2")
    with keeper:
        asyncio.run(asyncio.sleep(0.5))
    renewals = [c for c in lab.calls if c[1] == "/control/architecture/renew"]
    assert len(renewals) >= 2
    count = len(lab.calls)
    asyncio.run(asyncio.sleep(0.3))
    assert len(lab.calls) == count  # stopped: the lease lapses on its own


class HaltLab(FlakyLab):
    """FlakyLab with faults, and a halt marker."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.marked = False

    def mark_halted(self) -> None:
        self.marked = True

    async def each(self, method, path, *, json=None, only=None, timeout_s=0.8):
        if path == "/control/faults":
            return [Answer(n, 200, {"removed": 1}) for n in self.instances(only)]
        return await super().each(method, path, json=json, only=only, timeout_s=timeout_s)


async def test_halt_marks_the_lab_and_asks_again_until_every_process_confirms():
    lab = HaltLab(deaf_for={"api-4": 3})
    lab.version.update({"api-2": "v2", "api-4": "v2"})
    answers = await halt(lab, deadline_s=5)
    assert lab.marked and all(a.ok for a in answers) and [a.instance for a in answers] == list(lab.version)
    assert set(lab.version.values()) == {"v1"}


async def test_halt_names_who_never_confirmed_at_its_deadline():
    lab = HaltLab(deaf_for={"api-4": 10**6})
    started = time.monotonic()
    answers = await halt(lab, deadline_s=0.5)
    assert time.monotonic() - started < 1.5
    assert [a.instance for a in answers if not a.ok] == ["api-4"]
