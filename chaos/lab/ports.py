"""Loopback ports for labs that must not collide with anything: tests, benchmarks, a second lab."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

import yaml

from services.architecture import load_architecture
from services.config import DEFAULT_LAB_CONFIG, load_lab_config

# Ports a lab needs beside its service instances.
AUX_PORTS = ("prometheus", "locust", "locust-master", "loadgen-metrics", "chaos-metrics", "dashboard", "workshop")


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` ports the OS says are free now (all held open until every one is chosen)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(n)]
        for s in socks:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in socks]


def free_port_lab_config(folder: Path, architecture: Path | None = None) -> Path:
    """Write ``folder/lab.yaml``: the default lab, every port free, its data inside ``folder``."""
    architecture = architecture or load_lab_config(DEFAULT_LAB_CONFIG).architecture_path
    names = [*load_architecture(architecture).instance_kinds(), *AUX_PORTS]
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    path = folder / "lab.yaml"
    path.write_text(
        yaml.safe_dump({"data_dir": str(folder / "data"), "architecture": str(architecture), "ports": ports})
    )
    return path
