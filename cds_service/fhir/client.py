"""A small FHIR read/search client with a hard deadline, used to fill prefetch gaps.

Every URL it fetches passes `fhir.url_policy.on_server` (same scheme, host and port as the FHIR
server; no userinfo, backslashes or control characters); redirects are never followed. The
deadline is enforced on the sockets themselves: each client owns the connections it opens,
and a watchdog shuts them all down when the deadline passes, so a server that trickles
bytes cannot hold a thread or a socket past it. Answers are capped in bytes before they are
parsed, and searches in pages and resources. `FhirFetchError` messages are for the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .bounded_http import TOO_LARGE, TOO_SLOW, BoundedSession, OutboundError
from .documents import (
    Resource,
    bundle_resources,
    incompleteness,
    loads_document,
    next_link,
    reports_error,
)
from .url_policy import UrlRefused, on_server

# One answer is read into memory before it is parsed: 8 MiB is about 5,000 typical
# Observations, and bounds what parsing can cost.
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
# Resources kept per prefetch key; past this the search is reported as cut, like the page cap.
MAX_RESOURCES_PER_KEY = 10_000


class FhirFetchError(Exception):
    """Data could not be had from the FHIR server; the message says why (for the log)."""


_TOO_SLOW_TEXT = "the FHIR server did not answer in time"


@dataclass(frozen=True)
class SearchResult:
    resources: list[Resource]
    truncated: bool  # more pages existed beyond the page cap
    # Why the search is known to be incomplete although every page was read, or None.
    incomplete: str | None = None


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
        self._max_pages = max_pages
        self._http = BoundedSession(deadline_seconds, connect_timeout, concurrency)
        self.deadline = self._http.deadline

    def close(self) -> None:
        """End every connection this client opened; fetches still running fail at once."""
        self._http.close()

    def _url(self, query: str) -> str:
        try:
            return on_server(query, self._base)
        except UrlRefused as error:
            raise FhirFetchError(f"link refused: {error}") from None

    def get_json(self, query: str, deadline: float | None = None) -> dict[str, Any]:
        url = self._url(query)
        headers = {"Accept": "application/fhir+json, application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            answer = self._http.call("GET", url, MAX_RESPONSE_BYTES, headers, deadline=deadline)
        except OutboundError as error:
            if error.kind == TOO_SLOW:
                raise FhirFetchError(_TOO_SLOW_TEXT) from None
            if error.kind == TOO_LARGE:
                raise FhirFetchError("the FHIR server's answer is too large") from None
            raise FhirFetchError(f"the FHIR server could not be reached ({error.detail})") from None
        if answer.status != 200:
            raise FhirFetchError(f"the FHIR server answered HTTP {answer.status}")
        try:
            document = loads_document(answer.body)  # a Bundle's resources stay JSON text
        except ValueError:
            raise FhirFetchError("the FHIR server's answer is not acceptable JSON") from None
        if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
            raise FhirFetchError("the FHIR server's answer is not a FHIR resource")
        return document

    def page_through(self, bundle: dict[str, Any], deadline: float | None = None) -> SearchResult:
        """All resources of a searchset Bundle, following `next` links up to the page and
        resource caps, and whether the server said the search is incomplete."""
        resources = bundle_resources(bundle)
        errors = reports_error(bundle)
        pages = 1
        next_url = next_link(bundle)
        while next_url and len(resources) <= MAX_RESOURCES_PER_KEY:
            if pages >= self._max_pages:
                return SearchResult(resources, truncated=True)
            page = self.get_json(next_url, deadline)
            if page["resourceType"] != "Bundle":
                raise FhirFetchError("a next page of a search is not a Bundle")
            resources.extend(bundle_resources(page))
            errors = errors or reports_error(page)
            pages += 1
            next_url = next_link(page)
        if len(resources) > MAX_RESOURCES_PER_KEY:
            return SearchResult(resources[:MAX_RESOURCES_PER_KEY], truncated=True)
        return SearchResult(
            resources, truncated=False, incomplete=incompleteness(bundle, resources, errors)
        )
