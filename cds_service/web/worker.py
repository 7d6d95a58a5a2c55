"""The gunicorn worker the service runs in: gthread, plus two things gthread lacks.

- **Slow clients.** gthread bounds only the wait for a connection's first byte; a client
  that then trickles its headers or body one byte a second holds a thread for as long as it
  likes, and ten such clients stall a default setup. Here every request must arrive (request
  line, headers and body) within `CDS_CLIENT_READ_TIMEOUT_SECONDS`; a watchdog thread shuts
  the socket of one that does not. The clock stops once the body has been read, so slow work
  of our own (a FHIR fetch) is never cut.
- **Its own errors in JSON.** Answers gunicorn writes itself (400 bad request line, 414 URI
  too long, 431 header fields too large) carry a FHIR OperationOutcome instead of an HTML
  page, and never repeat what the client sent.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from typing import Any

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

from ..config import settings_from_env

_WATCH_INTERVAL_SECONDS = 0.25


class _Watchdog:
    """Shuts down the sockets whose reading deadline passed; one thread per worker."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deadlines: dict[int, tuple[float, socket.socket]] = {}
        self._thread = threading.Thread(target=self._run, name="read-watchdog", daemon=True)
        self._thread.start()

    def watch(self, sock: socket.socket, seconds: float) -> None:
        with self._lock:
            self._deadlines[id(sock)] = (time.monotonic() + seconds, sock)

    def release(self, sock: socket.socket) -> None:
        with self._lock:
            self._deadlines.pop(id(sock), None)

    def _run(self) -> None:
        while True:
            time.sleep(_WATCH_INTERVAL_SECONDS)
            now = time.monotonic()
            with self._lock:
                late = [key for key, (deadline, _) in self._deadlines.items() if deadline <= now]
                socks = [self._deadlines.pop(key)[1] for key in late]
            for sock in socks:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class _TimedInput:
    """wsgi.input that releases the watchdog once the whole body has been read."""

    def __init__(self, inner: Any, length: int | None, done: Any) -> None:
        self._inner, self._left, self._done = inner, length, done

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        if self._left is not None:
            self._left -= len(data)
        if not data or (self._left is not None and self._left <= 0):
            self._done()
        return data

    def readline(self, size: int = -1) -> bytes:
        data = self._inner.readline(size)
        if not data:
            self._done()
        return data

    def __iter__(self) -> Any:
        return iter(self.readline, b"")


class BoundedReadWorker(ThreadWorker):
    """gthread with a deadline on reading each request, and JSON for its own errors."""

    def init_process(self) -> None:
        self._read_seconds = settings_from_env().client_read_timeout_seconds
        self._watchdog = _Watchdog()
        self._current = threading.local()
        util.write_error = _json_error  # gunicorn's own error pages, for this process
        super().init_process()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        app = self.wsgi

        def bounded(environ: dict[str, Any], start_response: Any) -> Any:
            sock = getattr(self._current, "sock", None)
            if sock is not None:
                length = environ.get("CONTENT_LENGTH")
                # gunicorn marks every input terminated (wsgi.input_terminated): a body comes
                # only with a length or chunked encoding, so a GET without either is released
                # at once, and its work (a SMART launch, say) is never cut by the read clock.
                encoding = environ.get("HTTP_TRANSFER_ENCODING", "").lower()
                chunked = "chunked" in encoding and not length
                if length in (None, "", "0") and not chunked:
                    self._watchdog.release(sock)  # no body to wait for
                else:
                    environ["wsgi.input"] = _TimedInput(
                        environ["wsgi.input"],
                        int(length) if length else None,
                        lambda: self._watchdog.release(sock),
                    )
            return app(environ, start_response)

        self.wsgi = bounded

    def handle(self, conn: Any) -> Any:
        self._watchdog.watch(conn.sock, self._read_seconds)
        self._current.sock = conn.sock
        try:
            return super().handle(conn)
        finally:
            self._current.sock = None
            self._watchdog.release(conn.sock)


def _json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's error answer as an OperationOutcome; `mesg` (the client's input) is not
    repeated."""
    body = json.dumps(
        {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "invalid", "diagnostics": reason}],
        }
    ).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/fhir+json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode("latin1")
    util.write_nonblock(sock, head + body)
