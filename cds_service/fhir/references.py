"""The Medications a treatment record names by reference but the prefetch does not hold
(contract v3, "Prefetch handling"): read as `Medication/{id}` from the FHIR server.

A `medicationReference` is resolved, in order: a contained Medication (`#id`), a Medication
in any prefetch key (the same Bundle, or another), then a read from `fhirServer`. Only a
relative reference, or an absolute one on that same server, is read: the same id on another
server is another resource. This runs inside the prefetch step, within its deadline; what
cannot be read leaves the record unresolved, and the record says so when it is mapped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec

from .documents import Resource
from .url_policy import UrlRefused, origin

# Prefetch keys whose resources name a medication.
MEDICATION_KEYS = ("medicationStatements", "medicationRequests", "medicationAdministrations")
# Reads per call: a record with more distinct Medications than this is not what EHRs send.
MAX_MEDICATION_READS = 20
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_MENTION = b"medicationReference"


class _Reference(msgspec.Struct):
    reference: Any = None


class _Record(msgspec.Struct):
    medicationReference: _Reference | None = None


class _Head(msgspec.Struct):
    resourceType: Any = None
    id: Any = None


_RECORD = msgspec.json.Decoder(_Record)
_HEAD = msgspec.json.Decoder(_Head)
_REFUSED = (msgspec.DecodeError, msgspec.ValidationError, RecursionError)


def medication_id(reference: str, fhir_server: str | None) -> str | None:
    """The id of a `Medication/{id}` reference that may be read from `fhir_server`: relative,
    or absolute on that server. None for a contained or foreign reference."""
    head, marker, tail = reference.rpartition("Medication/")
    if not marker or reference.startswith("#"):
        return None
    resource_id = tail.split("/_history/")[0]
    if not _ID.fullmatch(resource_id):
        return None
    if head == "":
        return resource_id
    if fhir_server is None:
        return None
    try:
        same = origin(head) == origin(fhir_server) and (head.rstrip("/") == fhir_server.rstrip("/"))
    except UrlRefused:
        return None
    return resource_id if same else None


def medication_reads(resources: Mapping[str, list[Resource]], fhir_server: str | None) -> list[str]:
    """`Medication/{id}` for each Medication a treatment record names that no prefetch key
    holds, at most `MAX_MEDICATION_READS`."""
    wanted: dict[str, None] = {}
    for key in MEDICATION_KEYS:
        for resource in resources.get(key, []):
            if _MENTION not in bytes(resource):
                continue
            try:
                record = _RECORD.decode(resource)
            except _REFUSED:
                continue  # the reader reports it
            reference = record.medicationReference
            if reference is None or not isinstance(reference.reference, str):
                continue
            resource_id = medication_id(reference.reference, fhir_server)
            if resource_id is not None:
                wanted[resource_id] = None
    if not wanted:
        return []
    for items in resources.values():
        for resource in items:
            try:
                head = _HEAD.decode(resource)
            except _REFUSED:
                continue
            if head.resourceType == "Medication" and isinstance(head.id, str):
                wanted.pop(head.id, None)
    return [f"Medication/{resource_id}" for resource_id in wanted][:MAX_MEDICATION_READS]
