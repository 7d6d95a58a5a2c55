"""The store the configuration names: PostgreSQL for `CDS_DATABASE_URL=postgresql://…`
(several instances), else the SQLite file `CDS_FEEDBACK_DB` (one machine)."""

from __future__ import annotations

from ..config import Settings
from .feedback import SqliteStore
from .sql import SqlStore, StoreUnavailable

__all__ = ["SqlStore", "StoreUnavailable", "open_store"]


def open_store(settings: Settings) -> SqlStore:
    """Open (and create or migrate) the store; `StoreUnavailable` if it cannot be reached."""
    if settings.database_url:
        from .postgres import PostgresStore  # only deployments that use it import psycopg

        return PostgresStore(settings.database_url)
    return SqliteStore(settings.feedback_db)
