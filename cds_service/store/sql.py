"""What the service remembers, in SQL: card feedback, the cards it issued, and used JWT ids.

One set of statements for both backends (SQLite on one machine, PostgreSQL for several
instances); a backend supplies only its connections and its placeholder style. Everything is
idempotent: the same feedback twice is one row, the same `jti` twice is a replay. Nothing
here ever sees a token or patient data.

A backend that cannot be reached raises `StoreUnavailable`: the web layer answers 503 (the
client retries) and never lets a token through without its replay check.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

# Used JWT ids are kept this long past their token's expiry (the verifier's clock leeway).
JTI_GRACE_SECONDS = 60
# Expired JWT ids are purged at most this often per process (an indexed delete), not on
# every request.
JTI_PURGE_EVERY_SECONDS = 60

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS feedback (
    id {serial} PRIMARY KEY,
    service_id TEXT NOT NULL,
    card_uuid TEXT NOT NULL,
    outcome TEXT NOT NULL,
    outcome_timestamp TEXT NOT NULL,
    accepted_suggestions TEXT,
    override_reason TEXT,
    received_at TEXT NOT NULL,
    UNIQUE (service_id, card_uuid, outcome, outcome_timestamp)
)""",
    """CREATE TABLE IF NOT EXISTS issued_card (
    card_uuid TEXT PRIMARY KEY,
    service_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    category TEXT,
    issued_at TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS seen_jti (
    iss TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires BIGINT NOT NULL,
    PRIMARY KEY (iss, jti)
)""",
    "CREATE INDEX IF NOT EXISTS seen_jti_expires ON seen_jti (expires)",
    """CREATE TABLE IF NOT EXISTS shared_secret (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
)""",
)
# Columns added after a table was first created, as (table, column, type): each backend adds
# the ones a store made by an earlier version lacks.
ADDED_COLUMNS = (
    # contract v3: feedback is accepted only from the issuer a card was issued to
    ("issued_card", "issuer", "TEXT"),
)
# A card issued with authentication off has no issuer.
NO_ISSUER = ""


class StoreUnavailable(Exception):
    """The store cannot be reached now; the message (for the log) says how it failed."""


def card_uuid(card: str) -> str:
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


