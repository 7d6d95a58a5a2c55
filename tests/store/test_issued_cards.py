"""The record of issued cards: with each request, or in batches."""

from __future__ import annotations

import logging
import time

from cds_service.store.feedback import SqliteStore
from cds_service.store.issued_cards import IssuedCards
from cds_service.store.sql import StoreUnavailable


def issued(store: SqliteStore) -> set[str]:
    with store._connection() as connection:
        return {row[0] for row in connection.execute("SELECT card_uuid FROM issued_card")}


def _written(store: SqliteStore, cards: set[str], seconds: float = 30) -> bool:
    """Until `cards` are recorded (a loaded machine may run the timer late)."""
    deadline = time.monotonic() + seconds
    while issued(store) != cards and time.monotonic() < deadline:
        time.sleep(0.05)
    return issued(store) == cards


def test_with_the_request_when_the_interval_is_zero(tmp_path):
    store = SqliteStore(tmp_path / "s.sqlite3")
    IssuedCards(store, 0).add("svc", [("a1", "wm-igm-response", "PR")])
    assert issued(store) == {"a1"}


def test_in_batches_with_the_first_request_after_the_interval_and_at_a_flush(tmp_path):
    store = SqliteStore(tmp_path / "s.sqlite3")
    cards = IssuedCards(store, 0.3)
    cards.add("svc", [("b1", "wm-igm-response", "PR")])
    assert issued(store) == set()  # kept for the next write
    assert _written(store, {"b1"})  # no other request: the timer writes it
    time.sleep(0.4)
    # the first request after the interval writes at once, with its own cards
    cards.add("other", [("b2", "monitoring-due", None), ("b3", "hyperviscosity", None)])
    assert issued(store) == {"b1", "b2", "b3"}
    slow = IssuedCards(store, 60)
    slow.add("svc", [("c1", "wm-igm-response", "MR")])
    assert "c1" not in issued(store)
    slow.flush()  # what the worker's exit does
    assert "c1" in issued(store)


def test_what_waits_is_written_within_the_interval_without_another_request(tmp_path):
    # contract v3: feedback is accepted only for recorded cards; a quiet worker still writes
    store = SqliteStore(tmp_path / "s.sqlite3")
    cards = IssuedCards(store, 0.3)
    cards.add("svc", [("t1", "wm-igm-response", "PR")], "https://ehr.example.org")
    assert issued(store) == set()
    assert _written(store, {"t1"})
    unknown, _, _ = store.feedback_standing("svc", ["t1"], "https://ehr.example.org")
    assert unknown == []
    unknown, _, _ = store.feedback_standing("svc", ["t1"], "https://other-ehr.example.org")
    assert unknown == ["t1"]  # issued to another EHR


def test_a_store_that_cannot_be_reached_loses_the_records_with_a_warning(caplog, tmp_path):
    class Down(SqliteStore):
        def record_cards(self, service_id, cards, issuer=""):
            raise StoreUnavailable("connection refused")

    cards = IssuedCards(Down(tmp_path / "s.sqlite3"), 0)
    with caplog.at_level(logging.WARNING, logger="cds_service"):
        cards.add("svc", [("d1", "wm-igm-response", "PR")])  # no exception
    assert "issued cards not recorded" in caplog.text
