"""One process of the lab in the foreground, for a process manager: ``failwhale serve NAME``.

``failwhale up`` starts every process on one machine. A lab spread over hosts (machines, network
namespaces, Kubernetes pods) runs each process with ``serve`` instead, where its lab config
places it. The process replaces ``serve`` (``exec``), so the manager's signals reach it directly
and its exit code is the process's own.

Every process of a lab must read the same control token. ``serve`` uses the token file in the
data folder when there is one (a Kubernetes Secret mounted there, a shared folder) and creates
it otherwise, atomically: processes started together on one filesystem all end up with the
first one's token.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from chaos.errors import BadInput, LabError
from chaos.lab import prometheus
from chaos.lab.supervisor import (
    DASHBOARD,
    LOADGEN,
    PROMETHEUS,
    Lab,
    LoadOptions,
    check_port,
    load_command,
    load_ports,
    new_ui_secret,
    worker_command,
)

LOADGEN_WORKER = "loadgen-worker"


@dataclass(frozen=True)
class Served:
    """What ``serve`` runs: a name, its command line, and where it listens (for the one line it prints)."""

    name: str
    cmd: list[str]
    where: str


def ensure_token(path: Path) -> str:
    """The lab's control token: the one in ``path``, or a new one put there atomically (mode 0600)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
        # link() fails if another process got there first: then its token is the lab's.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
        tmp.unlink()
    token = path.read_text(encoding="utf-8").strip()
    if not token:
        raise BadInput(f"{path}: the control token file is empty")
    return token


def names(lab: Lab) -> list[str]:
    """Every process ``serve`` can run for this lab."""
    return [*lab.arch.instance_kinds(), PROMETHEUS, DASHBOARD, LOADGEN, LOADGEN_WORKER]


def plan(lab: Lab, name: str, architecture: Path | None, load: LoadOptions) -> Served:
    """The command that runs process ``name`` of ``lab``; a BadInput naming the choices for an unknown one."""
    cfg = lab.lab
    if name not in names(lab):
        raise BadInput(f"no process named {name!r} in this lab: one of {', '.join(names(lab))}")
    load_dir = cfg.data_path / "load"
    if name == LOADGEN:
        return Served(name, load_command(cfg, load, load_dir), f"metrics on {cfg.address('loadgen-metrics')}")
    if name == LOADGEN_WORKER:
        return Served(name, worker_command(cfg, load_dir), f"master at {cfg.address('locust-master')}")
    if name == DASHBOARD and DASHBOARD not in cfg.ports:
        raise BadInput(f"{cfg.source or 'lab config'}: ports: no port for {DASHBOARD}")
    lab.plan(architecture or cfg.architecture_path, with_prometheus=name == PROMETHEUS)
    return Served(name, lab.procs[name].cmd, cfg.address(name))


def ports_of(lab: Lab, name: str, load: LoadOptions) -> list[str]:
    """The lab config's port names process ``name`` listens on."""
    if name == LOADGEN:
        return load_ports(load)
    return [] if name == LOADGEN_WORKER else [name]


def prepare(lab: Lab, name: str, load: LoadOptions) -> None:
    """Check its ports are free here, then write the files the process reads: the control token
    (every service) and Prometheus's scrape config. Nothing is written for a process that cannot start."""
    cfg = lab.lab
    for port_name in ports_of(lab, name, load):
        check_port(cfg, port_name)
    (cfg.data_path / "logs").mkdir(parents=True, exist_ok=True)
    if name in (LOADGEN, LOADGEN_WORKER):
        (cfg.data_path / "load").mkdir(parents=True, exist_ok=True)
    if name == LOADGEN and not load.headless:
        new_ui_secret(cfg)
    if name in lab.arch.instance_kinds():
        ensure_token(cfg.token_path)
    if name == PROMETHEUS:
        prom_dir = cfg.data_path / "prometheus"
        prometheus.write_config(prom_dir / "prometheus.yml", cfg, lab.arch)


def run(served: Served) -> None:  # pragma: no cover - replaces the process
    try:
        os.execv(served.cmd[0], served.cmd)
    except OSError as e:
        raise LabError(f"cannot run {served.name} ({served.cmd[0]}): {e.strerror or e}") from e
