"""Feedback: validated, stored durably in SQLite, idempotent, never storing tokens."""

from __future__ import annotations

import sqlite3
import uuid

import pytest

from cds_service.store.feedback import SqliteStore

FEEDBACK = "/cds-services/wm-igm-response/feedback"


def item(**overrides):
    body = {
        "card": str(uuid.uuid4()),
        "outcome": "overridden",
        "overrideReason": {
            "reason": {"system": "urn:wm-igm-cds:override-reason", "code": "data-incomplete"},
            "userComment": "IgM from outside lab",
        },
        "outcomeTimestamp": "2026-11-24T10:15:00Z",
    }
    body.update(overrides)
    return body


def test_feedback_is_stored_once_and_survives_a_restart(make_app, tmp_path):
    entry = item()
    accepted = item(
        outcome="accepted",
        acceptedSuggestions=[{"id": str(uuid.uuid4())}],
        outcomeTimestamp="2026-11-24T11:00:00+01:00",
    )
    accepted.pop("overrideReason")
    client = make_app().test_client()
    first = client.post(FEEDBACK, json={"feedback": [entry, accepted]})
    assert first.status_code == 200
    assert first.get_json() == {"stored": 2, "duplicates": 0}
    # The same feedback again, the timestamp spelled differently: still one row each.
    again = dict(entry, outcomeTimestamp="2026-11-24T10:15:00.000+00:00")
    second = client.post(
        FEEDBACK, json={"feedback": [again]}, headers={"Authorization": "Bearer jwt"}
    )
    assert second.get_json() == {"stored": 0, "duplicates": 1}

    restarted = make_app()  # a new app on the same SQLite file
    rows = SqliteStore(restarted.config["CDS_SETTINGS"].feedback_db).all()
    assert [row["card"] for row in rows] == [entry["card"], accepted["card"]]
    assert rows[0]["overrideReason"]["userComment"] == "IgM from outside lab"
    assert rows[1]["acceptedSuggestions"] == accepted["acceptedSuggestions"]


def test_feedback_database_never_holds_tokens(make_app, tmp_path):
    client = make_app().test_client()
    client.post(
        FEEDBACK, json={"feedback": [item()]}, headers={"Authorization": "Bearer SECRET-JWT"}
    )
    raw = (tmp_path / "feedback.sqlite3").read_bytes()
    assert b"SECRET-JWT" not in raw


def test_store_uses_wal_mode(tmp_path):
    store = SqliteStore(tmp_path / "f.sqlite3")
    with sqlite3.connect(store.path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "feedback"),
        ({"feedback": []}, "feedback"),
        ({"feedback": [item(outcome="maybe")]}, "outcome"),
        ({"feedback": [item(outcome="accepted")]}, "acceptedSuggestions"),
        ({"feedback": [item(card="not-a-uuid")]}, "card"),
        ({"feedback": [item(outcomeTimestamp="yesterday")]}, "outcomeTimestamp"),
        ({"feedback": [item(outcomeTimestamp="2026-02-30T10:00:00Z")]}, "outcomeTimestamp"),
        ({"feedback": [item(overrideReason={})]}, "overrideReason"),
    ],
)
def test_invalid_feedback_is_400_and_stores_nothing(make_app, body, field, tmp_path):
    client = make_app().test_client()
    response = client.post(FEEDBACK, json=body)
    assert response.status_code == 400
    assert field in response.get_json()["issue"][0]["diagnostics"]
    assert SqliteStore(tmp_path / "feedback.sqlite3").all() == []


def test_feedback_for_unknown_service_is_404(client):
    response = client.post("/cds-services/other/feedback", json={"feedback": [item()]})
    assert response.status_code == 404


def test_the_shared_secret_is_made_once_and_kept(tmp_path):
    from cds_service.store.feedback import SqliteStore

    path = tmp_path / "store.sqlite3"
    secret = SqliteStore(path).shared_secret("smart")
    assert len(secret) >= 32
    assert SqliteStore(path).shared_secret("smart") == secret  # another worker, a restart
