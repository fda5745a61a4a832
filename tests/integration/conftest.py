"""A whole lab (every service process plus a real Prometheus) shared by a test module."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos.lab.ports import free_port_lab_config
from chaos.lab.supervisor import Lab
from chaos.promql import query
from services.architecture import load_architecture
from services.config import load_lab_config
from tests.conftest import V1


def write_lab_config(folder: Path) -> Path:
    """A lab config on free ports with its data inside ``folder``."""
    return free_port_lab_config(folder, V1)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    folder = tmp_path_factory.mktemp("lab")
    cfg = load_lab_config(write_lab_config(folder))
    with Lab(cfg, load_architecture(cfg.architecture_path)) as running:
        yield running


def prom_query(lab: Lab, promql: str, through: str = "prometheus") -> list[dict]:
    """An instant query to the lab's Prometheus, or ``through="dashboard"`` as the dashboard page asks it."""
    return query(lab.url(through), promql, timeout_s=5)


def wait_for_query(lab: Lab, promql: str, ok, timeout_s: float = 10.0) -> list[dict]:
    """Poll Prometheus until ``ok(result)`` holds (scrapes land every second)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = prom_query(lab, promql)
        if ok(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.5)
