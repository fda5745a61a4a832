"""A child of the lab dies with the process that started it, whichever thread started it: Linux
ties the parent-death signal to the forking thread, so a child forked on a worker thread (a Chaos
Toolkit background activity) would die as soon as that thread ended."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = """
import threading, time
from chaos.lab.supervisor import spawn
children = []
worker = threading.Thread(target=lambda: children.append(spawn(["sleep", "30"])))
worker.start()
worker.join()  # the thread that asked for the child is gone
time.sleep(1.0)
print(children[0].pid, children[0].poll(), flush=True)
"""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\\nState:\\tZ" not in state  # a zombie is dead, only not yet reaped


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_child_forked_for_a_worker_thread_outlives_the_thread_and_dies_with_the_process():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    pid_text, still_running = done.stdout.split()
    assert still_running == "None"  # running a second after its thread ended
    pid = int(pid_text)
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(pid):
        os.kill(pid, 9)
        raise AssertionError("the child outlived the process that started it")
