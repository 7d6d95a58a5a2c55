"""The signing keys of trusted issuers that are fetched, not written into the issuer file.

CDS Hooks 2.0: the key is chosen by `kid` from the issuer's JWK Set, registered in advance,
or named by the token's `jku` header when that URL is allowed. An issuer may register
several JWKS URLs, and a JKU-list URL (Oracle Health's model: a JSON array of the JWKS URLs
it signs with). Both kinds of document are fetched over a `BoundedSession` (one overall
deadline that closes the socket, a byte cap, no redirect) from http(s) URLs only, and cached:
a JWK Set for `JWKS_CACHE_SECONDS`, a JKU list for `JKU_LIST_CACHE_SECONDS`. When a JKU list
cannot be read, the last list read stays in force and nothing new is allowed: a token whose
`jku` is not already known is refused.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import jwt
from jwt import PyJWK, PyJWKSet

from ..fhir import strict_json
from ..fhir.bounded_http import BoundedSession, OutboundError
from ..fhir.url_policy import UrlRefused, origin

JWKS_CACHE_SECONDS = 300
JKU_LIST_CACHE_SECONDS = 600  # contract v3
# A key that is not in a cached set is looked for again at most this often per URL, so that
# tokens with made-up `kid`s cannot make the service fetch on every request.
REFETCH_MIN_SECONDS = 30
FETCH_DEADLINE_SECONDS = 5.0
_MAX_DOCUMENT_BYTES = 512 * 1024


class KeyFetchFailed(Exception):
    """A document of keys could not be had (the message is for the log)."""


def _fetch_json(url: str) -> object:
    try:
        origin(url)
    except UrlRefused as error:
        raise KeyFetchFailed(f"URL refused: {error}") from None
    try:
        with BoundedSession(FETCH_DEADLINE_SECONDS) as session:
            answer = session.call("GET", url, _MAX_DOCUMENT_BYTES, {"Accept": "application/json"})
    except OutboundError as error:
        raise KeyFetchFailed(str(error)) from None
    if answer.status != 200:
        raise KeyFetchFailed(f"HTTP {answer.status}")
    try:
        return strict_json.loads(answer.body)
    except ValueError:
        raise KeyFetchFailed("not JSON") from None


@dataclass
class _Cached:
    value: object
    fetched: float


class FetchedKeys:
    """JWK Sets by URL and JKU lists by URL, fetched when needed and cached."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jwks: dict[str, _Cached] = {}
        self._jku_lists: dict[str, _Cached] = {}
        self._tried: dict[str, float] = {}

    def signing_key(self, url: str, kid: str) -> PyJWK:
        """The key `kid` of the JWK Set at `url`; `KeyFetchFailed` when it is not there."""
        now = time.monotonic()
        with self._lock:
            cached = self._jwks.get(url)
            tried = self._tried.get(url, -REFETCH_MIN_SECONDS)
        key = _find(cached.value, kid) if cached is not None else None
        if key is not None and now - cached.fetched < JWKS_CACHE_SECONDS:
            return key
        if cached is not None and key is None and now - tried < REFETCH_MIN_SECONDS:
            raise KeyFetchFailed(f"kid {kid!r} not in the JWK Set")
        with self._lock:
            self._tried[url] = now
        try:
            document = _fetch_json(url)
            keys = PyJWKSet.from_dict(document)  # type: ignore[arg-type]
        except (jwt.PyJWKSetError, jwt.PyJWKError, TypeError, KeyError, ValueError) as error:
            raise KeyFetchFailed(f"not a usable JWK Set ({type(error).__name__})") from None
        with self._lock:
            self._jwks[url] = _Cached(keys, time.monotonic())
        key = _find(keys, kid)
        if key is None:
            raise KeyFetchFailed(f"kid {kid!r} not in the JWK Set")
        return key

    def jku_list(self, url: str) -> frozenset[str]:
        """The JWKS URLs the list at `url` allows: fetched again after its cache time; when
        it cannot be read, the last list read (empty if none ever was)."""
        now = time.monotonic()
        with self._lock:
            cached = self._jku_lists.get(url)
        if cached is not None and now - cached.fetched < JKU_LIST_CACHE_SECONDS:
            return cached.value  # type: ignore[return-value]
        try:
            document = _fetch_json(url)
            if not isinstance(document, list) or not all(isinstance(u, str) for u in document):
                raise KeyFetchFailed("not a JSON array of URLs")
            allowed = frozenset(document)
        except KeyFetchFailed:
            # Not readable now: what was known stays known, nothing new is let in; tried
            # again after the cache time, not on every token.
            allowed = cached.value if cached is not None else frozenset()  # type: ignore[assignment]
        with self._lock:
            self._jku_lists[url] = _Cached(allowed, now)
        return allowed


def _find(keys: object, kid: str) -> PyJWK | None:
    if not isinstance(keys, PyJWKSet):
        return None
    for key in keys.keys:
        if key.key_id == kid:
            return key
    return None
