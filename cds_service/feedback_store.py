"""Durable, idempotent storage of card feedback in SQLite.

WAL mode lets several gunicorn workers write to one file. The same feedback item
(card, outcome, timestamp) stored twice is one row. Nothing here ever sees a token.

Feedback names only a card's uuid, so the cards the service issues are recorded too (uuid,
service, kind, category: never patient data), so that `cds-feedback-report` can say which
kinds of card clinicians accept or override, and why.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .sqlite_db import connect, prepare

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY,
    service_id TEXT NOT NULL,
    card_uuid TEXT NOT NULL,
    outcome TEXT NOT NULL,
    outcome_timestamp TEXT NOT NULL,
    accepted_suggestions TEXT,
    override_reason TEXT,
    received_at TEXT NOT NULL,
    UNIQUE (service_id, card_uuid, outcome, outcome_timestamp)
);
CREATE TABLE IF NOT EXISTS issued_card (
    card_uuid TEXT PRIMARY KEY,
    service_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    category TEXT,
    issued_at TEXT NOT NULL
);
"""


class FeedbackStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        prepare(self.path, _SCHEMA)

    def store(self, service_id: str, items: list[dict[str, Any]]) -> tuple[int, int]:
        """Store feedback items; return (newly stored, already present)."""
        received_at = datetime.now(UTC).isoformat(timespec="seconds")
        rows = [
            (
                service_id,
                _card_uuid(item["card"]),
                item["outcome"],
                normalise_timestamp(item["outcomeTimestamp"]),
                _json_or_none(item.get("acceptedSuggestions")),
                _json_or_none(item.get("overrideReason")),
                received_at,
            )
            for item in items
        ]
        with connect(self.path) as connection:
            before = connection.total_changes
            connection.executemany(
                "INSERT OR IGNORE INTO feedback (service_id, card_uuid, outcome, "
                "outcome_timestamp, accepted_suggestions, override_reason, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            stored = connection.total_changes - before
        return stored, len(rows) - stored

    def record_cards(self, service_id: str, cards: list[tuple[str, str, str | None]]) -> None:
        """Remember issued cards: (uuid, kind, category or None)."""
        issued_at = datetime.now(UTC).isoformat(timespec="seconds")
        with connect(self.path) as connection:
            connection.executemany(
                "INSERT OR IGNORE INTO issued_card (card_uuid, service_id, kind, category, "
                "issued_at) VALUES (?, ?, ?, ?, ?)",
                [(_card_uuid(u), service_id, kind, cat, issued_at) for u, kind, cat in cards],
            )

    def ping(self) -> None:
        """Raises when the store cannot be read (for readiness)."""
        with connect(self.path) as connection:
            connection.execute("SELECT 1 FROM feedback LIMIT 1").fetchall()

    def outcomes(self, since: str | None = None) -> list[dict[str, Any]]:
        """Every feedback item joined to the card it is about (kind and category are None
        for a card this store never issued)."""
        query = (
            "SELECT f.service_id, i.kind, i.category, f.outcome, f.override_reason, "
            "f.outcome_timestamp FROM feedback f "
            "LEFT JOIN issued_card i ON i.card_uuid = f.card_uuid"
        )
        parameters: tuple[str, ...] = ()
        if since:
            query += " WHERE f.outcome_timestamp >= ?"
            parameters = (since,)
        with connect(self.path) as connection:
            connection.row_factory = sqlite3.Row
            rows = connection.execute(query + " ORDER BY f.id", parameters).fetchall()
        return [
            {
                "service": row["service_id"],
                "kind": row["kind"],
                "category": row["category"],
                "outcome": row["outcome"],
                "overrideReason": json.loads(row["override_reason"])
                if row["override_reason"]
                else None,
            }
            for row in rows
        ]

    def all(self) -> list[dict[str, Any]]:
        with connect(self.path) as connection:
            connection.row_factory = sqlite3.Row
            rows = connection.execute(
                "SELECT service_id, card_uuid, outcome, outcome_timestamp, "
                "accepted_suggestions, override_reason FROM feedback ORDER BY id"
            ).fetchall()
        return [
            {
                "serviceId": row["service_id"],
                "card": row["card_uuid"],
                "outcome": row["outcome"],
                "outcomeTimestamp": row["outcome_timestamp"],
                **(
                    {"acceptedSuggestions": json.loads(row["accepted_suggestions"])}
                    if row["accepted_suggestions"]
                    else {}
                ),
                **(
                    {"overrideReason": json.loads(row["override_reason"])}
                    if row["override_reason"]
                    else {}
                ),
            }
            for row in rows
        ]


def _card_uuid(card: str) -> str:
    return card.lower().removeprefix("urn:uuid:")


def _json_or_none(value: Any) -> str | None:
    return json.dumps(value, sort_keys=True, default=str) if value else None


def normalise_timestamp(text: str) -> str:
    """One spelling per instant, so '...Z' and '...+00:00' are the same feedback.

    Raises ValueError for a date that does not exist, or whose UTC instant falls outside
    the calendar (9999-12-31T23:59:59-23:59); the schema checks only the shape.
    """
    moment = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    try:
        return moment.astimezone(UTC).isoformat(timespec="microseconds")
    except OverflowError:
        raise ValueError("outside the calendar in UTC") from None
