"""The store for several instances: PostgreSQL, selected by `CDS_DATABASE_URL`.

Each worker process has its own connection pool, made after gunicorn forks (a pool made
before would share its sockets between processes). The schema is created, and later
migrated, by one process at a time under an advisory lock, idempotently, however many start
at once. Connections are checked before use, so the service recovers by itself when the
database comes back.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from .sql import ADDED_COLUMNS, SCHEMA, SqlStore, StoreUnavailable

# pg_advisory_lock key for schema changes: any fixed number, the same in every instance.
MIGRATION_LOCK = 0x574D_4947  # "WMIG"
CONNECT_TIMEOUT_SECONDS = 2
POOL_TIMEOUT_SECONDS = 2  # a request waits this long for a connection, then 503
POOL_SIZE = 4  # per worker process: gunicorn threads per worker
# contract v3: a slow or locked database ends a request well inside an EHR's 10 s (503, and
# nothing is recorded), never after it.
STATEMENT_TIMEOUT_MS = 2000
LOCK_TIMEOUT_MS = 1000
_TIMEOUTS = f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c lock_timeout={LOCK_TIMEOUT_MS}"


class PostgresStore(SqlStore):
    placeholder = "%s"

    def __init__(self, url: str, prepare: bool = True) -> None:
        super().__init__()
        self.url = url
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._pools: dict[bool, ConnectionPool] = {}  # durable or not -> this process's pool
        if prepare:
            self.prepare()

    def prepare(self) -> None:
        """Create the tables, once, under an advisory lock (several instances may start
        together). `StoreUnavailable` when the database cannot be reached."""
        try:
            with psycopg.connect(
                self.url, connect_timeout=CONNECT_TIMEOUT_SECONDS, autocommit=True
            ) as connection:
                connection.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
                try:
                    for statement in SCHEMA:
                        connection.execute(statement.format(serial="BIGSERIAL"))
                    for table, column, kind in ADDED_COLUMNS:
                        connection.execute(
                            f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}"
                        )
                finally:
                    connection.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
        except psycopg.Error as error:
            raise StoreUnavailable(f"PostgreSQL: {type(error).__name__}") from None

    def _pool_here(self, durable: bool) -> ConnectionPool:
        """This process's pools: transactional for durable writes; for the rest (issued-card
        records) autocommit connections whose commits do not wait for the disk, so one
        statement is one round trip."""
        with self._lock:
            if self._pid != os.getpid():
                self._pid, self._pools = os.getpid(), {}
            pool = self._pools.get(durable)
            if pool is None:
                options: dict[str, Any] = {"options": _TIMEOUTS}
                if not durable:
                    options["autocommit"] = True
                    options["options"] = f"{_TIMEOUTS} -c synchronous_commit=off"
                pool = ConnectionPool(
                    self.url,
                    min_size=1,
                    max_size=POOL_SIZE,
                    timeout=POOL_TIMEOUT_SECONDS,
                    # Durable writes check each connection first (a 503 otherwise after the
                    # database restarts); a failed issued-card record is only logged.
                    check=ConnectionPool.check_connection if durable else None,
                    kwargs={"connect_timeout": CONNECT_TIMEOUT_SECONDS, **options},
                    open=True,
                    name=f"cds-store-{self._pid}-{'durable' if durable else 'fast'}",
                )
                self._pools[durable] = pool
            return pool

    @contextmanager
    def _connection(self, durable: bool = True) -> Iterator[Any]:
        try:
            with self._pool_here(durable).connection() as connection:
                yield connection
        except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout) as error:
            # A pool that lost the database backs off before reconnecting: start afresh on
            # the next request instead, so the service recovers as soon as PostgreSQL does.
            self._discard_pools()
            raise StoreUnavailable(f"PostgreSQL: {type(error).__name__}") from None

    def _discard_pools(self) -> None:
        with self._lock:
            pools, self._pools = self._pools, {}
            here = self._pid == os.getpid()
        if here:
            for pool in pools.values():
                pool.close(timeout=0)

    def close(self) -> None:
        self._discard_pools()
