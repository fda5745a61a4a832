"""The lost-tweets check: measured where the tweets databases and the load's ledger can be read,
said to be unmeasured where they cannot (a lab spread over machines), never a silent zero."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import SimpleNamespace

from chaos import measure
from chaos.engine.verdicts import lost_tweets
from loadtest.ledger import Ledger
from services.architecture import load_architecture
from services.tweets.store import SCHEMA, db_path
from tests.conftest import V1


def a_run(tmp_path: Path, attach: bool) -> SimpleNamespace:
    lab = SimpleNamespace(lab=SimpleNamespace(data_path=tmp_path / "data"), arch=load_architecture(V1))
    return SimpleNamespace(lab=lab, attach=attach, run_dir=tmp_path / "run")


def store(data: Path, ids: list[int]) -> None:
    data.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(db_path(data, "tweets")) as db:
        db.executescript(SCHEMA)
        db.executemany("INSERT INTO tweets (id, user, text, created_at) VALUES (?, 'u', 't', 0)", [(i,) for i in ids])


def ledger(folder: Path, ids: list[int]) -> None:
    written = Ledger(folder)  # as the load writes it
    for i in ids:
        written.acked({"id": i, "user": "u"})
    written.close()


def test_an_acknowledged_tweet_no_database_holds_is_lost(tmp_path):
    run = a_run(tmp_path, attach=False)
    store(run.lab.lab.data_path, [1, 2])
    ledger(run.run_dir / "ledger", [1, 2, 3])
    assert lost_tweets(run) == (3, 1)


def test_without_the_tweets_database_here_nothing_is_claimed(tmp_path):
    run = a_run(tmp_path, attach=True)
    ledger(run.lab.lab.data_path / "load" / "ledger", [1, 2])
    assert lost_tweets(run) == (2, None)
    assert measure.measure(SimpleNamespace(), "lost_tweets", None) is None  # no figure is read


def test_an_attached_run_without_the_loads_ledger_here_claims_nothing(tmp_path):
    run = a_run(tmp_path, attach=True)
    store(run.lab.lab.data_path, [1, 2])
    assert lost_tweets(run) == (0, None)
    ledger(run.lab.lab.data_path / "load" / "ledger", [1])
    assert lost_tweets(run) == (1, 0)