class SqlStore:
    """The statements; subclasses provide `_connection()` and `placeholder`."""

    placeholder = "?"

    def __init__(self) -> None:
        self._purge_lock = threading.Lock()
        self._last_purge = 0.0

    def _connection(self, durable: bool = True) -> AbstractContextManager[Any]:
        """One transaction. `durable=False`: its commit need not wait for the disk (a crash
        may lose it, never corrupt anything): only for the record of issued cards, which
        serves the feedback report; feedback and used JWT ids are always durable."""
        raise NotImplementedError  # each backend connects its own way

    def _execute(self, connection: Any, query: str, parameters: tuple = ()) -> Any:
        return connection.execute(query.replace("?", self.placeholder), parameters)

    def _execute_many(self, connection: Any, query: str, rows: list[tuple]) -> None:
        statement = query.replace("?", self.placeholder)
        if hasattr(connection, "executemany"):  # sqlite3
            connection.executemany(statement, rows)
        else:  # psycopg: a cursor's executemany is pipelined (one round trip)
            with connection.cursor() as cursor:
                cursor.executemany(statement, rows)

    def store(self, service_id: str, items: list[dict[str, Any]]) -> tuple[int, int]:
        """Store feedback items in one transaction; return (newly stored, already present)."""
        received_at = datetime.now(UTC).isoformat(timespec="seconds")
        stored = 0
        with self._connection() as connection:
            for item in items:
                cursor = self._execute(
                    connection,
                    "INSERT INTO feedback (service_id, card_uuid, outcome, outcome_timestamp, "
                    "accepted_suggestions, override_reason, received_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (
                        service_id,
                        card_uuid(item["card"]),
                        item["outcome"],
                        normalise_timestamp(item["outcomeTimestamp"]),
                        _json_or_none(item.get("acceptedSuggestions")),
                        _json_or_none(item.get("overrideReason")),
                        received_at,
                    ),
                )
                stored += max(cursor.rowcount, 0)
        return stored, len(items) - stored

    def record_cards(
        self, service_id: str, cards: list[tuple[str, str, str | None]], issuer: str = NO_ISSUER
    ) -> None:
        """Remember issued cards: (uuid, kind, category or None), in one transaction, with
        the issuer they were issued to. One statement text whatever the number of cards, so
        the connection's statement cache holds one prepared statement, not one per batch."""
        if not cards:
            return
        issued_at = datetime.now(UTC).isoformat(timespec="seconds")
        rows = [
            (card_uuid(uuid), service_id, kind, category, issued_at, issuer)
            for uuid, kind, category in cards
        ]
        with self._connection(durable=False) as connection:
            self._execute_many(
                connection,
                "INSERT INTO issued_card (card_uuid, service_id, kind, category, issued_at, "
                "issuer) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                rows,
            )

    def feedback_standing(
        self, service_id: str, cards: list[str], issuer: str = NO_ISSUER
    ) -> tuple[list[str], dict[str, int], set[str]]:
        """For feedback about `cards`: those this service did not issue (for this service,
        to this issuer), how many feedback items each card already has, and which of the
        cards are not recorded at all (by any service, for any issuer)."""
        wanted = sorted({card_uuid(card) for card in cards})
        marks = ", ".join("?" for _ in wanted)
        with self._connection() as connection:
            recorded = self._execute(
                connection,
                f"SELECT card_uuid, service_id, COALESCE(issuer, '') FROM issued_card "
                f"WHERE card_uuid IN ({marks})",
                tuple(wanted),
            ).fetchall()
            counts = {
                row[0]: int(row[1])
                for row in self._execute(
                    connection,
                    f"SELECT card_uuid, count(*) FROM feedback WHERE card_uuid IN ({marks}) "
                    "AND service_id = ? GROUP BY card_uuid",
                    (*wanted, service_id),
                ).fetchall()
            }
        issued = {card for card, service, by in recorded if service == service_id and by == issuer}
        unrecorded = set(wanted) - {card for card, _, _ in recorded}
        return [card for card in wanted if card not in issued], counts, unrecorded

    def first_use(self, iss: str, jti: str, expires: int) -> bool:
        """True the first time this issuer's `jti` is seen (one statement, unique key)."""
        with self._connection() as connection:
            self._purge_expired(connection)
            cursor = self._execute(
                connection,
                "INSERT INTO seen_jti (iss, jti, expires) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (iss, jti, expires),
            )
            return cursor.rowcount == 1

    def _purge_expired(self, connection: Any) -> None:
        now = time.monotonic()
        with self._purge_lock:
            if now - self._last_purge < JTI_PURGE_EVERY_SECONDS:
                return
            self._last_purge = now
        cutoff = int(time.time()) - JTI_GRACE_SECONDS
        self._execute(connection, "DELETE FROM seen_jti WHERE expires < ?", (cutoff,))

    def shared_secret(self, name: str) -> str:
        """A random key made once for all instances on this store (the first to ask makes
        it; everyone reads the same), e.g. to sign the SMART app's launch state."""
        with self._connection() as connection:
            self._execute(
                connection,
                "INSERT INTO shared_secret (name, value) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (name, secrets.token_urlsafe(32)),
            )
            row = self._execute(
                connection, "SELECT value FROM shared_secret WHERE name = ?", (name,)
            ).fetchone()
        return row[0]

    def ping(self) -> None:
        """Raises `StoreUnavailable` when the store cannot be read (for readiness)."""
        with self._connection() as connection:
            self._execute(connection, "SELECT 1 FROM feedback LIMIT 1").fetchall()

    def outcomes(self, since: str | None = None) -> list[dict[str, Any]]:
        """Every feedback item joined to the card it is about (kind and category are None
        for a card this store never issued)."""
        query = (
            "SELECT f.service_id, i.kind, i.category, f.outcome, f.override_reason "
            "FROM feedback f LEFT JOIN issued_card i ON i.card_uuid = f.card_uuid"
        )
        parameters: tuple[str, ...] = ()
        if since:
            query += " WHERE f.outcome_timestamp >= ?"
            parameters = (since,)
        with self._connection() as connection:
            rows = self._execute(connection, query + " ORDER BY f.id", parameters).fetchall()
        return [
            {
                "service": service,
                "kind": kind,
                "category": category,
                "outcome": outcome,
                "overrideReason": json.loads(reason) if reason else None,
            }
            for service, kind, category, outcome, reason in rows
        ]

    def all(self) -> list[dict[str, Any]]:
        with self._connection() as connection:
            rows = self._execute(
                connection,
                "SELECT service_id, card_uuid, outcome, outcome_timestamp, "
                "accepted_suggestions, override_reason FROM feedback ORDER BY id",
            ).fetchall()
        return [
            {
                "serviceId": service,
                "card": card,
                "outcome": outcome,
                "outcomeTimestamp": timestamp,
                **({"acceptedSuggestions": json.loads(accepted)} if accepted else {}),
                **({"overrideReason": json.loads(reason)} if reason else {}),
            }
            for service, card, outcome, timestamp, accepted, reason in rows
        ]
