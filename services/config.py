"""The lab config: where every process listens and where the lab keeps its files.

One YAML file (``services/lab.yaml`` by default) gives every process its address (a host and a
port), so the supervisor, the services, Prometheus's scrape config, the load, the runner and the
tests all agree on addresses. By default every process is on 127.0.0.1; ``hosts`` places single
processes elsewhere (another machine, a network namespace, a Kubernetes Service name), and
``listen`` lets every process bind another address than the one it is reached at (``0.0.0.0``
in a container). Any address outside loopback needs ``network: true``: the backends trust the
X-User header the API sets, and the control planes and Prometheus speak plain HTTP, so a lab
faces a network only when its config says so.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator

from configfiles.yamlconf import load_model

DEFAULT_LAB_CONFIG = Path(__file__).with_name("lab.yaml")

Port = Annotated[int, Field(ge=1024, le=65535)]


# A DNS name (a Kubernetes Service, a machine's name): letters, digits, dots and dashes.
_HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


class LabConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # The explicit opt-in to addresses outside loopback (host, hosts, listen). First, so the
    # address checks below can read it.
    network: bool = False
    # Where every process listens and is reached, unless `hosts` names another place for it.
    host: str = "127.0.0.1"
    # Processes that live elsewhere: name -> host (an IP address; with `network`, also a DNS name).
    hosts: dict[str, str] = Field(default_factory=dict)
    # The address every process binds, when that is not the one it is reached at (0.0.0.0 in a
    # container reached through a Service name). None: each binds its own host.
    listen: str | None = None
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
    def _host_allowed(cls, v: str, info: ValidationInfo) -> str:
        return _checked_address(v, info.data.get("network", False), bind_any=False)

    @field_validator("hosts")
    @classmethod
    def _hosts_allowed(cls, v: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        for name, host in v.items():
            try:
                _checked_address(host, info.data.get("network", False), bind_any=False)
            except ValueError as e:
                raise ValueError(f"{name}: {e}") from None
        return v

    @field_validator("listen")
    @classmethod
    def _listen_allowed(cls, v: str | None, info: ValidationInfo) -> str | None:
        return v if v is None else _checked_address(v, info.data.get("network", False), bind_any=True)

    @field_validator("ports")
    @classmethod
    def _ports_unique_per_host(cls, v: dict[str, int], info: ValidationInfo) -> dict[str, int]:
        hosts: dict[str, str] = info.data.get("hosts", {})
        if unknown := sorted(set(hosts) - set(v)):
            raise ValueError(f"hosts names {', '.join(unknown)}, which has no port here")
        default = info.data.get("listen") or info.data.get("host", "127.0.0.1")
        # Two processes on one host need two ports; on two hosts they may share one.
        seen: dict[tuple[str, int], str] = {}
        for name, port in v.items():
            key = (info.data.get("listen") or hosts.get(name, default), port)
            if key in seen:
                raise ValueError(f"{name} and {seen[key]} both use port {port}")
            seen[key] = name
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

    def host_of(self, name: str) -> str:
        """The host a process is reached at."""
        return self.hosts.get(name, self.host)

    def listen_host(self, name: str) -> str:
        """The address a process binds: ``listen`` when set, else its own host."""
        return self.listen or self.host_of(name)

    def on_network(self) -> list[str]:
        """Processes that listen outside loopback (empty unless ``network`` allows it)."""
        return [n for n in self.ports if not _is_loopback(self.listen_host(n))]

    def address(self, name: str) -> str:
        """``host:port`` of a process, with an IPv6 host in brackets (``[::1]:18000``)."""
        host = self.host_of(name)
        return f"{f'[{host}]' if ':' in host else host}:{self.ports[name]}"

    def url(self, name: str) -> str:
        return f"http://{self.address(name)}"


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _checked_address(value: str, network: bool, bind_any: bool) -> str:
    """``value`` if the lab may use it as an address; a ValueError saying why not."""
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        if not network:
            raise ValueError(f"not an IP address: {value!r} (a host name needs `network: true`)") from None
        if not _HOSTNAME.match(value):
            raise ValueError(f"neither an IP address nor a host name: {value!r}") from None
        return value
    if address.is_unspecified and network and not bind_any:
        raise ValueError(f"{value} is no address a process can be reached at; bind it with `listen`")
    if not address.is_loopback and not network:
        # The backends trust the X-User header the API sets, and the control planes and
        # Prometheus speak plain HTTP: none of that may face a network by accident.
        raise ValueError(
            f"{value} is not a loopback address: every lab process there would be reachable from other "
            "machines, its backends trusting any caller; use 127.0.0.1 or ::1, or opt in with "
            "`network: true` on a network only the lab's hosts share"
        )
    return value


def load_lab_config(path: str | Path = DEFAULT_LAB_CONFIG) -> LabConfig:
    path = Path(path)
    cfg = load_model(LabConfig, path)
    cfg._source = path.resolve()
    return cfg
