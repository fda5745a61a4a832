"""Every acknowledged tweet is written down at once, one file per process."""

from __future__ import annotations

from loadtest.ledger import Ledger, read_ledger


def test_acked_tweets_are_readable_even_before_close(tmp_path):
    ledger = Ledger(tmp_path)
    ledger.acked({"id": 7, "user": "user0001"})
    ledger.acked({"id": 9, "user": "user0002"})
    assert read_ledger(tmp_path) == [7, 9]  # flushed: a killed load generator loses nothing
    ledger.close()


def test_no_folder_means_no_ledger(tmp_path):
    ledger = Ledger(None)
    ledger.acked({"id": 1})
    ledger.close()
    assert list(tmp_path.iterdir()) == []
