"""Files only their owner may read: the control token, a workshop's token and facilitator sheet."""

from __future__ import annotations

import stat

from chaos.lab.supervisor import write_private


def test_a_private_file_is_owner_only_even_when_it_replaces_a_readable_one(tmp_path):
    path = tmp_path / "workshop" / "sheet.md"
    path.parent.mkdir()
    path.write_text("old")
    path.chmod(0o644)
    assert write_private(path, "secret\n") == path
    assert path.read_text() == "secret\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_its_folder_is_made_when_missing(tmp_path):
    path = write_private(tmp_path / "a" / "b" / "token", "t")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
