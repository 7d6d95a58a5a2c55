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

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..clinical.models import DrugClass, Exclusion
from ..clinical.valuesets import drug_by_code, drugs_named_in
from ..fhir.parsing import subject_patient_id
from .validation import InvalidBody

_DRAFT_ORDERS = "context.draftOrders"


@dataclass
class DraftOrders:
    anti_cd20: list[str] = field(default_factory=list)  # ingredients, in order, once each
    references: list[str] = field(default_factory=list)  # the drafts that order them
    # contract v3 drug-unidentified: drafts naming their drug only by a medicationReference
    # that cannot be resolved (or a Medication with no code and no text)
    unidentified: list[str] = field(default_factory=list)
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
    order: dict[str, Any], target: Any, bundled: dict[str, dict[str, Any]]
) -> dict[str, Any] | None:
    """The Medication a draft points to: contained, or in the same draftOrders Bundle."""
    if not isinstance(target, str):
        return None
    if target.startswith("#"):
        contained = order.get("contained")
        for resource in contained if isinstance(contained, list) else []:
            if isinstance(resource, dict) and resource.get("id") == target[1:]:
                return resource
        return None
    return bundled.get("Medication/" + target.rsplit("Medication/", 1)[-1])


def _names_nothing(medication: dict[str, Any] | None) -> bool:
    code = medication.get("code") if medication else None
    return not isinstance(code, dict) or not (code.get("text") or code.get("coding"))


def _order_drugs(
    order: dict[str, Any], bundled: dict[str, dict[str, Any]]
) -> tuple[list[str], bool]:
    """(the anti-CD20 ingredients a draft orders, whether its drug cannot be identified)."""
    concept = order.get("medicationCodeableConcept")
    found = _concept_drugs(concept)
    reference = order.get("medicationReference")
    unidentified = False
    if isinstance(reference, dict):
        for text in _strings(reference.get("display")):
            found += _named_in(text)
        medication = _referenced_medication(order, reference.get("reference"), bundled)
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
    context: dict[str, Any], patient_id: str, fhir_server: str | None
) -> DraftOrders:
    """The anti-CD20 antibodies among the draft MedicationRequests (on `order-select`, only
    the selected ones). A `draftOrders` that is no Bundle is a 400."""
    bundle = context.get("draftOrders")
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InvalidBody(f"{_DRAFT_ORDERS}: must be a FHIR Bundle", _DRAFT_ORDERS)
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise InvalidBody(f"{_DRAFT_ORDERS}.entry: must be an array", f"{_DRAFT_ORDERS}.entry")
    selections = context.get("selections")
    selected = set(selections) if isinstance(selections, list) else None
    drafts = DraftOrders()
    bundled = {
        f"Medication/{entry['resource']['id']}": entry["resource"]
        for entry in entries
        if isinstance(entry, dict)
        and isinstance(entry.get("resource"), dict)
        and entry["resource"].get("resourceType") == "Medication"
        and isinstance(entry["resource"].get("id"), str)
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
        drugs, unidentified = _order_drugs(order, bundled)
        if not drugs and not unidentified:
            continue
        # A draft without a subject came in this patient's context: it is this patient's.
        has_subject = isinstance(order.get("subject"), dict)
        owner = subject_patient_id(order, fhir_server) if has_subject else patient_id
        if owner is None:
            drafts.excluded.append(Exclusion(reference[:200], "its patient cannot be identified"))
            continue
        if owner != patient_id:
            drafts.excluded.append(Exclusion(reference[:200], "belongs to another patient"))
            continue
        if unidentified:
            drafts.unidentified.append(reference[:200])
            continue
        drafts.references.append(reference[:200])
        for drug in drugs:
            if drug not in drafts.anti_cd20:
                drafts.anti_cd20.append(drug)
    return drafts
