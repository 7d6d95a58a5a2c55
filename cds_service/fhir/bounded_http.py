"""Outbound HTTP with one overall deadline that really ends it.

Every call the service makes to another server (FHIR reads, SMART discovery and token
exchange, JWKS and JKU lists) goes through a `BoundedSession`. The deadline is enforced on
the sockets themselves: the session owns the connections it opens, and a watchdog shuts them
all down when the deadline passes, so a server that trickles bytes cannot hold a thread or a
socket past it. Answers are capped in bytes; redirects are never followed; nothing is taken
from the host's environment (no proxy, no netrc credentials).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_CHUNK_BYTES = 64 * 1024


TOO_SLOW = "too slow"  # the deadline ended it
TOO_LARGE = "too large"  # the answer passed its byte cap
UNREACHABLE = "unreachable"  # no connection, or it broke


class OutboundError(Exception):
    """The call did not give an answer: `kind` says why; the message (for the log) too."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind} ({detail})" if detail else kind)
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


class _Sockets:
    """The sockets one session opened; `shut` ends them all, now and from then on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._shut = False

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            if not self._shut:
                self._sockets.append(sock)
                return
        _shutdown(sock)

    def shut(self) -> None:
        with self._lock:
            self._shut = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    # shutdown() wakes a thread blocked in recv() on this socket; close() alone would not.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _tracked_pool(pool: type, connection: type, sockets: _Sockets) -> type:
    class TrackedConnection(connection):  # type: ignore[misc, valid-type]
        def connect(self) -> None:
            super().connect()
            sockets.add(self.sock)

    class TrackedPool(pool):  # type: ignore[misc, valid-type]
        ConnectionCls = TrackedConnection

    return TrackedPool


class _TrackedAdapter(HTTPAdapter):
    def __init__(self, sockets: _Sockets, pool_size: int) -> None:
        self._sockets = sockets
        super().__init__(pool_connections=2, pool_maxsize=pool_size, max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _tracked_pool(HTTPConnectionPool, HTTPConnection, self._sockets),
            "https": _tracked_pool(HTTPSConnectionPool, HTTPSConnection, self._sockets),
        }


class BoundedSession:
    """Calls that all end by `deadline` (monotonic seconds) or by `close()`."""

    def __init__(
        self, deadline_seconds: float, connect_timeout: float = 3.0, pool_size: int = 2
    ) -> None:
        self._connect_timeout = connect_timeout
        self.deadline = time.monotonic() + deadline_seconds
        self._sockets = _Sockets()
        self._session = requests.Session()
        self._session.trust_env = False  # no proxy or netrc credentials from the host
        adapter = _TrackedAdapter(self._sockets, pool_size)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._watchdog = threading.Timer(deadline_seconds, self._sockets.shut)
        self._watchdog.daemon = True
        self._watchdog.start()

    def __enter__(self) -> BoundedSession:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """End every connection this session opened; calls still running fail at once."""
        self._watchdog.cancel()
        self._sockets.shut()
        self._session.close()

    def call(
        self,
        method: str,
        url: str,
        max_bytes: int,
        headers: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
        deadline: float | None = None,
    ) -> Answer:
        """One request, its answer read whole (up to `max_bytes`) before the deadline.
        `url` must already have passed the caller's URL policy."""
        deadline = self.deadline if deadline is None else min(deadline, self.deadline)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise OutboundError(TOO_SLOW)
        try:
            with self._session.request(
                method,
                url,
                headers=headers,
                data=data,
                timeout=(min(self._connect_timeout, remaining), remaining),
                allow_redirects=False,
                stream=True,
            ) as response:
                status = response.status_code
                body = self._read_body(response, deadline, max_bytes)
        except requests.Timeout:
            raise OutboundError(TOO_SLOW) from None
        except requests.RequestException as error:
            if time.monotonic() >= deadline:
                raise OutboundError(TOO_SLOW) from None
            raise OutboundError(UNREACHABLE, type(error).__name__) from None
        return Answer(status, body)

    @staticmethod
    def _read_body(response: requests.Response, deadline: float, max_bytes: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(_CHUNK_BYTES):
            size += len(chunk)
            if size > max_bytes:
                raise OutboundError(TOO_LARGE)
            if time.monotonic() > deadline:
                raise OutboundError(TOO_SLOW)
            chunks.append(chunk)
        return b"".join(chunks)
