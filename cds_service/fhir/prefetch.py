"""Step 2 of a call: complete the prefetch, fetching what the client left out.

contract.md, "Prefetch handling": a key that is absent, or whose value is an
`OperationOutcome`, is fetched from `fhirServer`; `null` means "no data"; Bundles are paged
through. The missing keys are fetched concurrently under one overall deadline, and every
fetch (its thread and its sockets) has ended before this step returns.

Degrade, don't go blank (contract v2): only `observations` is required. When it cannot be
had, `PrefetchUnavailable` is raised (412): its message is the same whatever went wrong
upstream (a caller must not learn which ports are open), and its `detail` goes to the log
only. Any other key that cannot be had is listed in `Prefetch.unavailable`: unknown, not
empty, and the cards say what could not be checked.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_EXCEPTION, Executor, Future, wait
from dataclasses import dataclass, field
from typing import Any

from .client import FhirClient, FhirFetchError, SearchResult
from .documents import (
    Resource,
    as_resource,
    bundle_resources,
    incompleteness,
    next_link,
    reports_error,
)
from .references import medication_reads
from .search import search_query

# After the deadline, fetches whose sockets were shut end within moments; this bounds the wait.
_CLEANUP_SECONDS = 2.0


class PrefetchUnavailable(Exception):
    """Required data cannot be had. The message is safe to return to the client; `detail`
    (what went wrong upstream) is for the log."""

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail or message


FETCH_FAILED = "the prefetch could not be completed from the FHIR server"
# contract v2: without these the service cannot answer at all.
REQUIRED_KEYS = frozenset({"observations"})


def _unavailable(detail: str) -> PrefetchUnavailable:
    return PrefetchUnavailable(FETCH_FAILED, detail)


@dataclass
class Prefetch:
    """The resources of each prefetch key, as JSON text, plus what happened on the way."""

    resources: dict[str, list[Resource]] = field(default_factory=dict)
    fetched_keys: list[str] = field(default_factory=list)
    # Keys whose search stopped at the page cap: older data may be missing.
    truncated_keys: list[str] = field(default_factory=list)
    # Keys that could not be had at all (contract v2, "Degrade, don't go blank").
    unavailable: list[str] = field(default_factory=list)
    # Keys read to their end that the server said are incomplete (contract v3, "Incomplete
    # is not complete"), with why: their resources are used, and the key is also listed in
    # `unavailable`, so that nothing reads them as complete.
    incomplete: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # why, for the log

    def merged_with(self, later: Prefetch) -> Prefetch:
        """This call's keys and those of a later completion of other keys."""
        return Prefetch(
            {**self.resources, **later.resources},
            self.fetched_keys + later.fetched_keys,
            self.truncated_keys + later.truncated_keys,
            self.unavailable + later.unavailable,
            {**self.incomplete, **later.incomplete},
            self.problems + later.problems,
        )


@dataclass(frozen=True)
class _Work:
    key: str
    query: str | None = None  # fetch this query from scratch
    bundle: dict[str, Any] | None = None  # or page on from this Bundle


def _plan(
    templates: Mapping[str, str], request: Mapping[str, Any], prefetch: Prefetch
) -> list[_Work]:
    """Take what the client sent; return the fetches still needed."""
    given = request.get("prefetch") or {}
    work: list[_Work] = []
    for key, template in templates.items():
        if key not in given or _is_outcome(given[key]):
            work.append(_Work(key, query=search_query(template, request["context"])))
            continue
        value = given[key]
        if value is None:
            prefetch.resources[key] = []
        elif value.get("resourceType") == "Bundle":
            resources = bundle_resources(value)
            prefetch.resources[key] = resources
            if next_link(value):
                work.append(_Work(key, bundle=value))
            else:
                _note_incomplete(
                    prefetch, key, incompleteness(value, resources, reports_error(value))
                )
        else:
            resource = as_resource(value)
            prefetch.resources[key] = [] if resource is None else [resource]
    return work


def _is_outcome(value: Any) -> bool:
    return isinstance(value, dict) and value.get("resourceType") == "OperationOutcome"


