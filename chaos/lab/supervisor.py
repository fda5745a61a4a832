"""Start, watch and stop every process of the lab: the services, a real Prometheus and the dashboard.

Children die with the supervisor even when it is killed with SIGKILL (Linux's parent-death
signal), so a crashed ``failwhale up`` leaves no process behind. Ports are checked before
anything starts, so a port in use fails fast with its name instead of half a lab.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.errors import BadInput, LabError
from chaos.lab import prometheus
from chaos.lab.logs import LOG_CAP_BYTES, CappedLog
from chaos.lab.ports import AUX_PORTS
from chaos.lab.provision import find_prometheus
from configfiles.errors import ConfigError
from services.architecture import Architecture, load_architecture
from services.config import LabConfig, load_lab_config

PROMETHEUS = "prometheus"
DASHBOARD = "dashboard"
LOADGEN = "loadgen"
STOP_GRACE_S = 5.0
LOCK_FILE = "lab.lock"  # in the data folder: held by the lab using it, with its pid
DEFAULT_SPAWN_PER_S = 10.0  # as the locustfile's --spawn-per-s
EXPECT_WORKERS_MAX_WAIT_S = 120.0  # a master waits this long for its workers from other hosts
LOCUSTFILE = Path(__file__).resolve().parents[2] / "loadtest" / "locustfile.py"
# The most users one load runs. Scenario files, --users, a scaled run and the Chaos Toolkit
# action are all held to it, so a typo or a large scale is refused before anything starts
# instead of swamping the machine with Locust users.
MAX_USERS = 10_000
# The longest a load asked for by hand runs (--load-duration, the Chaos Toolkit action): a day.
MAX_LOAD_S = 86_400.0


@dataclass(frozen=True)
class LoadOptions:
    """How to run the load generator (every field maps to a locustfile option)."""

    headless: bool = True
    peak_users: int = 30
    web_share: float = 0.4
    shape: str = "evening"
    duration_s: float = 360.0
    evening_s: float = 0.0  # the evening curve spans this much of duration_s (0: all of it)
    # Users started or stopped per second as the curve moves; a scaled run scales it too, or its
    # users would still be arriving (logging in, caches cold) long after the curve wants them.
    spawn_per_s: float = DEFAULT_SPAWN_PER_S
    workers: int = 0  # 0: one process; N: a master and N worker processes on this machine
    expect_workers: int = 0  # N: a master that waits for N workers from anywhere (failwhale serve loadgen-worker)
    extra: tuple[str, ...] = ()  # more locustfile options, e.g. ("--app-cache", "off")

    def __post_init__(self) -> None:
        # Every way of starting a load builds one of these: the last check before Locust starts.
        if isinstance(self.peak_users, bool) or not isinstance(self.peak_users, int):
            raise BadInput(f"the load's users must be a whole number, not {self.peak_users!r}")
        if not 1 <= self.peak_users <= MAX_USERS:
            raise BadInput(f"the load's users must be from 1 to {MAX_USERS:,}, not {self.peak_users:,}")

    def args(self) -> list[str]:
        return [
            "--peak-users",
            str(self.peak_users),
            "--web-share",
            str(self.web_share),
            "--shape",
            self.shape,
            "--duration",
            str(self.duration_s),
            "--spawn-per-s",
            f"{self.spawn_per_s:g}",
            *(("--evening", str(self.evening_s)) if self.evening_s else ()),
            *self.extra,
        ]


def die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


# Linux sends the parent-death signal when the *thread* that forked the child ends, not the
# process: a child forked on a worker thread (a Chaos Toolkit background activity, a pool that
# restarts a process) would be stopped the moment that thread finished. So children are forked
# on the main thread, or on this one thread, which lives as long as the process.
_FORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="failwhale-fork")


def spawn(cmd: list[str], **popen: Any) -> subprocess.Popen:
    """``subprocess.Popen(cmd, preexec_fn=die_with_parent, **popen)``, from a thread that lives as
    long as this process: the child dies with the process, not with the thread that asked."""

    def fork() -> subprocess.Popen:
        return subprocess.Popen(cmd, preexec_fn=die_with_parent, **popen)

    if threading.current_thread() is threading.main_thread():
        return fork()
    return _FORKER.submit(fork).result()


@dataclass
class Proc:
    name: str
    kind: str
    cmd: list[str]
    ready_url: str
    log_path: Path
    popen: subprocess.Popen | None = None
    log: CappedLog | None = None

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def process(self) -> subprocess.Popen:
        """Its OS process; a LabError for one this lab never started."""
        if self.popen is None:
            raise LabError(f"{self.name} was never started")
        return self.popen

    def last_log_line(self) -> str:
        try:
            lines = [ln for ln in self.log_path.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return ""
        errors = [ln for ln in lines if ln.startswith("error:")]
        return (errors or lines or [""])[-1]


@dataclass
class Lab:
    """The processes of one lab. Use as a context manager, or call start()/stop()."""

    lab: LabConfig
    arch: Architecture
    prometheus_bin: Path | None = None
    procs: dict[str, Proc] = field(default_factory=dict)
    say: Callable[[str], None] = lambda _msg: None
    log_cap_bytes: int = LOG_CAP_BYTES  # per log file; each process keeps one older file beside it
    _lock_fd: int | None = field(default=None, repr=False)

    @classmethod
    def from_files(cls, lab_config: Path | None = None, architecture: Path | None = None, **kw) -> Lab:
        try:
            lab = load_lab_config(lab_config) if lab_config else load_lab_config()
            arch = load_architecture(architecture or lab.architecture_path)
        except ConfigError as e:
            raise BadInput(str(e)) from e
        return cls(lab, arch, **kw)

    # ---- planning -------------------------------------------------------------------------

    def plan(self, arch_file: Path | None = None, with_prometheus: bool = True) -> None:
        """Every process's command line and readiness URL, none started; services start from
        ``arch_file`` (default: the copy of ``self.arch`` start() writes to the data folder).
        ``with_prometheus=False`` leaves Prometheus out: a host that runs only services needs no binary."""
        missing = [n for n in [*self.arch.instance_kinds(), PROMETHEUS] if n not in self.lab.ports]
        if missing:
            where = self.lab.source or "lab config"
            raise BadInput(f"{where}: ports: no port for {', '.join(missing)}")
        logs = self.lab.data_path / "logs"
        py = sys.executable
        cfg_args = ["--lab-config", str(self.lab.source)] if self.lab.source else []
        arch_file = arch_file or self.lab.data_path / "architecture.json"
        for name, kind in self.arch.instance_kinds().items():
            self.procs[name] = Proc(
                name,
                kind,
                [py, "-m", "services", "--instance", name, *cfg_args, "--architecture", str(arch_file)],
                f"{self.lab.url(name)}/readyz",
                logs / f"{name}.log",
            )
        if with_prometheus:
            self._plan_prometheus()
        self._plan_dashboard(cfg_args)

    def _plan_prometheus(self) -> None:
        binary = self.prometheus_bin or find_prometheus()
        if binary is None:
            raise LabError("Prometheus not found: run `make setup` (or `failwhale setup`), or set PROMETHEUS_BIN")
        prom_dir = self.lab.data_path / "prometheus"
        self.procs[PROMETHEUS] = Proc(
            PROMETHEUS,
            PROMETHEUS,
            prometheus.command(
                binary,
                prom_dir / "prometheus.yml",
                prom_dir / "data",
                self.lab.listen_host(PROMETHEUS),
                self.lab.port(PROMETHEUS),
            ),
            f"{self.lab.url(PROMETHEUS)}/-/ready",
            self.lab.data_path / "logs" / f"{PROMETHEUS}.log",
        )

    def _plan_dashboard(self, cfg_args: list[str]) -> None:
        if DASHBOARD in self.lab.ports:
            self.procs[DASHBOARD] = Proc(
                DASHBOARD,
                DASHBOARD,
                [sys.executable, "-m", "dashboards", *cfg_args],
                f"{self.lab.url(DASHBOARD)}/readyz",
                self.lab.data_path / "logs" / f"{DASHBOARD}.log",
            )

    def check_ports(self) -> None:
        """Fail with the port's owner named if anything already listens on a lab port."""
        names = [*self.procs, *[n for n in AUX_PORTS if n in self.lab.ports and n not in self.procs]]
        for name in names:
            check_port(self.lab, name)

    def _prepare_files(self) -> None:
        data = self.lab.data_path
        (data / "logs").mkdir(parents=True, exist_ok=True)
        # A new token every start: whoever can read this file may drive the control plane.
        write_private(self.lab.token_path, secrets.token_urlsafe(32) + "\n")
        # Children start from exactly the architecture this supervisor validated.
        (data / "architecture.json").write_text(self.arch.model_dump_json(indent=1), encoding="utf-8")
        prom_dir = data / "prometheus"
        # Metrics are per lab session; runs keep what they need in their own run folders.
        shutil.rmtree(prom_dir / "data", ignore_errors=True)
        prometheus.write_config(prom_dir / "prometheus.yml", self.lab, self.arch)

    # ---- running --------------------------------------------------------------------------

    def lock_data_dir(self) -> None:
        """Hold the data folder for this lab: two labs on one folder would overwrite each other's
        control token, architecture record and Prometheus data."""
        data = self.lab.data_path
        data.mkdir(parents=True, exist_ok=True)
        fd = os.open(data / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise BadInput(
                f"{data}: another lab uses this data folder (pid {holder}): stop it, or give this lab "
                "its own data_dir in its lab config"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def unlock_data_dir(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)  # closing releases the lock

    def start(self, timeout_s: float = 15.0) -> float:
        """Start every process and wait until all are ready; returns the seconds it took."""
        t0 = time.monotonic()
        self.plan()
        self.check_ports()
        self.lock_data_dir()
        self._prepare_files()
        self.say(f"starting {len(self.procs)} processes (logs in {self.lab.data_path / 'logs'})")
        try:
            for proc in self.procs.values():
                self._spawn(proc)
            self.wait_ready(timeout_s - (time.monotonic() - t0))
        except BaseException:
            self.stop()
            raise
        return time.monotonic() - t0

    def _spawn(self, proc: Proc) -> None:
        popen = proc.popen = spawn(
            proc.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=os.getcwd()
        )
        assert popen.stdout is not None  # stdout=PIPE
        proc.log = CappedLog(proc.log_path, self.log_cap_bytes)
        proc.log.attach(popen.stdout)

    def wait_ready(self, timeout_s: float, names: list[str] | None = None) -> None:
        pending = list(names or self.procs)
        deadline = time.monotonic() + max(timeout_s, 0.5)
        while pending:
            for name in list(pending):
                proc = self.procs[name]
                if not proc.running:
                    code = proc.popen.returncode if proc.popen else "?"
                    detail = proc.last_log_line() or f"exit code {code}"
                    raise LabError(f"{name} exited while starting ({detail}); log: {proc.log_path}")
                if _is_ready(proc.ready_url):
                    pending.remove(name)
            if pending and time.monotonic() > deadline:
                raise LabError(
                    f"not ready after {timeout_s:.0f}s: {', '.join(pending)} (see {self.lab.data_path / 'logs'})"
                )
            if pending:
                time.sleep(0.1)

    # ---- load -----------------------------------------------------------------------------

    def start_load(self, opts: LoadOptions, run_dir: Path | None = None) -> Proc:
        """Start Locust against this lab; it stops by itself after ``opts.duration_s``."""
        if LOADGEN in self.procs and self.procs[LOADGEN].running:
            raise LabError("the load generator is already running")
        run_dir = run_dir or self.lab.data_path / "load"
        cmd = load_command(self.lab, opts, run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        if not opts.headless:
            new_ui_secret(self.lab)
        proc = Proc(LOADGEN, LOADGEN, cmd, "", self.lab.data_path / "logs" / f"{LOADGEN}.log")
        self.procs[LOADGEN] = proc
        self._spawn(proc)
        return proc

    @property
    def ui_secret_path(self) -> Path:
        """The password of Locust's web UI (user ``failwhale``), when the load runs with its UI."""
        return ui_secret_path(self.lab)

    def wait_load(self, timeout_s: float) -> int:
        """Wait for the load generator to finish; its exit code (Locust: 1 if any request failed)."""
        proc = self.procs[LOADGEN]
        try:
            code = proc.process().wait(timeout_s)
        except subprocess.TimeoutExpired as e:
            self.stop_instance(LOADGEN)
            raise LabError(f"the load generator did not stop within {timeout_s:.0f}s; log: {proc.log_path}") from e
        if proc.log is not None:
            proc.log.join()  # Locust's summary, the last thing it prints, is on disk
        return code

    def stop_instance(self, name: str, sig: int = signal.SIGTERM) -> None:
        """Stop one process (the chaos engine's kill; tests' "backend down")."""
        proc = self.procs[name]
        if proc.running:
            popen = proc.process()
            popen.send_signal(sig)
            try:
                popen.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()
            if proc.log is not None:
                proc.log.join()

    def start_instance(self, name: str, timeout_s: float = 10.0) -> None:
        proc = self.procs[name]
        if not proc.running:
            self._spawn(proc)
            self.wait_ready(timeout_s, [name])

    def dead(self) -> list[str]:
        """Lab processes that have exited on their own (the load generator ends by design)."""
        return [
            p.name
            for p in self.procs.values()
            if p.name != LOADGEN and p.popen is not None and p.popen.poll() is not None
        ]

    def stop(self) -> int:
        """Stop every process this lab started; returns how many were running."""
        running = [p for p in self.procs.values() if p.running]
        for p in running:
            p.process().terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for p in running:
            popen = p.process()
            try:
                popen.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()
        for p in running:
            if p.log is not None:
                p.log.join()  # its last lines on disk before anyone reads the log
        self.unlock_data_dir()
        return len(running)

    def __enter__(self) -> Lab:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- addresses ------------------------------------------------------------------------

    def url(self, name: str) -> str:
        return self.lab.url(name)


def try_listen(host: str, port: int) -> None:
    """Bind ``host:port`` and let go at once; the OSError when this machine cannot listen there."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))


def check_port(lab: LabConfig, name: str) -> None:
    """A BadInput naming the process, address and cause when ``name`` could not listen where the config says."""
    port, host = lab.port(name), lab.listen_host(name)
    where = lab.source or "the lab config"
    try:
        try_listen(host, port)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise BadInput(
                f"port {port} ({name}) is already in use on {host}: stop what uses it or change ports.{name} in {where}"
            ) from e
        raise BadInput(
            f"{name} cannot listen on {host}:{port} here ({e.strerror or e}): is {host} an address "
            f"of this machine? (`failwhale serve {name}` runs it where it is; see {where})"
        ) from e


def ui_secret_path(lab: LabConfig) -> Path:
    """The password of Locust's web UI (user ``failwhale``), when the load runs with its UI."""
    return lab.data_path / "locust-ui.secret"


def load_ports(opts: LoadOptions) -> list[str]:
    """The lab config's port names the load listens on with ``opts``."""
    master = ["locust-master"] if opts.workers or opts.expect_workers else []
    return ["loadgen-metrics", *master, *([] if opts.headless else ["locust"])]


def new_ui_secret(lab: LabConfig) -> Path:
    """A new password for Locust's web UI: it retargets the load on a plain form POST."""
    return write_private(ui_secret_path(lab), secrets.token_urlsafe(18) + "\n")


def load_command(lab: LabConfig, opts: LoadOptions, run_dir: Path) -> list[str]:
    """Locust's command line for ``opts`` against ``lab``: one process, a master with local worker
    processes, or a master waiting for ``opts.expect_workers`` workers from other hosts."""
    if opts.workers and opts.expect_workers:
        raise BadInput(
            "--load-workers and --expect-workers: choose one (worker processes on this machine, or workers "
            "that join from other hosts)"
        )
    with_master = bool(opts.workers or opts.expect_workers)
    if missing := [n for n in load_ports(opts) if n not in lab.ports]:
        raise BadInput(f"{lab.source or 'lab config'}: ports: no port for {', '.join(missing)}")
    cmd = [
        *locust_base(lab, run_dir),
        "--metrics-port",
        str(lab.port("loadgen-metrics")),
        "--metrics-host",
        lab.listen_host("loadgen-metrics"),
        "--csv",
        str(run_dir / "locust"),
        # The locustfile quits by itself shortly after the shape ends (--hard-stop).
        "--stop-timeout",
        "5",
        *opts.args(),
    ]
    if opts.headless:
        cmd += ["--headless", "--only-summary"]
    else:
        cmd += [
            "--web-host",
            lab.listen_host("locust"),
            "--web-port",
            str(lab.port("locust")),
            "--autostart",
            "--ui-secret-file",
            str(ui_secret_path(lab)),
        ]
    if opts.workers:
        # Locust's forked workers find their master where the config puts it (Locust's own
        # default would bind every interface).
        cmd += ["--processes", str(opts.workers), "--master-host", lab.host_of("locust-master")]
    if opts.expect_workers:
        cmd += [
            "--master",
            "--expect-workers",
            str(opts.expect_workers),
            # Bounded: a master whose workers never come gives up instead of waiting forever.
            "--expect-workers-max-wait",
            f"{EXPECT_WORKERS_MAX_WAIT_S:g}",
        ]
    if with_master:
        cmd += [
            "--master-bind-host",
            lab.listen_host("locust-master"),
            "--master-bind-port",
            str(lab.port("locust-master")),
            "--master-port",
            str(lab.port("locust-master")),
        ]
    return cmd


def worker_command(lab: LabConfig, run_dir: Path) -> list[str]:
    """A Locust worker for the lab's master (``locust-master`` in the lab config), wherever it runs.
    The master sends the load's options when the load starts; only what a worker needs before
    then (where the site and API are, where its ledger goes) is given here."""
    if "locust-master" not in lab.ports:
        raise BadInput(f"{lab.source or 'lab config'}: ports: no port for locust-master")
    return [
        *locust_base(lab, run_dir),
        "--worker",
        "--master-host",
        lab.host_of("locust-master"),
        "--master-port",
        str(lab.port("locust-master")),
    ]


def locust_base(lab: LabConfig, run_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--site-url",
        lab.url("web"),
        "--api-url",
        lab.url("edge"),
        "--ledger-dir",
        str(run_dir / "ledger"),
    ]


def write_private(path: Path, text: str) -> Path:
    """Write a file only its owner can read (0600 from the start, never readable in between);
    a file already there is replaced, not reused with its old permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def _is_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=0.5) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False
