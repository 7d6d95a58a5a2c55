"""Raw loopback listeners for security tests: a victim port that records every connection,
and FHIR servers that misbehave at the socket level (trickling, oversized answers)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable


class Listener:
    """Accepts connections on a loopback port and hands each to `behaviour` in a thread;
    records what arrived and when each connection was closed by the peer."""

    def __init__(self, behaviour: Callable[[socket.socket], None] | None = None) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.behaviour = behaviour or _read_all
        self.accepted = 0
        self.received = b""
        self.open_connections = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            with self._lock:
                self.accepted += 1
                self.open_connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            self.behaviour(conn)
            conn.settimeout(30)
            while True:  # keep reading until the client closes its end
                data = conn.recv(65536)
                if not data:
                    break
                with self._lock:
                    self.received += data
        except OSError:
            pass
        finally:
            with self._lock:
                self.open_connections -= 1
            conn.close()

    def close(self) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            self.sock.close()
        self._thread.join(timeout=5)


def _read_all(conn: socket.socket) -> None:
    pass


def trickle(byte: bytes = b" ", every: float = 0.5, total: float = 60) -> Callable:
    """An HTTP answer whose headers arrive one byte at a time, forever (or `total` s)."""

    def behaviour(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        stop = time.monotonic() + total
        while time.monotonic() < stop:
            conn.sendall(b"X-Slow: " + byte + b"\r\n")
            time.sleep(every)

    return behaviour


def answer(body: bytes, content_type: str = "application/fhir+json") -> Callable:
    def behaviour(conn: socket.socket) -> None:
        conn.recv(65536)
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        with contextlib.suppress(OSError):
            conn.sendall(head + body)

    return behaviour


def wait_until(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()