def complete_prefetch(
    request: Mapping[str, Any],
    templates: Mapping[str, str],
    client_factory: Callable[[], FhirClient] | None,
    executor: Executor,
    also_read: Iterable[str] = (),
) -> Prefetch:
    """Return every key's resources, fetching missing keys concurrently, and the Medications
    records name by reference that no key holds (`also_read`: more `Medication/{id}` to
    read, for draft orders), under `MEDICATIONS_READ`.

    `client_factory` is None when no FHIR server may be used (none given, or not allowed).
    """
    prefetch = Prefetch()
    work = _plan(templates, request, prefetch)
    fhir_server = request.get("fhirServer")
    also_read = list(also_read)
    if not work and (
        client_factory is None
        or not (also_read or medication_reads(prefetch.resources, fhir_server))
    ):
        return prefetch
    if client_factory is None:
        required = [item for item in work if item.key in REQUIRED_KEYS]
        if required:
            reasons = "; ".join(_why_missing(request, item.key) for item in required)
            raise PrefetchUnavailable(
                f"prefetch {', '.join(item.key for item in required)} is incomplete "
                f"({reasons}) and no FHIR server is available to fetch from"
            )
        for item in work:
            _give_up(prefetch, item, f"{_why_missing(request, item.key)}; no FHIR server")
        return prefetch
    client = client_factory()
    futures: dict[Future, _Work] = {}
    try:
        futures = {executor.submit(_fetch, client, item): item for item in work}
        pending = set(futures)
        while pending and time.monotonic() < client.deadline:
            remaining = client.deadline - time.monotonic()
            done, pending = wait(pending, timeout=remaining, return_when=FIRST_EXCEPTION)
            for future in done:
                item, error = futures[future], future.exception()
                if error is not None and item.key in REQUIRED_KEYS:
                    raise _unavailable(f"prefetch {item.key}: {_describe(error)}")
        for future, item in futures.items():
            if not future.done():
                if item.key in REQUIRED_KEYS:
                    raise _unavailable(f"prefetch {item.key}: {_TOO_SLOW}")
                _give_up(prefetch, item, f"{item.key}: {_TOO_SLOW}")
            elif future.exception() is not None:
                _give_up(prefetch, item, f"{item.key}: {_describe(future.exception())}")
            else:
                result = future.result()
                prefetch.resources[item.key] = result.resources
                if item.bundle is None:
                    prefetch.fetched_keys.append(item.key)
                if result.truncated:
                    prefetch.truncated_keys.append(item.key)
                _note_incomplete(prefetch, item.key, result.incomplete)
        reads = list(
            dict.fromkeys([*also_read, *medication_reads(prefetch.resources, fhir_server)])
        )
        if reads:
            futures.update(_read_medications(client, executor, reads, prefetch))
    finally:
        # End everything this call started: shut its sockets, then let its threads finish.
        for future in futures:
            future.cancel()
        client.close()
        wait(futures, timeout=_CLEANUP_SECONDS)
    return prefetch


_TOO_SLOW = "the FHIR server did not answer in time"
# contract v3: Medications read by reference are kept under their own key.
MEDICATIONS_READ = "medications"


def _read_medications(
    client: FhirClient, executor: Executor, reads: list[str], prefetch: Prefetch
) -> dict[Future, _Work]:
    """`Medication/{id}` reads, concurrently, within the call's deadline. What cannot be read
    leaves its record unresolved (the mapping says so); the reason goes to the log."""
    futures = {
        executor.submit(client.get_json, read): _Work(MEDICATIONS_READ, read) for read in reads
    }
    wait(futures, timeout=max(0.0, client.deadline - time.monotonic()))
    read: list[Resource] = []
    for future, item in futures.items():
        if not future.done():
            prefetch.problems.append(f"{item.query}: {_TOO_SLOW}")
        elif future.exception() is not None:
            prefetch.problems.append(f"{item.query}: {_describe(future.exception())}")
        else:
            document = future.result()
            resource = (
                as_resource(document) if document.get("resourceType") == "Medication" else None
            )
            if resource is None:
                prefetch.problems.append(f"{item.query}: not a Medication")
            else:
                read.append(resource)
    if read:
        prefetch.resources[MEDICATIONS_READ] = read
        prefetch.fetched_keys.append(MEDICATIONS_READ)
    return futures


def _describe(error: BaseException | None) -> str:
    return str(error) if isinstance(error, FhirFetchError) else type(error).__name__


def _give_up(prefetch: Prefetch, item: _Work, problem: str) -> None:
    """A key that is not required and cannot be had: unknown, never empty."""
    prefetch.problems.append(problem)
    if item.bundle is not None:
        # Its first page was read: what is missing is the rest, reported like a page cap.
        prefetch.truncated_keys.append(item.key)
    else:
        prefetch.resources.pop(item.key, None)
        prefetch.unavailable.append(item.key)


def _why_missing(request: Mapping[str, Any], key: str) -> str:
    value = (request.get("prefetch") or {}).get(key)
    if _is_outcome(value):
        # Its text is the client's and may hold anything: it is not copied.
        return f"{key}: the client's fetch failed"
    if value is not None and value.get("resourceType") == "Bundle":
        return f"{key}: the Bundle has more pages"
    return f"{key}: not sent"


def _note_incomplete(prefetch: Prefetch, key: str, why: str | None) -> None:
    if why is not None:
        prefetch.incomplete[key] = why
        prefetch.unavailable.append(key)
        prefetch.problems.append(f"{key}: {why}")


def _fetch(client: FhirClient, item: _Work) -> SearchResult:
    if item.bundle is not None:
        return client.page_through(item.bundle)
    document = client.get_json(item.query or "")
    if document["resourceType"] == "OperationOutcome":
        raise FhirFetchError("the FHIR server answered with an OperationOutcome")
    if document["resourceType"] != "Bundle":
        resource = as_resource(document)
        return SearchResult([] if resource is None else [resource], truncated=False)
    return client.page_through(document)
