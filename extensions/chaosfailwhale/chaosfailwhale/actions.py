"""Actions on a failwhale lab: faults, architecture rollouts and their undoing, and the load.

Plain annotations (no ``from __future__ import annotations``): ``chaos discover`` reads each
argument's type from them. Every change an action makes undoes itself: faults lapse by their
TTL, and an architecture change is a lease this ``chaos run`` renews while it lives, so an
interrupted run (Chaos Toolkit then skips its rollbacks) leaves the lab on its baseline within
one lease.
"""

import time
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets
from pydantic import ValidationError

from chaos import promql
from chaos.control import halt as halt_lab
from chaos.errors import ChaosError
from chaos.lab.supervisor import LOADGEN, MAX_LOAD_S, MAX_USERS, Lab, LoadOptions
from chaos.rollout import check_same_processes, plan_waves
from chaos.rollout import rollback as roll_back
from chaos.rollout import rollout as roll_out
from chaosfailwhale.lab import STATE, architecture_file, run, target
from configfiles.errors import ConfigError
from services.architecture import load_architecture
from services.architecture.model import DEFAULT_LEASE_S, MAX_LEASE_S
from services.common.faults import FaultSpec

__all__ = ["clear_faults", "halt", "inject_fault", "rollback", "rollout", "start_load", "stop_load"]


def inject_fault(
    targets: list, fault: dict, configuration: Configuration = None, secrets: Secrets = None
) -> dict[str, Any]:
    """Inject one fault into each named process (``["timeline"]``, ``["api-1", "api-2"]``).

    ``fault`` is a failwhale fault: ``{"kind": "error", "status": 503, "ttl_s": 30}``, or kind
    latency, abort, blackhole, capacity, reroute, rate_limit (docs/architecture.md). It lapses by
    itself after ``ttl_s`` seconds (default 15), whatever happens to this run."""
    t = target(configuration, secrets)
    try:
        spec = FaultSpec.model_validate(fault)
    except ValidationError as e:
        first = e.errors()[0]
        where = "".join(f".{p}" for p in first["loc"])
        raise ActivityFailed(f"fault{where}: {first['msg']}") from e
    targets = [targets] if isinstance(targets, str) else targets
    answers = run(
        t.control.each(
            "POST",
            "/control/faults",
            json={"faults": [spec.model_dump(mode="json", exclude_defaults=True) | {"ttl_s": spec.ttl_s}]},
            only=list(targets),
        )
    )
    if refused := [f"{a.instance}: {a.body}" for a in answers if not a.ok]:
        raise ActivityFailed(f"fault refused by {'; '.join(refused)}")
    return {"targets": [a.instance for a in answers], "kind": spec.kind, "ttl_s": spec.ttl_s}


def clear_faults(
    targets: list | None = None, configuration: Configuration = None, secrets: Secrets = None
) -> dict[str, Any]:
    """Remove every fault from the named processes (default: every process)."""
    t = target(configuration, secrets)
    targets = [targets] if isinstance(targets, str) else targets
    answers = run(t.control.each("DELETE", "/control/faults", only=list(targets) if targets else None))
    if failed := [a.instance for a in answers if not a.ok]:
        raise ActivityFailed(f"faults not cleared on {', '.join(failed)} (they still lapse by their TTL)")
    return {a.instance: a.body.get("removed", 0) for a in answers}


