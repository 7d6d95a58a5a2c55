"""One SQLite file for what must survive restarts and be shared by gunicorn workers."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_BUSY_TIMEOUT_SECONDS = 10


def prepare(path: Path, schema: str) -> None:
    """Create the folder, switch the file to WAL (several writers) and create tables."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with connect(path) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.executescript(schema)


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    """A short-lived connection in one transaction: cheap for SQLite and thread-safe."""
    connection = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_SECONDS)
    try:
        with connection:
            yield connection
    finally:
        connection.close()
