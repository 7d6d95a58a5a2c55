"""One SQLite file for what must survive restarts and be shared by gunicorn workers."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# contract v3: a locked store ends a request well inside an EHR's 10 s (503, nothing kept).
BUSY_TIMEOUT_SECONDS = 2
# Workers starting together may find the new file locked: preparing it is retried this long.
PREPARE_SECONDS = 10
_PREPARE_RETRY_SECONDS = 0.05
# Feedback and launch data are the service's own: owner-only folder and file.
FOLDER_MODE = 0o700
FILE_MODE = 0o600


def prepare(path: Path, schema: str) -> None:
    """Create the folder and the file (owner-only), switch the file to WAL (several
    writers) and create tables.

    gunicorn starts its workers together, and they prepare a new file at the same moment.
    SQLite answers "database is locked" at once, without waiting out the busy timeout, when
    two connections would otherwise deadlock upgrading their locks; both steps are
    idempotent, so they are retried until the busy timeout has passed.
    """
    if not path.parent.exists():
        path.parent.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    if not path.exists():
        # Created owner-only before SQLite opens it (SQLite gives its -wal and -shm files the
        # same permissions); an existing file keeps what its operator chose.
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE))
    deadline = time.monotonic() + PREPARE_SECONDS
    while True:
        try:
            with connect(path) as connection:
                connection.execute("PRAGMA journal_mode=WAL")
                connection.executescript(schema)
            return
        except sqlite3.OperationalError as error:
            busy = error.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
            if not busy or time.monotonic() > deadline:
                raise
            time.sleep(_PREPARE_RETRY_SECONDS)


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    """A short-lived connection in one transaction (preparing the file, readiness)."""
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS)
    try:
        with connection:
            yield connection
    finally:
        connection.close()
