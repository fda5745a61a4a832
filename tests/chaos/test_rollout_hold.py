"""Pausing and stopping a rollout between waves (the workshop's pause, resume and rollback levers),
against a recording stand-in for the lab's control plane."""

from __future__ import annotations

import asyncio
import threading

from chaos.control import Answer
from chaos.rollout import rollout
from services.architecture import parse_architecture


class Recorder:
    """Answers every control call with 200 and remembers which processes each one named."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, tuple[str, ...]]] = []

    def halted_since(self, t: float) -> bool:
        return False

    async def halt_seen(self, t: float) -> bool:
        return False  # no halt anywhere: these tests are about the levers

    async def each(self, method, path, *, json=None, only=None, timeout_s=0.8):
        names = tuple(only or ("everyone",))
        self.calls.append((method, path, names))
        return [Answer(n, 200, {}) for n in names]


WAVES = [["api-1"], ["api-2"], ["api-3"]]


async def play(hold) -> tuple[Recorder, object, list[str]]:
    control, said = Recorder(), []
    arch = parse_architecture(_v1())
    result = await rollout(control, arch, WAVES, bake_s=0, guard=None, prometheus_url="", say=said.append, hold=hold)
    return control, result, said


def _v1() -> dict:
    import yaml

    from tests.conftest import V1

    return yaml.safe_load(V1.read_text())


def states(*seq: str):
    it = iter(seq)
    return lambda: next(it, "go")


async def test_a_paused_rollout_moves_no_further_wave_until_resumed():
    control, result, said = await play(states("go", "wait", "wait", "go", "go"))
    assert [list(c[2]) for c in control.calls] == WAVES and result.ok
    assert said.count("rollout paused before wave 2/3") == 1 and "rollout resumed at wave 2/3" in said


async def test_a_stopped_rollout_puts_back_only_what_it_moved():
    control, result, said = await play(states("go", "go", "stop"))
    assert [c[:2] for c in control.calls] == [("PUT", "/control/architecture")] * 2 + [
        ("POST", "/control/architecture/baseline")
    ]
    assert control.calls[-1][2] == ("api-1", "api-2")
    assert result.rolled_back and result.completed_waves == 2 and "stopped before wave 3/3" in result.reason


async def test_stopped_before_the_first_wave_nothing_moves():
    control, result, said = await play(states("stop"))
    assert result.completed_waves == 0 and result.rolled_back
    assert control.calls == []  # no wave, and no rollback of processes it never moved
    assert any(m.startswith("nothing had moved") for m in said)


async def test_a_wave_waits_for_whoever_holds_the_lock_and_is_stopped_if_they_said_so():
    control, said, lock = Recorder(), [], threading.Lock()
    stopped = False
    lock.acquire()  # a lever is changing the architecture (a rollback that stops the rollout)

    async def lever():
        nonlocal stopped
        await asyncio.sleep(0.3)
        stopped = True
        lock.release()

    arch = parse_architecture(_v1())
    task = asyncio.create_task(lever())
    result = await rollout(
        control,
        arch,
        WAVES,
        bake_s=0,
        guard=None,
        prometheus_url="",
        say=said.append,
        hold=lambda: "stop" if stopped else "go",
        lock=lock,
    )
    await task
    assert control.calls == [] and result.rolled_back and "stopped before wave 1/3" in result.reason
    assert not lock.locked()
