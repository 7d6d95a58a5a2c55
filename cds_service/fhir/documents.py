"""FHIR JSON as the service receives it: a Bundle's resources stay JSON text until read.

A prefetch or a search page is mostly resources, and most of each resource is elements the
rules never read. Parsing it all into Python objects cost more than anything the service did
with them, and more per result the larger the record (tens of MB of short-lived objects for
5,000 results). So a Bundle is parsed only down to its entries: each member of an entry
(`resource`, `fullUrl`, `search`) stays a `msgspec.Raw`, a slice of the document's JSON text
that has been checked to be JSON. `fhir.parsing` and `fhir.elements` then read, from a
resource's text, only the elements the rules read, checked to the FHIR rules.

Everything else in a document (the request's `hook`, `context`, a Patient, an
OperationOutcome, the Bundle's own links) is parsed by `fhir.strict_json` as before: exact
decimals, no NaN, numbers of sane size.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from msgspec import UNSET, Raw, Struct, UnsetType

from . import strict_json

Resource = Raw  # one resource's JSON text
# Set on each Bundle parsed here: whether its text names `OperationOutcome` anywhere (a member
# name no FHIR Bundle has; only the members the struct below reads are kept besides it).
NAMES_OUTCOME = "wm:namesOutcome"
_OUTCOME_PATTERN = re.compile(b"OperationOutcome")


class _Bundle(Struct, forbid_unknown_fields=False):
    """A Bundle down to its entries. Members the service does not use (id, meta, identifier,
    timestamp, signature) are not kept."""

    resourceType: Any = UNSET
    type: Any = UNSET
    total: Any = UNSET
    link: Any = UNSET
    entry: list[dict[str, Raw]] | UnsetType | None = UNSET  # each member as JSON text


class _Request(Struct, forbid_unknown_fields=False):
    """A CDS Hooks request's members; unknown members are not kept (nothing reads them).
    Prefetch values are read in the same pass, down to what a call uses (`loads_request`)."""

    hook: Any = UNSET
    hookInstance: Any = UNSET
    fhirServer: Any = UNSET
    fhirAuthorization: Any = UNSET
    context: Any = UNSET
    prefetch: dict[str, _Bundle | None] | UnsetType = UNSET
    extension: Any = UNSET


class _RequestText(_Request, forbid_unknown_fields=False):
    """The same, with each prefetch value kept as JSON text (for values of other shapes)."""

    prefetch: dict[str, Raw] | UnsetType = UNSET


# Single-resource prefetch values a call reads nothing of but their type: the Patient (the
# trend app reads the Patient it fetches itself) and a client's failed fetch, an
# OperationOutcome (its text is the client's and is never copied).
TYPE_ONLY = frozenset({"Patient", "OperationOutcome"})

# The same number rules as strict_json's (exact decimals, bounded), for what is parsed here.
_REQUEST = msgspec.json.Decoder(_Request, float_hook=strict_json.parse_float)
_REQUEST_TEXT = msgspec.json.Decoder(_RequestText, float_hook=strict_json.parse_float)
_BUNDLE = msgspec.json.Decoder(_Bundle, float_hook=strict_json.parse_float)
_REFUSED = (msgspec.DecodeError, msgspec.ValidationError, ValueError, RecursionError)
# Resources handed in as Python objects (in-process callers) are written back to JSON text,
# decimals as JSON numbers, so that every resource is read by the one reader.
_ENCODER = msgspec.json.Encoder(decimal_format="number")


def _members(struct: Struct) -> dict[str, Any]:
    return {
        name: value
        for name in struct.__struct_fields__
        if (value := getattr(struct, name)) is not UNSET
    }


def loads_request(body: bytes | str) -> Any:
    """A CDS Hooks request: every member parsed strictly, except that the resources inside
    prefetch Bundles stay JSON text, and a Patient or OperationOutcome prefetch value keeps
    only its `resourceType` (`TYPE_ONLY`). Raises as `fhir.strict_json.loads` does.

    One pass over the body in the usual case (Bundles, a Patient, nulls); a prefetch value of
    another shape (a single Observation, say) is read in a second pass, whole."""
    try:
        request = _REQUEST.decode(body)
    except _REFUSED:
        return _loads_request_text(body)
    document = _members(request)
    if "prefetch" in document:
        names_outcome = _names_outcome(body)  # once for every Bundle in the body
        prefetch: dict[str, Any] = {}
        for key, value in document["prefetch"].items():
            kind = None if value is None else value.resourceType
            if value is None or kind == "Bundle":
                prefetch[key] = value if value is None else _bundle(value, names_outcome)
            elif _is_type_only(kind):
                prefetch[key] = {"resourceType": kind}
            else:
                return _loads_request_text(body)
        document["prefetch"] = prefetch
    return document


def _loads_request_text(body: bytes | str) -> Any:
    try:
        request = _REQUEST_TEXT.decode(body)
    except _REFUSED:  # parsed again as a whole: refused with the reason, or read as it is
        return strict_json.loads(body)
    document = _members(request)
    if "prefetch" in document:
        prefetch = {key: loads_document(value) for key, value in document["prefetch"].items()}
        for key, value in prefetch.items():
            kind = value.get("resourceType") if isinstance(value, dict) else None
            if _is_type_only(kind):
                prefetch[key] = {"resourceType": kind}
        document["prefetch"] = prefetch
    return document


def _names_outcome(text: bytes | str | Raw) -> bool:
    if isinstance(text, str):
        return "OperationOutcome" in text
    return _OUTCOME_PATTERN.search(text) is not None  # no copy of the text


def _bundle(bundle: _Bundle, names_outcome: bool) -> dict[str, Any]:
    """A Bundle's members, and whether its text names `OperationOutcome` at all: when it does
    not, no entry can be one, and `reports_error` need not look at each."""
    members = _members(bundle)
    members[NAMES_OUTCOME] = names_outcome
    return members


def _is_type_only(kind: Any) -> bool:
    return isinstance(kind, str) and kind in TYPE_ONLY


def loads_document(text: bytes | str | Raw) -> Any:
    """A FHIR document (a resource, or a Bundle whose entries' members stay JSON text), or
    any other JSON value, parsed strictly. Raises as `fhir.strict_json.loads` does."""
    try:
        bundle = _BUNDLE.decode(text)
    except _REFUSED:  # not a Bundle of the usual shape: parsed as a whole
        return strict_json.loads(text)
    if bundle.resourceType != "Bundle":
        return strict_json.loads(text)
    return _bundle(bundle, _names_outcome(text))


def as_resource(value: Any) -> Resource | None:
    """A resource's JSON text, from text or from Python objects; None when it is neither.
    (Text that is not an object is left to the reader, which finds no resource in it.)"""
    if type(value) is Raw:
        return value
    if isinstance(value, dict):
        return Raw(_ENCODER.encode(value))
    return None


def bundle_resources(bundle: dict[str, Any]) -> list[Resource]:
    """The resources of a Bundle's entries, as JSON text. An entry without a resource is
    passed over."""
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        return []
    resources = []
    for entry in entries:
        resource = entry.get("resource") if type(entry) is dict else None
        if type(resource) is not Raw:  # parsed objects, from an in-process caller
            resource = as_resource(resource)
        if resource is not None:
            resources.append(resource)
    return resources


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


def resource_members(resource: Resource | dict[str, Any]) -> dict[str, Any] | None:
    """A whole (small) resource parsed to Python objects, or None if it cannot be."""
    if isinstance(resource, dict):
        return resource
    try:
        document = strict_json.loads(resource)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


# FHIR R4 IssueSeverity codes that mean a search did not return all it should have; warnings
# and information are not (contract.md, "Incomplete is not complete").
_INCOMPLETE_SEVERITIES = frozenset({"error", "fatal"})


def reports_error(bundle: dict[str, Any]) -> bool:
    """Whether a searchset page carries an `OperationOutcome` entry of severity error or
    fatal (CDS Hooks 2.0: services SHOULD check prefetched data for them). Only a resource
    whose text names the type is parsed."""
    entries = bundle.get("entry")
    if not isinstance(entries, list) or bundle.get(NAMES_OUTCOME) is False:
        return False
    for entry in entries:
        resource = entry.get("resource") if type(entry) is dict else None
        if resource is None:
            continue
        if type(resource) is Raw:
            if _OUTCOME_PATTERN.search(resource) is None:
                continue
            resource = resource_members(resource)
        if _is_error_outcome(resource):
            return True
    return False


def _is_error_outcome(resource: Any) -> bool:
    if not isinstance(resource, dict) or resource.get("resourceType") != "OperationOutcome":
        return False
    issues = resource.get("issue")
    return isinstance(issues, list) and any(
        isinstance(issue, dict) and issue.get("severity") in _INCOMPLETE_SEVERITIES
        for issue in issues
    )


def declared_total(bundle: dict[str, Any]) -> int | None:
    """A searchset's `total` (how many resources match), when it gives a valid one."""
    total = bundle.get("total")
    return total if type(total) is int and total >= 0 else None


def incompleteness(
    first_page: dict[str, Any], resources: list[Resource], errors: bool
) -> str | None:
    """contract.md, "Incomplete is not complete": why a search read to its end is still
    incomplete (an error outcome, or a `total` above what was read), or None."""
    if errors:
        return "the FHIR server reported an error in the search"
    total = declared_total(first_page)
    if total is not None and total > len(resources):
        return f"the search reported {total} results and returned {len(resources)}"
    return None
