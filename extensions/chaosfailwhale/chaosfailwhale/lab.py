"""Which lab an experiment acts on, from Chaos Toolkit's ``configuration`` and ``secrets``.

``configuration.failwhale_lab`` is the path of the lab config (default ``services/lab.yaml``,
the one ``failwhale up`` uses); relative paths are relative to where ``chaos run`` runs. The
control token is the lab's own token file unless ``secrets.failwhale.token`` gives it (a lab
whose processes live on other hosts, docs/deploy.md). Every failure a user can cause becomes
Chaos Toolkit's ``ActivityFailed`` with one line saying what is wrong.

The lab's state that outlives one activity (the leases a rollout holds, the load an experiment
started) lives in this process, in ``STATE``: it ends with ``chaos run``, and so do the leases,
so a run that dies or is interrupted leaves nothing changed for longer than one lease.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from chaoslib.exceptions import ActivityFailed

from chaos.control import LabControl
from chaos.errors import ChaosError
from chaos.lab.supervisor import Lab
from chaos.lease import LeaseKeeper
from configfiles.errors import ConfigError
from services.architecture import Architecture, load_architecture
from services.common.app import read_token
from services.config import DEFAULT_LAB_CONFIG, LabConfig, load_lab_config

CONFIG_KEY = "failwhale_lab"
SECRETS_KEY = "failwhale"
T = TypeVar("T")


@dataclass
class State:
    """What activities of one ``chaos run`` share, per lab config."""

    keepers: dict[tuple[Path, float], LeaseKeeper] = field(default_factory=dict)
    loads: dict[Path, Lab] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


STATE = State()


@dataclass(frozen=True)
class Target:
    """One lab as the experiment names it: its config, its architecture, its control planes."""

    path: Path
    lab: LabConfig
    arch: Architecture
    control: LabControl

    def keeper(self, lease_s: float) -> LeaseKeeper:
        """The renewer of this lab's changes made by this run under ``lease_s``, started on first use."""
        with STATE.lock:
            key = (self.path, lease_s)
            if key not in STATE.keepers:
                STATE.keepers[key] = LeaseKeeper(self.control, lease_s=lease_s).start()
            return STATE.keepers[key]

    def drop_keepers(self) -> None:
        """Renew nothing more on this lab (a rollback or a halt undoes what they held)."""
        with STATE.lock:
            mine = [k for k in STATE.keepers if k[0] == self.path]
            keepers = [STATE.keepers.pop(k) for k in mine]
        for keeper in keepers:
            keeper.stop()


def target(configuration: Mapping[str, Any] | None, secrets: Mapping[str, Any] | None) -> Target:
    """The lab the experiment's configuration names; ActivityFailed saying why when it cannot be reached."""
    path = Path((configuration or {}).get(CONFIG_KEY) or DEFAULT_LAB_CONFIG).resolve()
    try:
        lab = load_lab_config(path)
        arch = load_architecture(lab.architecture_path)
    except ConfigError as e:
        raise ActivityFailed(f"configuration.{CONFIG_KEY}: {e}") from e
    # Chaos Toolkit hands an activity the secrets its provider names ("secrets": ["failwhale"]),
    # flattened: {"token": ...}.
    try:
        token = (secrets or {}).get("token") or read_token(lab.token_path)
    except OSError as e:
        raise ActivityFailed(f"cannot read the control token at {lab.token_path}: {e.strerror or e}") from e
    if not token:
        raise ActivityFailed(
            f"no control token: the lab has none at {lab.token_path} (is it running? `failwhale up`), "
            f'and the provider names no secrets.{SECRETS_KEY}.token ("secrets": ["{SECRETS_KEY}"])'
        )
    return Target(path, lab, arch, LabControl(lab, arch, token))


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run one of failwhale's coroutines for an activity; its errors as Chaos Toolkit's."""
    try:
        return asyncio.run(coroutine)
    except ChaosError as e:
        raise ActivityFailed(str(e)) from e


def architecture_file(name: str, lab: LabConfig) -> Path:
    """An architecture by path, or by version beside the lab's own (``v2``: services/architecture/v2.yaml)."""
    given = Path(name)
    if given.suffix in (".yaml", ".yml") or given.exists():
        return given
    return lab.architecture_path.with_name(f"{name}.yaml")
