"""``failwhale serve NAME``: the one command line each process gets, wherever the config places it,
and the control token every process of a spread lab shares."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest
import yaml

from chaos.cli import main
from chaos.errors import BadInput, LabError
from chaos.lab import serve
from chaos.lab.ports import AUX_PORTS, free_ports
from chaos.lab.supervisor import Lab, LoadOptions
from services.architecture import load_architecture
from tests.conftest import V1

V2 = V1.with_name("v2.yaml")


@pytest.fixture
def spread(tmp_path: Path) -> Path:
    """A lab config with the edge and Locust's master on other (loopback) hosts, listening on one address."""
    names = [*load_architecture(V1).instance_kinds(), *AUX_PORTS]
    config = {
        "host": "127.0.0.1",
        "hosts": {"edge": "127.0.0.2", "locust-master": "127.0.0.3"},
        "data_dir": str(tmp_path / "data"),
        "architecture": str(V1),
        "ports": dict(zip(names, free_ports(len(names)), strict=True)),
    }
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def after(cmd: list[str], flag: str) -> str:
    return cmd[cmd.index(flag) + 1]


def test_a_service_starts_from_the_given_architecture_at_its_own_address(spread):
    lab = Lab.from_files(spread)
    served = serve.plan(lab, "edge", V2, LoadOptions())
    assert after(served.cmd, "--instance") == "edge"
    assert after(served.cmd, "--architecture") == str(V2)
    assert served.where == f"127.0.0.2:{lab.lab.port('edge')}"
    # Without one, the lab config's own architecture (not a copy a supervisor would have written).
    assert after(serve.plan(lab, "edge", None, LoadOptions()).cmd, "--architecture") == str(V1)


def test_prometheus_binds_its_own_address(spread):
    lab = Lab.from_files(spread)
    served = serve.plan(lab, "prometheus", None, LoadOptions())
    assert f"--web.listen-address=127.0.0.1:{lab.lab.port('prometheus')}" in served.cmd


def test_a_master_waits_a_bounded_time_for_workers_that_find_it_at_its_address(spread):
    lab = Lab.from_files(spread)
    master = serve.plan(lab, "loadgen", None, LoadOptions(expect_workers=2, peak_users=40)).cmd
    assert "--master" in master and after(master, "--expect-workers") == "2"
    assert after(master, "--master-bind-host") == "127.0.0.3"
    assert float(after(master, "--expect-workers-max-wait")) > 0
    assert after(master, "--peak-users") == "40"
    worker = serve.plan(lab, "loadgen-worker", None, LoadOptions()).cmd
    assert "--worker" in worker and after(worker, "--master-host") == "127.0.0.3"
    assert after(worker, "--master-port") == str(lab.lab.port("locust-master"))
    # Workers reach the site and API where the config places them: the edge is on 127.0.0.2.
    assert after(worker, "--api-url") == lab.lab.url("edge") == f"http://127.0.0.2:{lab.lab.port('edge')}"


def test_an_unknown_process_is_one_line_naming_the_choices(spread, capsys):
    with pytest.raises(BadInput, match="no process named 'api-9' in this lab: one of web, edge, api-1"):
        serve.plan(Lab.from_files(spread), "api-9", None, LoadOptions())
    assert main(["serve", "api-9", "--lab", str(spread)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no process named 'api-9'") and err.count("\n") == 1


def test_a_bad_lab_config_is_one_line_before_anything_runs(tmp_path, capsys):
    bad = tmp_path / "lab.yaml"
    bad.write_text("hosts: {edge: 10.0.0.2}\nports: {web: 18080, edge: 18000}\n")
    assert main(["serve", "edge", "--lab", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "hosts: edge: 10.0.0.2 is not a loopback address" in err and err.count("\n") == 1


def test_the_first_process_makes_the_token_and_every_other_one_reads_it(tmp_path):
    path = tmp_path / "data" / "control.token"
    tokens: list[str] = []
    threads = [threading.Thread(target=lambda: tokens.append(serve.ensure_token(path))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(tokens)) == 1 and len(tokens[0]) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["control.token"]  # no temporary file left


def test_a_token_already_there_is_kept_and_an_empty_one_refused(tmp_path):
    path = tmp_path / "control.token"
    path.write_text("mounted-from-a-secret\n")
    assert serve.ensure_token(path) == "mounted-from-a-secret"
    path.write_text("\n")
    with pytest.raises(BadInput, match="control token file is empty"):
        serve.ensure_token(path)


def test_preparing_a_service_writes_only_what_it_reads(spread):
    lab = Lab.from_files(spread)
    serve.prepare(lab, "api-1", LoadOptions())
    assert lab.lab.token_path.is_file()
    assert not (lab.lab.data_path / "prometheus").exists()
    serve.prepare(lab, "prometheus", LoadOptions())
    scrape = yaml.safe_load((lab.lab.data_path / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in scrape["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    assert f"127.0.0.2:{lab.lab.port('edge')}" in targets
    assert os.access(lab.lab.token_path, os.R_OK)


def test_a_port_in_use_is_one_line_and_nothing_is_written(spread, capsys):
    import socket

    lab = Lab.from_files(spread)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", lab.lab.port("api-1")))
        taken.listen()
        assert main(["serve", "api-1", "--lab", str(spread)]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith(f"error: port {lab.lab.port('api-1')} (api-1) is already in use on 127.0.0.1")
        and err.count("\n") == 1
    )
    assert not lab.lab.token_path.exists()


def test_an_address_of_another_machine_is_one_line(spread, capsys):
    config = yaml.safe_load(spread.read_text())
    spread.write_text(yaml.safe_dump(config | {"network": True, "hosts": {"edge": "192.0.2.7"}}))
    assert main(["serve", "edge", "--lab", str(spread)]) == 2
    err = capsys.readouterr().err
    assert f"edge cannot listen on 192.0.2.7:{config['ports']['edge']} here" in err and err.count("\n") == 1


def test_a_host_without_prometheus_still_serves_its_services(spread, monkeypatch):
    monkeypatch.setattr("chaos.lab.supervisor.find_prometheus", lambda: None)
    lab = Lab.from_files(spread)
    assert after(serve.plan(lab, "api-1", None, LoadOptions()).cmd, "--instance") == "api-1"
    with pytest.raises(LabError, match="Prometheus not found"):
        serve.plan(lab, "prometheus", None, LoadOptions())


def test_load_options_for_another_process_are_refused_not_ignored(spread, capsys):
    assert main(["serve", "api-1", "--lab", str(spread), "--users", "5"]) == 2
    assert "the load's options are for `failwhale serve loadgen`, not api-1" in capsys.readouterr().err
    assert main(["serve", "loadgen", "--lab", str(spread), "--load-workers", "2", "--expect-workers", "2"]) == 2
    assert "choose one" in capsys.readouterr().err


def test_local_worker_processes_meet_their_master_at_its_configured_address(spread):
    lab = Lab.from_files(spread)
    cmd = serve.plan(lab, "loadgen", None, LoadOptions(workers=2)).cmd
    # Locust's default would bind its master on every interface.
    assert after(cmd, "--master-bind-host") == "127.0.0.3" and after(cmd, "--master-host") == "127.0.0.3"
    assert after(cmd, "--master-bind-port") == after(cmd, "--master-port") == str(lab.lab.port("locust-master"))


def test_a_load_with_its_ui_gets_a_fresh_password(spread):
    lab = Lab.from_files(spread)
    serve.prepare(lab, "loadgen", LoadOptions(headless=False))
    secret = lab.ui_secret_path
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600 and len(secret.read_text().strip()) >= 20
