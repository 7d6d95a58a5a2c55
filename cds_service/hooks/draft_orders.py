"""Draft orders of the order hooks (`context.draftOrders`): which anti-CD20 antibodies are
being ordered for this patient.

Drafts are unsigned and often incomplete: the CDS Hooks sandbox sends no `intent` (which
FHIR R4 requires) and a Bundle without `type`. Validating them as whole resources would
reject what real clients send, so exactly the elements the check needs are read, each
checked for its type, and the rest is tolerated (contract "Order check"). Drugs are
recognised by the codes and names of clinical-rules.md §3.3; the status and intent filters
of §3.3 do not apply to drafts. A draft for another patient is never considered.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..clinical.models import DrugClass, Exclusion
from ..clinical.valuesets import drug_by_code, drugs_named_in
from ..fhir.parsing import subject_patient_id
from ..fhir.references import medication_id
from .validation import InvalidBody

_DRAFT_ORDERS = "context.draftOrders"


@dataclass
class DraftOrders:
    anti_cd20: list[str] = field(default_factory=list)  # ingredients, in order, once each
    references: list[str] = field(default_factory=list)  # the drafts that order them
    # contract v3 drug-unidentified: drafts naming their drug only by a medicationReference
    # that cannot be resolved (or a Medication with no code and no text)
    unidentified: list[str] = field(default_factory=list)
    # contract v3: the Medications those drafts name that may be read from fhirServer
    to_read: list[str] = field(default_factory=list)
    excluded: list[Exclusion] = field(default_factory=list)


def _strings(*values: Any) -> Iterator[str]:
    for value in values:
        if isinstance(value, str) and value:
            yield value


def _named_in(text: str) -> list[str]:
    return [d.ingredient for d in drugs_named_in(text) if d.drug_class == DrugClass.ANTI_CD20]


def _concept_drugs(concept: Any) -> list[str]:
    """WM ingredients named in a CodeableConcept (raw JSON), by code or by name."""
    if not isinstance(concept, dict):
        return []
    found: list[str] = []
    codings = concept.get("coding")
    for coding in codings if isinstance(codings, list) else []:
        if not isinstance(coding, dict):
            continue
        system, code = coding.get("system"), coding.get("code")
        if isinstance(system, str) and isinstance(code, str):
            drug = drug_by_code(system, code)
            if drug is not None and drug.drug_class == DrugClass.ANTI_CD20:
                found.append(drug.ingredient)
        for text in _strings(coding.get("display")):
            found += _named_in(text)
    for text in _strings(concept.get("text")):
        found += _named_in(text)
    return found


def _referenced_medication(
    order: dict[str, Any], target: Any, bundled: dict[str, dict[str, Any]], fhir_server: str | None
) -> dict[str, Any] | None:
    """The Medication a draft points to: contained, in the same draftOrders Bundle, or read
    from the FHIR server (`bundled` holds those, by id)."""
    if not isinstance(target, str):
        return None
    if target.startswith("#"):
        contained = order.get("contained")
        for resource in contained if isinstance(contained, list) else []:
            if isinstance(resource, dict) and resource.get("id") == target[1:]:
                return resource
        return None
    resource_id = medication_id(target, fhir_server)
    return None if resource_id is None else bundled.get(resource_id)


def _names_nothing(medication: dict[str, Any] | None) -> bool:
    code = medication.get("code") if medication else None
    return not isinstance(code, dict) or not (code.get("text") or code.get("coding"))


def _order_drugs(
    order: dict[str, Any], bundled: dict[str, dict[str, Any]], fhir_server: str | None
) -> tuple[list[str], bool]:
    """(the anti-CD20 ingredients a draft orders, whether its drug cannot be identified)."""
    concept = order.get("medicationCodeableConcept")
    found = _concept_drugs(concept)
    reference = order.get("medicationReference")
    unidentified = False
    if isinstance(reference, dict):
        for text in _strings(reference.get("display")):
            found += _named_in(text)
        medication = _referenced_medication(order, reference.get("reference"), bundled, fhir_server)
        if medication is not None:
            found += _concept_drugs(medication.get("code"))
        unidentified = (
            not found
            and not isinstance(concept, dict)
            and not reference.get("display")
            and _names_nothing(medication)
        )
    return found, unidentified


def read_draft_orders(
    context: dict[str, Any],
    patient_id: str,
    fhir_server: str | None,
    fetched: Iterable[dict[str, Any]] = (),
) -> DraftOrders:
    """The anti-CD20 antibodies among the draft MedicationRequests (on `order-select`, only
    the selected ones). A `draftOrders` that is no Bundle is a 400. `fetched`: Medications
    read from the FHIR server for drafts that name their drug by reference."""
    bundle = context.get("draftOrders")
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InvalidBody(f"{_DRAFT_ORDERS}: must be a FHIR Bundle", _DRAFT_ORDERS)
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise InvalidBody(f"{_DRAFT_ORDERS}.entry: must be an array", f"{_DRAFT_ORDERS}.entry")
    selections = context.get("selections")
    selected = set(selections) if isinstance(selections, list) else None
    drafts = DraftOrders()
    candidates = [entry.get("resource") for entry in entries if isinstance(entry, dict)]
    bundled = {
        resource["id"]: resource
        for resource in [*candidates, *fetched]
        if isinstance(resource, dict)
        and resource.get("resourceType") == "Medication"
        and isinstance(resource.get("id"), str)
    }
    for index, entry in enumerate(entries):
        order = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(order, dict) or order.get("resourceType") != "MedicationRequest":
            continue
        order_id = order.get("id")
        reference = (
            f"MedicationRequest/{order_id}"
            if isinstance(order_id, str) and order_id
            else f"MedicationRequest (draftOrders #{index + 1}, no id)"
        )
        if selected is not None and reference not in selected:
            continue  # order-select: only the orders just selected
        drugs, unidentified = _order_drugs(order, bundled, fhir_server)
        if not drugs and not unidentified:
            continue
        # A draft without a subject came in this patient's context: it is this patient's. A
        # subject that is there but malformed (a string, a list) names nobody we can tell.
        subject = order.get("subject")
        if subject is None:
            owner: str | None = patient_id
        elif isinstance(subject, dict):
            owner = subject_patient_id(order, fhir_server)
        else:
            owner = None
        if owner is None:
            drafts.excluded.append(Exclusion(reference[:200], "its patient cannot be identified"))
            continue
        if owner != patient_id:
            drafts.excluded.append(Exclusion(reference[:200], "belongs to another patient"))
            continue
        if unidentified:
            drafts.unidentified.append(reference[:200])
            target = (order.get("medicationReference") or {}).get("reference")
            resource_id = medication_id(target, fhir_server) if isinstance(target, str) else None
            if resource_id is not None and resource_id not in bundled:
                drafts.to_read.append(f"Medication/{resource_id}")
            continue
        drafts.references.append(reference[:200])
        for drug in drugs:
            if drug not in drafts.anti_cd20:
                drafts.anti_cd20.append(drug)
    return drafts
