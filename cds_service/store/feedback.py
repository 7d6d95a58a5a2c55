"""The store on one machine: a SQLite file in WAL mode, shared by the gunicorn workers and
kept across restarts (the embedded default: `make run` needs nothing but Python)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .sql import ADDED_COLUMNS, SCHEMA, SqlStore, StoreUnavailable, normalise_timestamp
from .sqlite import BUSY_TIMEOUT_SECONDS, connect, prepare

__all__ = ["SqliteStore", "normalise_timestamp"]


class SqliteStore(SqlStore):
    """Each thread keeps its connection open: with WAL, closing the last connection
    checkpoints the file (an fsync), which a connection per request would pay every time."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)
        self._local = threading.local()
        prepare(self.path, ";\n".join(SCHEMA).format(serial="INTEGER") + ";")
        self._add_columns()

    def _add_columns(self) -> None:
        """A store made by an earlier version gets the columns added since."""
        with connect(self.path) as connection:
            for table, column, kind in ADDED_COLUMNS:
                present = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
                if column not in present:
                    with contextlib.suppress(sqlite3.OperationalError):  # another worker did
                        connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def _kept(self) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():  # none yet, or inherited across fork
            local.connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS)
            local.pid = os.getpid()
        return local.connection

    @contextmanager
    def _connection(self, durable: bool = True) -> Iterator[Any]:
        try:
            connection = self._kept()
            connection.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            with connection:  # one transaction
                yield connection
        except sqlite3.OperationalError as error:
            self._local.pid = None  # start afresh next time
            raise StoreUnavailable(f"SQLite: {error}") from None

    def ping(self) -> None:
        """A fresh connection: readiness checks the file that is there now."""
        try:
            with connect(self.path) as connection:
                connection.execute("SELECT 1 FROM feedback LIMIT 1").fetchall()
        except sqlite3.OperationalError as error:
            raise StoreUnavailable(f"SQLite: {error}") from None
