"""Feedback: validated, stored durably in SQLite, idempotent, never storing tokens."""

from __future__ import annotations

import sqlite3
import time
import uuid

import pytest

from cards.card_ids import new_card_uuid
from cds_service.store.feedback import SqliteStore

from ..builders import issued_cards, record_issued

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
    client = make_app().test_client()
    first_card, second_card = issued_cards(client, 2)
    entry = item(card=first_card)
    accepted = item(
        card=second_card,
        outcome="accepted",
        acceptedSuggestions=[{"id": str(uuid.uuid4())}],
        outcomeTimestamp="2026-11-24T11:00:00+01:00",
    )
    accepted.pop("overrideReason")
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
    (card,) = issued_cards(client, 1)
    response = client.post(
        FEEDBACK,
        json={"feedback": [item(card=card)]},
        headers={"Authorization": "Bearer SECRET-JWT"},
    )
    assert response.status_code == 200
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


# contract v3: feedback bound to its source ---------------------------------------------------


def test_feedback_about_a_card_this_service_did_not_issue_is_refused(make_app, tmp_path):
    client = make_app().test_client()
    response = client.post(FEEDBACK, json={"feedback": [item()]})  # a made-up card
    assert response.status_code == 400
    assert "feedback[0].card: not a card this service issued" in response.get_data(as_text=True)
    assert SqliteStore(tmp_path / "feedback.sqlite3").all() == []
    # a card of another service of this one is not this service's either
    (card,) = issued_cards(client, 1)
    other = client.post(
        "/cds-services/wm-anti-cd20-order-check/feedback", json={"feedback": [item(card=card)]}
    )
    assert other.status_code == 400


def test_a_card_takes_at_most_20_feedback_items(make_app):
    client = make_app().test_client()
    (card,) = issued_cards(client, 1)
    items = [item(card=card, outcomeTimestamp=f"2026-11-24T10:{n:02d}:00Z") for n in range(21)]
    assert client.post(FEEDBACK, json={"feedback": items[:20]}).status_code == 200
    refused = client.post(FEEDBACK, json={"feedback": items[20:]})
    assert refused.status_code == 429 and refused.headers["Retry-After"]


def test_an_issuer_sends_at_most_600_feedback_items_a_minute():
    from cds_service.hooks.service import MAX_FEEDBACK_PER_MINUTE, FeedbackLimited, PerMinute

    now = [1_000_020.0]
    limit = PerMinute(MAX_FEEDBACK_PER_MINUTE, clock=lambda: now[0])
    limit.take("https://ehr-a", 600)
    with pytest.raises(FeedbackLimited):
        limit.take("https://ehr-a", 1)
    limit.take("https://ehr-b", 600)  # each issuer has its own
    now[0] += 60
    limit.take("https://ehr-a", 600)  # the next minute


def test_feedback_past_the_issuers_limit_is_429(make_app):
    from cds_service.hooks.service import PerMinute

    app = make_app()
    app.extensions["wm_igm_service"]._feedback_rate = PerMinute(3)
    client = app.test_client()
    cards = record_issued(app.extensions["wm_igm_store"], 4)
    first = client.post(FEEDBACK, json={"feedback": [item(card=c) for c in cards[:3]]})
    assert first.status_code == 200
    refused = client.post(FEEDBACK, json={"feedback": [item(card=cards[3])]})
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "60"


def test_feedback_about_a_card_issued_moments_ago_and_not_yet_recorded_is_retried(
    make_app, tmp_path
):
    """Another worker writes its cards' records within CDS_CARD_RECORD_SECONDS: feedback
    that comes first is asked to retry (503, Retry-After), never refused and lost."""
    client = make_app().test_client()
    just_issued = new_card_uuid()  # as another worker's card, its record still to come
    response = client.post(FEEDBACK, json={"feedback": [item(card=just_issued)]})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert SqliteStore(tmp_path / "feedback.sqlite3").all() == []
    store = SqliteStore(tmp_path / "feedback.sqlite3")
    store.record_cards("wm-igm-response", [(just_issued, "response", "PR")], "")  # written
    response = client.post(FEEDBACK, json={"feedback": [item(card=just_issued)]})
    assert response.status_code == 200 and response.get_json()["stored"] == 1


def test_an_unrecorded_card_issued_long_ago_is_refused(make_app):
    client = make_app().test_client()
    old = new_card_uuid(now_ms=int((time.time() - 600) * 1000))
    response = client.post(FEEDBACK, json={"feedback": [item(card=old)]})
    assert response.status_code == 400
    assert "not a card this service issued" in response.get_data(as_text=True)
