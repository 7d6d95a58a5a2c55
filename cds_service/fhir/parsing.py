"""Step 3 of a call: raw prefetch JSON to the checked FHIR R4 elements the rules read.

Each resource is read on its own (`fhir.elements`), so one whose read elements break the
FHIR rules is left out and reported instead of failing the request. Resources that belong
to another patient are left out before they are even read: mixing two patients' data is
the worst failure this service can have (clinical-rules.md §3).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
from msgspec import Raw, Struct

from ..clinical.models import Exclusion
from ..clinical.valuesets import LOINC_SYSTEM, OBSERVATION_CODES
from . import strict_json
from .documents import Resource, as_resource
from .elements import RESOURCE_TYPES, ElementReader, Medication, NotValidFhir
from .references import medication_id

_PATIENT_REFERENCE = re.compile(
    r"(?:(?P<base>.+)/)?Patient/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?"
)


@dataclass
class ParsedResources:
    """The patient's resources of the types the assessment reads, checked as they are
    read: `models(type)` yields the read elements of one resource at a time
    (`fhir.elements`). Every relevant resource that has to be left out is in `excluded`
    once it has been read."""

    medications: dict[str, Medication] = field(default_factory=dict)  # id -> model
    fhir_server: str | None = None  # absolute references count only on this server
    excluded: list[Exclusion] = field(default_factory=list)
    other_patient_count: int = 0
    _reader: ElementReader = field(default_factory=ElementReader)
    _pending: dict[str, list[tuple[str, Resource]]] = field(default_factory=dict)

    def medication(self, reference: str) -> Medication | None:
        """The Medication a `Medication/{id}` reference names (relative, or absolute on the
        request's own FHIR server), when the prefetch or a read held it."""
        resource_id = medication_id(reference, self.fhir_server)
        return None if resource_id is None else self.medications.get(resource_id)

    def models(self, resource_type: str) -> Iterator[tuple[str, Any]]:
        """(reference, model) pairs: the reference is how the card names the resource."""
        read = self._reader.read
        for reference, resource in self._pending.pop(resource_type, []):
            try:
                model = read(resource, resource_type)
            except NotValidFhir as error:
                self.excluded.append(Exclusion(reference, str(error)))
                continue
            yield reference, model

    def _validate(self, reference: str, resource: Resource, resource_type: str) -> Any:
        try:
            return self._reader.read(resource, resource_type)
        except NotValidFhir as error:
            self.excluded.append(Exclusion(reference, str(error)))
        return None


def subject_patient_id(raw: dict[str, Any], fhir_server: str | None) -> str | None:
    """The patient id a resource's subject points to, or None if it cannot be told.

    An absolute reference counts only when it is on the request's own FHIR server: the same
    id on another server is another patient.
    """
    subject = raw.get("subject")
    if not isinstance(subject, dict):
        subject = raw.get("patient")
    if not isinstance(subject, dict):
        return None
    reference = subject.get("reference")
    if not isinstance(reference, str):
        return None
    return _reference_patient_id(reference, fhir_server)


def _reference_patient_id(reference: str, fhir_server: str | None) -> str | None:
    match = _PATIENT_REFERENCE.fullmatch(reference)  # "$" would let a final newline pass
    if not match:
        return None
    base = match.group("base")
    if base is not None and (fhir_server is None or base.rstrip("/") != fhir_server.rstrip("/")):
        return None
    return match.group("id")


def _is_wm_observation(raw: dict[str, Any]) -> bool:
    """Cheap pre-filter on raw JSON: is this one of the laboratory series we read?

    A shape we cannot read here is passed on to the reader, which will report it.
    """
    code = raw.get("code")
    if not isinstance(code, dict):
        return True
    codings = code.get("coding")
    if not isinstance(codings, list):
        return True
    for coding in codings:
        if not isinstance(coding, dict):
            return True
        code = coding.get("code")
        is_loinc = coding.get("system") == LOINC_SYSTEM
        if is_loinc and isinstance(code, str) and code in OBSERVATION_CODES:
            return True
    return False


class Envelope(Struct):
    """What sorting resources out needs of one, before it is read: its type and id, and
    the texts of its version, code (for the laboratory pre-filter) and patient. Taken
    loosely: a malformed element here is reported when the resource is read."""

    resourceType: Any = None
    id: Any = None
    meta: Raw = None  # type: ignore[assignment]
    code: Raw = None  # type: ignore[assignment]
    subject: Raw = None  # type: ignore[assignment]
    patient: Raw = None  # type: ignore[assignment]


_ENVELOPE = msgspec.json.Decoder(Envelope)


def envelope(resource: Resource) -> Envelope | None:
    """The envelope of a resource's JSON text; None when the text is not a JSON object."""
    try:
        return _ENVELOPE.decode(resource)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None


def _loose(text: Raw | None) -> Any:
    """An element's JSON text as Python values, or None if it cannot be parsed strictly."""
    if text is None:
        return None
    try:
        return strict_json.loads(text)
    except (ValueError, RecursionError):
        return None


class _Sorter:
    """Sorts one request's resources. A patient's resources repeat the same subject text,
    and its results the same code texts: each distinct text is looked at once."""

    def __init__(self, fhir_server: str | None) -> None:
        self._fhir_server = fhir_server
        self._owners: dict[tuple[bytes, bytes], str | None] = {}
        self._laboratory: dict[bytes, bool] = {}

    def owner(self, head: Envelope) -> str | None:
        subject, patient = head.subject, head.patient
        key = (
            b"" if subject is None else bytes(subject),
            b"" if patient is None else bytes(patient),
        )
        if key not in self._owners:
            members = {"subject": _loose(head.subject), "patient": _loose(head.patient)}
            self._owners[key] = subject_patient_id(members, self._fhir_server)
        return self._owners[key]

    def is_wm_observation(self, head: Envelope) -> bool:
        key = b"" if head.code is None else bytes(head.code)
        if key not in self._laboratory:
            self._laboratory[key] = _is_wm_observation({"code": _loose(head.code)})
        return self._laboratory[key]


_Candidate = tuple[str, Envelope, Resource]  # (reference, envelope, text)


def _candidates(keyed: dict[str, list[Any]]) -> list[_Candidate]:
    """Every resource of a type the assessment reads, once per type/id, whichever prefetch
    keys it came through.

    When two copies differ, the most recently updated wins, so the result never depends
    on the order in which the client listed them.
    """
    by_identity: dict[str, _Candidate] = {}
    anonymous: list[_Candidate] = []
    for key, resources in keyed.items():
        for index, given in enumerate(resources):
            resource = as_resource(given)
            head = envelope(resource) if resource is not None else None
            if head is None:
                continue
            resource_type = head.resourceType
            if not isinstance(resource_type, str) or resource_type not in RESOURCE_TYPES:
                continue
            resource_id = head.id
            if not isinstance(resource_id, str) or not resource_id:
                reference = f"{resource_type} ({key} #{index + 1}, no id)"
                anonymous.append((reference[:200], head, resource))
                continue
            identity = f"{resource_type}/{resource_id}"
            kept = by_identity.get(identity)
            if kept is None or _version_key(head, resource) > _version_key(kept[1], kept[2]):
                by_identity[identity] = (identity[:200], head, resource)
    return [*by_identity.values(), *anonymous]


def _version_key(head: Envelope, resource: Resource) -> tuple[str, bytes]:
    meta = _loose(head.meta)
    updated = meta.get("lastUpdated") if isinstance(meta, dict) else None
    # Same update time: the text decides, so the choice is the same in any order.
    return (updated if isinstance(updated, str) else "", bytes(resource))


def parse_resources(
    keyed: dict[str, list[Any]], patient_id: str, fhir_server: str | None
) -> ParsedResources:
    """Sort out the resources the assessment could use; report the ones it cannot.

    Medications are read at once (records refer to them); the rest when mapped.
    """
    parsed = ParsedResources(fhir_server=fhir_server)
    sorter = _Sorter(fhir_server)
    for reference, head, resource in _candidates(keyed):
        resource_type = head.resourceType
        if resource_type == "Observation" and not sorter.is_wm_observation(head):
            continue
        if resource_type == "Medication":
            model = parsed._validate(reference, resource, resource_type)
            if model is not None and model.id:
                parsed.medications[model.id] = model
            continue
        owner = sorter.owner(head)
        if owner is None:
            parsed.excluded.append(Exclusion(reference, "its patient cannot be identified"))
        elif owner != patient_id:
            parsed.other_patient_count += 1
            parsed.excluded.append(Exclusion(reference, "belongs to another patient"))
        else:
            parsed._pending.setdefault(resource_type, []).append((reference, resource))
    return parsed
