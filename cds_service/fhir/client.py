"""A small FHIR read/search client with a hard deadline, used to fill prefetch gaps.

Every URL it fetches passes `fhir.url_policy.on_server` (same scheme, host and port as the FHIR
server; no userinfo, backslashes or control characters); redirects are never followed. The
deadline is enforced on the sockets themselves: each client owns the connections it opens,
and a watchdog shuts them all down when the deadline passes, so a server that trickles
bytes cannot hold a thread or a socket past it. Answers are capped in bytes before they are
parsed, and searches in pages and resources. `FhirFetchError` messages are for the log.
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

from .documents import Resource, bundle_resources, loads_document, next_link
from .url_policy import UrlRefused, on_server

# One answer is read into memory before it is parsed: 8 MiB is about 5,000 typical
# Observations, and bounds what parsing can cost.
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
# Resources kept per prefetch key; past this the search is reported as cut, like the page cap.
MAX_RESOURCES_PER_KEY = 10_000
_CHUNK_BYTES = 64 * 1024


class FhirFetchError(Exception):
    """Data could not be had from the FHIR server; the message says why (for the log)."""


_TOO_SLOW = "the FHIR server did not answer in time"


@dataclass(frozen=True)
class SearchResult:
    resources: list[Resource]
    truncated: bool  # more pages existed beyond the page cap


class _Sockets:
    """The sockets one client opened; `shut` ends them all, now and from then on."""

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


class FhirClient:
    """One call's fetches from one FHIR server, all ended by `deadline` or by `close()`."""

    def __init__(
        self,
        base_url: str,
        access_token: str | None,
        connect_timeout: float,
        max_pages: int,
        deadline_seconds: float,
        concurrency: int = 8,
    ) -> None:
        self._base = base_url.rstrip("/") + "/"
        self._token = access_token
        self._connect_timeout = connect_timeout
        self._max_pages = max_pages
        self.deadline = time.monotonic() + deadline_seconds
        self._sockets = _Sockets()
        self._session = requests.Session()
        self._session.trust_env = False  # no proxy or netrc credentials from the host
        adapter = _TrackedAdapter(self._sockets, concurrency)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._watchdog = threading.Timer(deadline_seconds, self._sockets.shut)
        self._watchdog.daemon = True
        self._watchdog.start()

    def close(self) -> None:
        """End every connection this client opened; fetches still running fail at once."""
        self._watchdog.cancel()
        self._sockets.shut()
        self._session.close()

    def _url(self, query: str) -> str:
        try:
            return on_server(query, self._base)
        except UrlRefused as error:
            raise FhirFetchError(f"link refused: {error}") from None

    def get_json(self, query: str, deadline: float | None = None) -> dict[str, Any]:
        deadline = self.deadline if deadline is None else min(deadline, self.deadline)
        url = self._url(query)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FhirFetchError(_TOO_SLOW)
        headers = {"Accept": "application/fhir+json, application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            with self._session.get(
                url,
                headers=headers,
                timeout=(min(self._connect_timeout, remaining), remaining),
                allow_redirects=False,
                stream=True,
            ) as response:
                if response.status_code != 200:
                    raise FhirFetchError(f"the FHIR server answered HTTP {response.status_code}")
                body = self._read_body(response, deadline)
        except requests.Timeout:
            raise FhirFetchError(_TOO_SLOW) from None
        except requests.RequestException as error:
            if time.monotonic() >= deadline:
                raise FhirFetchError(_TOO_SLOW) from None
            raise FhirFetchError(
                f"the FHIR server could not be reached ({type(error).__name__})"
            ) from None
        try:
            document = loads_document(body)  # a Bundle's resources stay JSON text
        except ValueError:
            raise FhirFetchError("the FHIR server's answer is not acceptable JSON") from None
        if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
            raise FhirFetchError("the FHIR server's answer is not a FHIR resource")
        return document

    @staticmethod
    def _read_body(response: requests.Response, deadline: float) -> bytes:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(_CHUNK_BYTES):
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise FhirFetchError("the FHIR server's answer is too large")
            if time.monotonic() > deadline:
                raise FhirFetchError(_TOO_SLOW)
            chunks.append(chunk)
        return b"".join(chunks)

    def page_through(self, bundle: dict[str, Any], deadline: float | None = None) -> SearchResult:
        """All resources of a searchset Bundle, following `next` links up to the page and
        resource caps."""
        resources = bundle_resources(bundle)
        pages = 1
        next_url = next_link(bundle)
        while next_url and len(resources) <= MAX_RESOURCES_PER_KEY:
            if pages >= self._max_pages:
                return SearchResult(resources, truncated=True)
            page = self.get_json(next_url, deadline)
            if page["resourceType"] != "Bundle":
                raise FhirFetchError("a next page of a search is not a Bundle")
            resources.extend(bundle_resources(page))
            pages += 1
            next_url = next_link(page)
        if len(resources) > MAX_RESOURCES_PER_KEY:
            return SearchResult(resources[:MAX_RESOURCES_PER_KEY], truncated=True)
        return SearchResult(resources, truncated=False)
