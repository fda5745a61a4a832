"""Find or install the external programs the lab needs: Prometheus (with promtool), Chromium, wrk.

Order of preference for Prometheus: ``PROMETHEUS_BIN``; ``prometheus`` on PATH; a copy this
module downloaded before; then install it: Debian/Ubuntu's package when running as root,
Homebrew on macOS, else the official release tarball for this OS and CPU, checked against its
published SHA-256 and unpacked into a cache folder. Every step says what it did.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path

from chaos.errors import SetupError

PROMETHEUS_VERSION = "2.53.2"  # used only when downloading the official release
RELEASES = "https://github.com/prometheus/prometheus/releases/download"
CACHE_DIR = Path(os.environ.get("FAILWHALE_CACHE", Path.home() / ".cache" / "failwhale"))

Say = Callable[[str], None]


def _is_debian_root() -> bool:
    return (
        platform.system() == "Linux"
        and Path("/etc/debian_version").exists()
        and hasattr(os, "geteuid")
        and os.geteuid() == 0
        and shutil.which("apt-get") is not None
    )


def _apt_install(packages: list[str], say: Say) -> None:
    say(f"installing Debian package(s) {' '.join(packages)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
        # A fresh machine has no package lists yet.
        subprocess.run(["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        result = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise SetupError(f"apt-get install {' '.join(packages)} failed: {tail}")


def _cached_prometheus() -> Path | None:
    for candidate in sorted(CACHE_DIR.glob("prometheus-*/prometheus"), reverse=True):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def find_prometheus() -> Path | None:
    """The Prometheus binary to use, or None when there is none yet."""
    env = os.environ.get("PROMETHEUS_BIN")
    if env:
        path = Path(env)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise SetupError(f"PROMETHEUS_BIN={env} is not an executable file")
        return path
    on_path = shutil.which("prometheus")
    if on_path:
        return Path(on_path)
    return _cached_prometheus()


def find_promtool() -> Path | None:
    prom = find_prometheus()
    if prom is not None and (prom.parent / "promtool").exists():
        return prom.parent / "promtool"
    found = shutil.which("promtool")
    return Path(found) if found else None


def prometheus_version(binary: Path) -> str:
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=10)
    first = (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else ""
    parts = first.split()
    return parts[2] if len(parts) > 2 and parts[1] == "version" else "unknown version"


def _release_target() -> tuple[str, str]:
    system = platform.system().lower()
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine)
    if system not in ("linux", "darwin") or arch is None:
        raise SetupError(f"no Prometheus release for {system}/{machine}: install it yourself and set PROMETHEUS_BIN")
    return system, arch


def _download_prometheus(say: Say) -> Path:
    system, arch = _release_target()
    name = f"prometheus-{PROMETHEUS_VERSION}.{system}-{arch}"
    url = f"{RELEASES}/v{PROMETHEUS_VERSION}/{name}.tar.gz"
    say(f"downloading the official Prometheus {PROMETHEUS_VERSION} release for {system}/{arch}")
    try:
        sums = urllib.request.urlopen(f"{RELEASES}/v{PROMETHEUS_VERSION}/sha256sums.txt", timeout=30).read().decode()
        expected = next(line.split()[0] for line in sums.splitlines() if line.endswith(f"{name}.tar.gz"))
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / f"{name}.tar.gz"
            with urllib.request.urlopen(url, timeout=120) as resp, archive.open("wb") as out:
                shutil.copyfileobj(resp, out)
            digest = hashlib.sha256(archive.read_bytes()).hexdigest()
            if digest != expected:
                raise SetupError(f"{url}: SHA-256 mismatch (got {digest[:12]}..., expected {expected[:12]}...)")
            CACHE_DIR.mkdir(parents=True, exist_ok=True)
            with tarfile.open(archive) as tar:
                tar.extractall(CACHE_DIR, filter="data")
    except (OSError, StopIteration) as e:
        raise SetupError(f"could not download Prometheus from {url}: {e}") from e
    binary = CACHE_DIR / name / "prometheus"
    binary.chmod(0o755)
    (CACHE_DIR / name / "promtool").chmod(0o755)
    return binary


def ensure_prometheus(say: Say = print) -> Path:
    """Return a usable Prometheus binary, installing one if needed, and say what was done."""
    found = find_prometheus()
    if found is not None:
        say(f"Prometheus: using {found} ({prometheus_version(found)})")
        return found
    if _is_debian_root():
        _apt_install(["prometheus"], say)
    elif platform.system() == "Darwin" and shutil.which("brew"):
        say("installing Prometheus with Homebrew")
        if subprocess.run(["brew", "install", "prometheus"]).returncode != 0:
            raise SetupError("brew install prometheus failed")
    else:
        _download_prometheus(say)
    found = find_prometheus()
    if found is None:
        raise SetupError("Prometheus is still not found after installing it; set PROMETHEUS_BIN")
    say(f"Prometheus: installed {found} ({prometheus_version(found)})")
    return found


BROWSER_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_browser() -> Path | None:
    env = os.environ.get("CHROMIUM_BIN")
    if env:
        return Path(env) if os.access(env, os.X_OK) else None
    for name in BROWSER_CANDIDATES:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def ensure_browser(say: Say = print) -> Path:
    """Chromium for the browser tests: the distribution's package (no browser downloads)."""
    found = find_browser()
    if found is None:
        if not _is_debian_root():
            raise SetupError("Chromium not found: install your distribution's chromium, or set CHROMIUM_BIN")
        _apt_install(["chromium"], say)
        found = find_browser()
        if found is None:
            raise SetupError("chromium is still not on PATH after apt-get install chromium")
        say(f"Chromium: installed {found}")
    else:
        say(f"Chromium: using {found}")
    return found


def ensure_wrk(say: Say = print) -> Path:
    """wrk drives the HTTP benchmarks from a separate, efficient process."""
    found = shutil.which("wrk")
    if found is None:
        if not _is_debian_root():
            raise SetupError("wrk not found: install it (Debian/Ubuntu: apt-get install wrk; macOS: brew install wrk)")
        _apt_install(["wrk"], say)
        found = shutil.which("wrk")
        if found is None:
            raise SetupError("wrk is still not on PATH after apt-get install wrk")
    say(f"wrk: using {found}")
    return Path(found)
