"""The lab config: where every process listens and where the lab keeps its files.

One YAML file (``services/lab.yaml`` by default) gives every port, so the supervisor, the
services, Prometheus's scrape config and the tests all agree on addresses.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from configfiles.yamlconf import load_model

DEFAULT_LAB_CONFIG = Path(__file__).with_name("lab.yaml")

Port = Annotated[int, Field(ge=1024, le=65535)]


class LabConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    data_dir: Path = Path(".lab")
    architecture: Path = Path("architecture/v1.yaml")
    scrape_interval_s: float = Field(default=1.0, gt=0, le=60)
    ports: dict[str, Port]

    # Set by load_lab_config: the file this came from, to resolve relative paths against.
    _source: Path | None = PrivateAttr(default=None)

    @property
    def source(self) -> Path | None:
        return self._source

    @field_validator("host")
    @classmethod
    def _host_is_a_loopback_address(cls, v: str) -> str:
        try:
            address = ipaddress.ip_address(v)
        except ValueError as e:
            raise ValueError(f"not an IP address: {v!r}") from e
        if not address.is_loopback:
            # The backends trust the X-User header the API sets, and the control planes and
            # Prometheus speak plain HTTP: none of that may face a network.
            raise ValueError(
                f"{v} is not a loopback address: every lab process would be reachable from other "
                "machines, its backends trusting any caller; use 127.0.0.1 or ::1"
            )
        return v

    @field_validator("ports")
    @classmethod
    def _ports_unique(cls, v: dict[str, int]) -> dict[str, int]:
        seen: dict[int, str] = {}
        for name, port in v.items():
            if port in seen:
                raise ValueError(f"{name} and {seen[port]} both use port {port}")
            seen[port] = name
        return v

    def _resolve(self, p: Path) -> Path:
        if p.is_absolute() or self.source is None:
            return p
        return (self.source.parent / p).resolve()

    @property
    def architecture_path(self) -> Path:
        return self._resolve(self.architecture)

    @property
    def data_path(self) -> Path:
        """The lab's data folder, relative to the working directory (not the config file)."""
        return self.data_dir.resolve()

    @property
    def token_path(self) -> Path:
        return self.data_path / "control.token"

    def port(self, name: str) -> int:
        return self.ports[name]

    def address(self, name: str) -> str:
        """``host:port`` of a process, with an IPv6 host in brackets (``[::1]:18000``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.ports[name]}"

    def url(self, name: str) -> str:
        return f"http://{self.address(name)}"


def load_lab_config(path: str | Path = DEFAULT_LAB_CONFIG) -> LabConfig:
    path = Path(path)
    cfg = load_model(LabConfig, path)
    cfg._source = path.resolve()
    return cfg
