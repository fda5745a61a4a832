"""Shared fixtures: free loopback ports, a lab config on them, and in-process services.

Unit tests run real services on real loopback ports (aiohttp's TestServer), so calls between
services are real HTTP. Integration tests (marked ``integration``) start real processes.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from chaos.lab.ports import free_ports
from services.architecture import Architecture, parse_architecture
from services.architecture.model import ArchitectureState
from services.common.app import ServiceContext
from services.config import LabConfig
from services.registry import factory

ROOT = Path(__file__).resolve().parents[1]
V1 = ROOT / "services" / "architecture" / "v1.yaml"
TOKEN = "test-control-token"

# Hostile or broken files: each is refused in one line, fast, before anything is built from it.


def _billion_laughs(levels: int = 9) -> str:
    """Nine lists of nine aliases to the list before: a few hundred bytes that expand to 9**9 strings."""
    lines = ["l0: &l0 [" + ", ".join(["lol"] * 9) + "]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


HOSTILE_YAML = {
    "alias bomb": (_billion_laughs(), "aliases are not allowed"),
    "5,000 levels of flow nesting": ("version: " + "[" * 5000 + "]" * 5000 + "\n", "nested more than 64 levels deep"),
    # Indented 5,000 deep, a file is 12 MB and refused by its size; 1,000 deep it is 0.5 MB.
    "1,000 levels of block nesting": (
        "".join(" " * i + f"k{i}:\n" for i in range(1000)) + " " * 1000 + "v: 1\n",
        "nested more than 64 levels deep",
    ),
    "a file of 2 MB": ("version: v1\n" + "# padding\n" * 200_000, "a config file may have at most 1,000,000"),
}


@pytest.fixture
def arch_data() -> dict[str, Any]:
    """The v1 architecture as plain data, a fresh copy per test to modify freely."""
    return copy.deepcopy(yaml.safe_load(V1.read_text()))


@pytest.fixture
def arch(arch_data: dict[str, Any]) -> Architecture:
    return parse_architecture(arch_data, str(V1))


@pytest.fixture
def lab_config(tmp_path: Path, arch: Architecture) -> LabConfig:
    """A lab config putting every v1 instance and Prometheus on free ports, data in tmp_path."""
    names = [*arch.instance_kinds(), "prometheus"]
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    data = tmp_path / "lab"
    data.mkdir()
    path = tmp_path / "lab.yaml"
    path.write_text(
        yaml.safe_dump({"host": "127.0.0.1", "data_dir": str(data), "architecture": str(V1), "ports": ports})
    )
    from services.config import load_lab_config

    return load_lab_config(path)


@dataclass
class Running:
    app: web.Application
    server: TestServer
    ctx: ServiceContext

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")


StartService = Callable[..., Awaitable[Running]]


class LabServer(TestServer):
    """A test server that runs handlers as the lab does (``web.run_app``): a handler keeps going
    when its caller hangs up, where aiohttp's TestServer would cancel it."""

    async def _make_runner(self, **kwargs):
        kwargs["handler_cancellation"] = False
        return await super()._make_runner(**kwargs)


async def serve_instance(lab: LabConfig, arch: Architecture, instance: str, token: str | None = TOKEN) -> Running:
    """One service process's app, served in this event loop on its lab port; close its server after."""
    ctx = ServiceContext(instance, arch.instance_kinds()[instance], lab, ArchitectureState(arch), token)
    app = factory(ctx.kind)(ctx)
    server = LabServer(app, host=lab.host, port=lab.port(instance))
    await server.start_server()
    return Running(app, server, ctx)


@pytest.fixture
async def start_service(lab_config: LabConfig, arch: Architecture) -> AsyncIterator[StartService]:
    """Start a service in-process on its lab port: ``await start_service("auth")``.

    Pass ``architecture=`` to start it on another architecture, ``token=`` for its control token.
    """
    servers: list[TestServer] = []

    async def start(instance: str, *, architecture: Architecture | None = None, token: str | None = TOKEN) -> Running:
        running = await serve_instance(lab_config, architecture or arch, instance, token)
        servers.append(running.server)
        return running

    yield start
    for server in reversed(servers):
        await server.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def metric_value(app: web.Application, name: str, **labels: str) -> float:
    """Sum of a metric's samples in an app's registry whose labels include ``labels``."""
    from services.common.app import METRICS

    total = 0.0
    for family in app[METRICS].registry.collect():
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total
