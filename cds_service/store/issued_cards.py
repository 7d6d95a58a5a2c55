"""The record of issued cards (uuid, kind, category; no patient data), for the feedback report.

Best effort, as it always was: a store that cannot be reached loses these records with a
warning and never delays or fails a clinical answer. With `CDS_CARD_RECORD_SECONDS` above
zero (the default) a worker keeps the records of its requests and writes them together, in
one statement per service, with the first request that comes at least that many seconds
after the last write, or by a short-lived timer when no request comes (feedback is accepted
only for recorded cards, contract v3), and at the worker's exit: a statement per request
cost 4 % of a typical request on SQLite and 6 % on PostgreSQL. At zero they are written
with each request.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections import defaultdict

from .sql import NO_ISSUER, SqlStore, StoreUnavailable

Row = tuple[str, str, str | None]  # (card uuid, kind, category)


class IssuedCards:
    def __init__(self, store: SqlStore, interval_seconds: float) -> None:
        self._store = store
        self._interval = interval_seconds
        self._lock = threading.Lock()  # threaded workers add from several threads
        self._pending: list[tuple[str, str, Row]] = []  # (service, issuer, row)
        self._last_write = time.monotonic()
        self._exit_pid: int | None = None  # the process whose exit writes what is left
        self._timer: threading.Timer | None = None  # writes what waits when no request comes

    def add(self, service_id: str, cards: list[Row], issuer: str = NO_ISSUER) -> None:
        if not cards:
            return
        with self._lock:
            if self._exit_pid != os.getpid():  # first use in this (forked) worker
                self._exit_pid = os.getpid()
                self._pending = []  # anything inherited is the parent's to write
                atexit.register(_flush_at_exit, weakref.ref(self))
            self._pending.extend((service_id, issuer, row) for row in cards)
            due = time.monotonic() - self._last_write >= self._interval
            if not due and self._timer is None:
                # contract v3: feedback is accepted only for recorded cards, so what waits is
                # written within the interval even when no other request comes to this worker
                self._timer = threading.Timer(self._interval, self.flush)
                self._timer.daemon = True
                self._timer.start()
        if due:
            self.flush()

    def flush(self) -> None:
        """Write what is pending now (a due request, the worker's exit, tests)."""
        with self._lock:
            pending, self._pending = self._pending, []
            self._last_write = time.monotonic()
            timer, self._timer = self._timer, None
        if timer is not None and timer is not threading.current_thread():
            timer.cancel()
        by_service: dict[tuple[str, str], list[Row]] = defaultdict(list)
        for service_id, issuer, row in pending:
            by_service[service_id, issuer].append(row)
        for (service_id, issuer), rows in by_service.items():
            try:
                self._store.record_cards(service_id, rows, issuer)
            except StoreUnavailable as error:
                # The clinical answer never waits for the store: the feedback report will not
                # know these cards' kind (it counts them as "unknown").
                logging.getLogger("cds_service").warning("issued cards not recorded: %s", error)


def _flush_at_exit(recorder: weakref.ref[IssuedCards]) -> None:
    # Weak: the exit hook must not keep an app alive (tests build hundreds).
    alive = recorder()
    if alive is not None:
        alive.flush()