def rollout(
    architecture: str,
    waves: list | None = None,
    bake_s: float = 4.0,
    guard: str | None = None,
    guard_every_s: float = 2.0,
    lease_s: float = DEFAULT_LEASE_S,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Roll an architecture out in waves: a file, or a version beside the lab's (``"v2"``).

    ``waves``: cumulative fractions of the API replicas (default ``[0.25, 0.5, 1]``; every other
    process moves with the first) or lists of replicas. Between waves it bakes ``bake_s`` seconds,
    asking ``guard`` (PromQL; any result means stop) every ``guard_every_s``. A breached guard
    rolls back what moved and says so in the result (``rolled_back``, ``reason``); a halt or a
    process that refuses rolls back too, and fails the action. What it moved stays for as long
    as this run lives (renewed every ``lease_s`` / 3 s), until ``rollback`` or ``halt``."""
    t = target(configuration, secrets)
    if not isinstance(lease_s, (int, float)) or not 1 <= lease_s <= MAX_LEASE_S:
        # A change without a lease would outlive this run: every change here undoes itself.
        raise ActivityFailed(f"lease_s must be between 1 and {MAX_LEASE_S:g} seconds, not {lease_s!r}")
    try:
        path = architecture_file(architecture, t.lab)
        new = load_architecture(path)
        check_same_processes(new, t.arch, str(path))
        planned = plan_waves(new, waves or [0.25, 0.5, 1.0])
    except (ConfigError, ChaosError, TypeError) as e:
        raise ActivityFailed(f"architecture {architecture}: {e}") from e
    if guard:
        try:  # a guard Prometheus refuses is found before anything moves, not after the first wave
            promql.query(t.lab.url("prometheus"), guard)
        except ChaosError as e:
            raise ActivityFailed(f"guard: {e}") from e
    result = run(
        roll_out(
            t.control,
            new,
            planned,
            bake_s=bake_s,
            guard=guard,
            guard_every_s=guard_every_s,
            prometheus_url=t.lab.url("prometheus"),
            keeper=t.keeper(float(lease_s)),
            lease_s=float(lease_s),
        )
    )
    if result.rolled_back and not result.guard_breached:
        raise ActivityFailed(
            f"rollout of {new.version} rolled back after {result.completed_waves} wave(s): {result.reason}"
        )
    # A breached guard is the rollout doing its job, not the action failing: the journal says so.
    return {
        "version": new.version,
        "waves": planned,
        "completed_waves": result.completed_waves,
        "rolled_back": result.rolled_back,
        "reason": result.reason or None,
    }


def rollback(configuration: Configuration = None, secrets: Secrets = None) -> dict[str, Any]:
    """Every process back on the architecture it started with; this run renews nothing any more."""
    t = target(configuration, secrets)
    t.drop_keepers()
    stuck = run(roll_back(t.control))
    if stuck:
        raise ActivityFailed(f"no confirmation from {', '.join(stuck)}: their changes lapse within one lease")
    return {"baseline": t.arch.version, "processes": t.control.instances()}


def halt(configuration: Configuration = None, secrets: Secrets = None) -> dict[str, Any]:
    """The kill switch: every fault removed, every process on its baseline, rollouts anywhere stopped."""
    t = target(configuration, secrets)
    t.drop_keepers()
    answers = run(halt_lab(t.control))
    if failed := [a.instance for a in answers if not a.ok]:
        raise ActivityFailed(f"halt not confirmed by {', '.join(failed)}: faults lapse by TTL, changes by lease")
    return {"halted": [a.instance for a in answers]}


def start_load(
    users: int = 30,
    web_share: float = 0.4,
    shape: str = "constant",
    duration_s: float = 300.0,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Start Locust's web and app users against the lab from this machine (for a lab running
    without load, `failwhale up --no-load`). It stops by itself after ``duration_s``, at
    ``stop_load``, or when this run ends."""
    t = target(configuration, secrets)
    if shape not in ("constant", "evening"):
        raise ActivityFailed(f"shape must be constant or evening, not {shape!r}")
    if isinstance(users, bool) or not isinstance(users, int) or not 1 <= users <= MAX_USERS:
        raise ActivityFailed(f"users must be a whole number from 1 to {MAX_USERS:,}, not {users!r}")
    if not isinstance(web_share, (int, float)) or not 0 <= web_share <= 1:
        raise ActivityFailed(f"web_share must be between 0 and 1, not {web_share!r}")
    if not isinstance(duration_s, (int, float)) or not 1 <= duration_s <= MAX_LOAD_S:
        raise ActivityFailed(f"duration_s must be between 1 and {MAX_LOAD_S:g} seconds, not {duration_s!r}")
    with STATE.lock:
        if t.path in STATE.loads:
            raise ActivityFailed("this run already started a load on this lab: stop_load first")
        lab = Lab(t.lab, t.arch)
        try:
            lab.start_load(
                LoadOptions(peak_users=users, web_share=float(web_share), shape=shape, duration_s=float(duration_s))
            )
        except ChaosError as e:
            raise ActivityFailed(str(e)) from e
        STATE.loads[t.path] = lab
    return {"users": users, "web_share": web_share, "shape": shape, "duration_s": duration_s, "started": time.time()}


def stop_load(configuration: Configuration = None, secrets: Secrets = None) -> dict[str, Any]:
    """Stop the load ``start_load`` started (nothing to do when there is none)."""
    t = target(configuration, secrets)
    with STATE.lock:
        lab = STATE.loads.pop(t.path, None)
    if lab is None:
        return {"stopped": False}
    lab.stop_instance(LOADGEN)
    return {"stopped": True}
