"""Size-capped logs for the lab's child processes.

Every child (services, Prometheus, the dashboard, Locust) writes to a pipe; one thread per child
copies the pipe into ``.lab/logs/<name>.log``. When that file would pass its cap, it becomes
``<name>.log.1`` (replacing the one before) and a new file starts. A lab left running for a
whole game day thus holds at most twice the cap per process on disk, and the newest lines are
always in ``<name>.log``.

The copy happens in the supervisor rather than in each child, so that one rule covers children
we do not write (Prometheus, Locust) and children that crash before their logging is set up.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import IO

LOG_CAP_BYTES = 20 * 1024 * 1024  # per file; one older file is kept beside it
CHUNK_BYTES = 64 * 1024


def older(path: Path) -> Path:
    """Where ``path`` goes when it reaches its cap."""
    return path.with_name(path.name + ".1")


class CappedLog:
    """Copies one child's output into its log file, starting a new file past ``cap`` bytes."""

    def __init__(self, path: Path, cap: int = LOG_CAP_BYTES) -> None:
        if cap < CHUNK_BYTES:
            raise ValueError(f"a log cap of {cap} bytes is below one read ({CHUNK_BYTES} bytes)")
        self.path, self.cap = path, cap
        self._thread: threading.Thread | None = None

    def attach(self, pipe: IO[bytes]) -> None:
        """Start copying ``pipe`` (a child's stdout) until the child closes it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._copy, args=(pipe,), name=f"log {self.path.name}", daemon=True)
        self._thread.start()

    def join(self, timeout_s: float = 1.0) -> None:
        """Wait until the child's last output is on disk (its pipe closed), at most ``timeout_s``."""
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _copy(self, pipe: IO[bytes]) -> None:
        fd = pipe.fileno()
        out: IO[bytes] | None = None
        size = 0
        try:
            out = self.path.open("ab")
            size = out.tell()
        except OSError:
            out = None
        try:
            while chunk := os.read(fd, CHUNK_BYTES):
                if out is None:
                    continue  # no log to write to: keep draining, or the child would block on a full pipe
                try:
                    if size and size + len(chunk) > self.cap:
                        out.close()
                        os.replace(self.path, older(self.path))
                        out = self.path.open("ab")
                        size = 0
                    out.write(chunk)
                    out.flush()  # readers (the supervisor's error lines, tail -f) see it at once
                    size += len(chunk)
                except OSError:  # disk full, folder removed: the child runs on without a log
                    out = None
        finally:
            if out is not None:
                out.close()
            pipe.close()
