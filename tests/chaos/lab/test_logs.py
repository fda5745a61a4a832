"""A child that prints without end fills at most two files of the cap, with its newest lines kept."""

from __future__ import annotations

import subprocess
import sys

import pytest

from chaos.lab.logs import CHUNK_BYTES, CappedLog, older

CAP = 4 * CHUNK_BYTES

# Prints numbered lines, 10,000 of them (about 13 times the cap), then its last line.
CHATTY = "import sys\nfor i in range(10_000): print(f'line {i:05d} ' + 'x' * 90)\nprint('the end')\n"


def run_capped(path, code: str, cap: int = CAP) -> subprocess.CompletedProcess:
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    log = CappedLog(path, cap)
    log.attach(child.stdout)
    child.wait(30)
    log.join(5)
    return child


def test_a_chatty_child_keeps_two_files_under_the_cap_with_its_last_line(tmp_path):
    path = tmp_path / "logs" / "edge.log"
    assert run_capped(path, CHATTY).returncode == 0
    assert path.stat().st_size <= CAP
    assert older(path).stat().st_size <= CAP
    assert path.read_text().rstrip().endswith("the end")
    # Nothing lost between the two files: the older one ends where the current one begins.
    first_now = int(path.read_text().split()[1])
    last_before = int(older(path).read_text().splitlines()[-1].split()[1])
    assert first_now == last_before + 1


def test_a_quiet_child_appends_to_the_log_it_had(tmp_path):
    path = tmp_path / "auth.log"
    path.write_text("from the last start\n")
    run_capped(path, "print('started again')")
    assert path.read_text() == "from the last start\nstarted again\n"
    assert not older(path).exists()


def test_a_child_keeps_running_when_its_log_cannot_be_written(tmp_path):
    path = tmp_path / "web.log"
    path.mkdir()  # a folder where the file should be: every open fails, even as root
    child = run_capped(path, CHATTY)  # a megabyte: more than a pipe holds, so an undrained pipe would block it
    assert child.returncode == 0


def test_a_cap_below_one_read_is_refused(tmp_path):
    with pytest.raises(ValueError, match="below one read"):
        CappedLog(tmp_path / "x.log", CHUNK_BYTES - 1)
