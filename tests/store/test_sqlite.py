"""The shared SQLite file: gunicorn workers start at the same moment and open it together."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

from cds_service.store.feedback import SqliteStore

WORKERS = 6


def _open_both(path: str, barrier, failures) -> None:
    barrier.wait()
    try:
        SqliteStore(Path(path))
        SqliteStore(Path(path))
    except Exception as error:  # reported to the test, which names it
        failures.put(f"{type(error).__name__}: {error}")


def test_workers_opening_a_new_database_at_once_all_start(tmp_path):
    # What a gunicorn start does: every worker prepares the same new file at the same time.
    context = multiprocessing.get_context("fork")
    failures = context.Queue()
    for attempt in range(8):
        path = tmp_path / f"fresh-{attempt}.sqlite3"
        barrier = context.Barrier(WORKERS)
        workers = [
            context.Process(target=_open_both, args=(str(path), barrier, failures))
            for _ in range(WORKERS)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        assert all(worker.exitcode == 0 for worker in workers)
        errors = []
        while not failures.empty():
            errors.append(failures.get())
        assert errors == [], f"attempt {attempt}: {errors}"
        with sqlite3.connect(path) as connection:
            assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        assert {"feedback", "seen_jti"} <= tables
