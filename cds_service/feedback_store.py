"""The store on one machine: a SQLite file in WAL mode, shared by the gunicorn workers and
kept across restarts (the embedded default: `make run` needs nothing but Python)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .sql_store import SCHEMA, SqlStore, StoreUnavailable, normalise_timestamp
from .sqlite_db import connect, prepare

__all__ = ["SqliteStore", "normalise_timestamp"]


class SqliteStore(SqlStore):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)
        prepare(self.path, ";\n".join(SCHEMA).format(serial="INTEGER") + ";")

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        try:
            with connect(self.path) as connection:
                yield connection
        except sqlite3.OperationalError as error:
            raise StoreUnavailable(f"SQLite: {error}") from None
