"""One lab per data folder: a second lab on the same folder is refused in one line, before it
touches the first one's token, architecture record or Prometheus data."""

from __future__ import annotations

import pytest

from chaos.errors import BadInput
from chaos.lab.ports import free_port_lab_config
from chaos.lab.supervisor import Lab
from services.architecture import load_architecture
from services.config import load_lab_config
from tests.conftest import V1


def lab_on(folder) -> Lab:
    cfg = load_lab_config(free_port_lab_config(folder, V1))
    return Lab(cfg, load_architecture(cfg.architecture_path))


def test_a_second_lab_on_the_same_data_folder_is_refused_until_the_first_stops(tmp_path):
    first, second = lab_on(tmp_path), lab_on(tmp_path)
    first.lock_data_dir()
    token = first.lab.token_path
    token.write_text("the first lab's token\n")
    with pytest.raises(BadInput) as info:
        second.lock_data_dir()
    message = str(info.value)
    assert "another lab uses this data folder" in message and "\n" not in message
    assert token.read_text() == "the first lab's token\n"
    first.stop()  # stopping releases the folder
    second.lock_data_dir()
    second.stop()
