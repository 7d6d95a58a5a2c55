"""A small FHIR read/search client with a hard deadline, used to fill prefetch gaps.

It never follows a link or redirect away from the FHIR server it was given, never reads
more than a bounded number of pages or bytes, and raises `FhirFetchError` with a message
that is safe to show (no token, no patient data).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

MAX_RESPONSE_BYTES = 64 * 1024 * 1024
_CHUNK_BYTES = 64 * 1024


class FhirFetchError(Exception):
    """Data could not be had from the FHIR server; the message says why."""

    def __init__(self, message: str, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


_TOO_SLOW = "the FHIR server did not answer in time"


@dataclass(frozen=True)
class SearchResult:
    resources: list[dict[str, Any]]
    truncated: bool  # more pages existed beyond the page cap


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


class FhirClient:
    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        access_token: str | None,
        connect_timeout: float,
        max_pages: int,
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/") + "/"
        self._token = access_token
        self._connect_timeout = connect_timeout
        self._max_pages = max_pages

    def _url(self, query: str) -> str:
        url = urljoin(self._base, query)
        if _origin(url) != _origin(self._base):
            raise FhirFetchError("a link pointed away from the FHIR server; not followed")
        return url

    def get_json(self, query: str, deadline: float) -> dict[str, Any]:
        url = self._url(query)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FhirFetchError(_TOO_SLOW, timed_out=True)
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
            raise FhirFetchError(_TOO_SLOW, timed_out=True) from None
        except requests.RequestException as error:
            raise FhirFetchError(
                f"the FHIR server could not be reached ({type(error).__name__})"
            ) from None
        try:
            document = json.loads(body, parse_float=Decimal, parse_constant=_no_constants)
        except (ValueError, RecursionError):
            raise FhirFetchError("the FHIR server's answer is not valid JSON") from None
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
                raise FhirFetchError(_TOO_SLOW, timed_out=True)
            chunks.append(chunk)
        return b"".join(chunks)

    def page_through(self, bundle: dict[str, Any], deadline: float) -> SearchResult:
        """All resources of a searchset Bundle, following `next` links up to the page cap."""
        resources = bundle_resources(bundle)
        pages = 1
        next_url = next_link(bundle)
        while next_url:
            if pages >= self._max_pages:
                return SearchResult(resources, truncated=True)
            page = self.get_json(next_url, deadline)
            if page["resourceType"] != "Bundle":
                raise FhirFetchError("a next page of a search is not a Bundle")
            resources.extend(bundle_resources(page))
            pages += 1
            next_url = next_link(page)
        return SearchResult(resources, truncated=False)


def _no_constants(name: str) -> Any:
    raise ValueError(name)


def bundle_resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        return []
    return [
        entry["resource"]
        for entry in entries
        if isinstance(entry, dict) and isinstance(entry.get("resource"), dict)
    ]


def next_link(bundle: dict[str, Any]) -> str | None:
    links = bundle.get("link")
    if not isinstance(links, list):
        return None
    for link in links:
        if isinstance(link, dict) and link.get("relation") == "next":
            url = link.get("url")
            if isinstance(url, str) and url:
                return url
    return None
