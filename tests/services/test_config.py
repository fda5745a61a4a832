"""The lab config: addresses are validated up front, and relative paths resolve sensibly."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from configfiles.errors import ConfigError
from services.config import DEFAULT_LAB_CONFIG, load_lab_config


def write_lab(tmp_path: Path, **fields) -> Path:
    data = {"host": "127.0.0.1", "ports": {"web": 18080, "edge": 18000}} | fields
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_lab_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:")
    return message


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_shipped_lab_config_loads():
    cfg = load_lab_config(DEFAULT_LAB_CONFIG)
    assert cfg.architecture_path.is_file()
    assert len(set(cfg.ports.values())) == len(cfg.ports)


@pytest.mark.parametrize("port", [80, 1023, 65536, 0, -1])
def test_port_outside_range_is_rejected_naming_it(tmp_path, port):
    path = write_lab(tmp_path, ports={"web": 18080, "edge": port})
    message = config_error(path)
    # Points at the offending entry and says which bound it breaks.
    assert f":{line_of(path, 'edge:')}: ports.edge: " in message
    bound = "1024" if port < 1024 else "65535"
    assert bound in message.split("ports.edge: ", 1)[1]


@pytest.mark.parametrize("port", [1024, 65535])
def test_range_ends_are_allowed(tmp_path, port):
    assert load_lab_config(write_lab(tmp_path, ports={"web": port})).port("web") == port


def test_duplicated_port_names_both_users(tmp_path):
    path = write_lab(tmp_path, ports={"web": 18080, "edge": 18000, "auth": 18080})
    message = config_error(path)
    assert f":{line_of(path, 'ports:')}: ports: " in message
    assert "auth and web both use port 18080" in message


@pytest.mark.parametrize("host", ["localhost", "example.com", "127.0.0.256", ""])
def test_host_must_be_an_ip_address(tmp_path, host):
    path = write_lab(tmp_path, host=host)
    message = config_error(path)
    assert f":{line_of(path, 'host:')}: host: " in message
    assert f"not an IP address: {host!r}" in message


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "10.0.0.1"])
def test_a_host_other_machines_could_reach_is_refused_in_one_line(tmp_path, host):
    path = write_lab(tmp_path, host=host)
    message = config_error(path)
    assert f":{line_of(path, 'host:')}: host: {host} is not a loopback address" in message and "\n" not in message


@pytest.mark.parametrize(
    ("host", "url"),
    [("127.0.0.1", "http://127.0.0.1:18080"), ("127.0.0.2", "http://127.0.0.2:18080"), ("::1", "http://[::1]:18080")],
)
def test_loopback_hosts_are_accepted_and_used_in_urls(tmp_path, host, url):
    cfg = load_lab_config(write_lab(tmp_path, host=host))
    assert cfg.url("web") == url
    assert cfg.address("web") == url.removeprefix("http://")


def test_relative_architecture_resolves_against_the_config_file(tmp_path, monkeypatch):
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    path = write_lab(conf_dir, architecture="arch/v9.yaml")
    cfg = load_lab_config(path)
    assert cfg.architecture_path == (conf_dir / "arch" / "v9.yaml").resolve()
    # The same file loaded through a relative path resolves the same way.
    cfg2 = load_lab_config(Path("..") / "conf" / "lab.yaml")
    assert cfg2.architecture_path == cfg.architecture_path


def test_absolute_architecture_is_kept(tmp_path):
    target = tmp_path / "somewhere" / "v1.yaml"
    cfg = load_lab_config(write_lab(tmp_path, architecture=str(target)))
    assert cfg.architecture_path == target


def test_data_dir_is_relative_to_the_working_directory(tmp_path, monkeypatch):
    """As documented on data_path: unlike the architecture, data goes where you run from."""
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    monkeypatch.chdir(tmp_path)
    cfg = load_lab_config(write_lab(conf_dir, data_dir="state"))
    assert cfg.data_path == tmp_path / "state"
    assert cfg.token_path == tmp_path / "state" / "control.token"


def test_config_is_frozen(tmp_path):
    cfg = load_lab_config(write_lab(tmp_path))
    with pytest.raises(ValidationError):  # frozen
        cfg.host = "10.0.0.1"  # type: ignore[misc]


# ---- processes at their own addresses ----------------------------------------------------------


def test_the_shipped_config_keeps_every_process_on_loopback():
    cfg = load_lab_config(DEFAULT_LAB_CONFIG)
    assert not cfg.network and cfg.on_network() == []
    assert all(cfg.host_of(n) == cfg.listen_host(n) == "127.0.0.1" for n in cfg.ports)


def test_a_process_placed_elsewhere_is_reached_and_bound_there(tmp_path):
    cfg = load_lab_config(write_lab(tmp_path, hosts={"edge": "127.0.0.5"}))
    assert cfg.url("edge") == "http://127.0.0.5:18000" and cfg.listen_host("edge") == "127.0.0.5"
    assert cfg.url("web") == "http://127.0.0.1:18080"


@pytest.mark.parametrize("field", ["hosts", "listen"])
def test_an_address_outside_loopback_needs_the_explicit_opt_in(tmp_path, field):
    value = {"edge": "10.1.2.3"} if field == "hosts" else "10.1.2.3"
    path = write_lab(tmp_path, **{field: value})
    message = config_error(path)
    assert f":{line_of(path, field + ':')}: {field}: " in message
    assert "10.1.2.3 is not a loopback address" in message and "network: true" in message
    cfg = load_lab_config(write_lab(tmp_path, network=True, **{field: value}))
    assert cfg.on_network() == (["edge"] if field == "hosts" else ["web", "edge"])


def test_with_the_opt_in_hosts_may_be_names_and_processes_may_bind_every_interface(tmp_path):
    cfg = load_lab_config(write_lab(tmp_path, network=True, listen="0.0.0.0", hosts={"web": "web", "edge": "edge"}))
    assert cfg.url("edge") == "http://edge:18000" and cfg.listen_host("edge") == "0.0.0.0"


def test_host_names_need_the_opt_in_and_every_interface_is_no_address_to_reach(tmp_path):
    assert "a host name needs `network: true`" in config_error(write_lab(tmp_path, hosts={"edge": "edge"}))
    message = config_error(write_lab(tmp_path, network=True, hosts={"edge": "0.0.0.0"}))
    assert "hosts: edge: 0.0.0.0 is no address a process can be reached at" in message
    assert "neither an IP address nor a host name" in config_error(
        write_lab(tmp_path, network=True, hosts={"edge": "no_such host"})
    )


def test_two_hosts_may_share_a_port_but_hosts_must_name_known_processes(tmp_path):
    cfg = load_lab_config(write_lab(tmp_path, hosts={"edge": "127.0.0.2"}, ports={"web": 18080, "edge": 18080}))
    assert cfg.address("edge") == "127.0.0.2:18080"
    assert "hosts names api-9, which has no port here" in config_error(
        write_lab(tmp_path, hosts={"api-9": "127.0.0.2"})
    )


@pytest.mark.parametrize("any_address", ["0.0.0.0", "::", "::0", "0:0:0:0:0:0:0:0"])
def test_every_spelling_of_every_interface_is_for_listen_only(tmp_path, any_address):
    message = config_error(write_lab(tmp_path, network=True, hosts={"edge": any_address}))
    assert "is no address a process can be reached at" in message
    assert load_lab_config(write_lab(tmp_path, network=True, listen=any_address)).listen_host("web") == any_address
