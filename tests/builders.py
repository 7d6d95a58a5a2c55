"""Build FHIR R4 resources and CDS Hooks requests the way EHRs send them.

Dates are given as day offsets from therapy start (day 0), as in clinical-rules.md §7.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

DAY0 = date(2024, 1, 15)
PATIENT = "p1"
UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"


def on(offset: int) -> date:
    return DAY0 + timedelta(days=offset)


def iso(offset: int) -> str:
    return on(offset).isoformat()


def lab(
    rid: str,
    offset: int,
    value: Any,
    unit: str | None = "mg/dL",
    *,
    code: str = "2472-9",
    comparator: str | None = None,
    status: str = "final",
    patient: str = PATIENT,
    uln: Any = None,
    ucum: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    quantity: dict[str, Any] = {"value": value}
    if unit is not None:
        quantity["unit"] = unit
        if ucum:
            quantity["system"] = UCUM
            quantity["code"] = unit
    if comparator:
        quantity["comparator"] = comparator
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": rid,
        "status": status,
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": code, "display": "IgM [Mass/volume]"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": iso(offset),
        "valueQuantity": quantity,
    }
    if uln is not None:
        resource["referenceRange"] = [
            {"high": {"value": uln, "unit": "mg/dL", "system": UCUM, "code": "mg/dL"}}
        ]
    resource.update(extra)
    return resource


def igm(rid: str, offset: int, value: Any, unit: str = "mg/dL", **kw: Any) -> dict[str, Any]:
    return lab(rid, offset, value, unit, **kw)


def m_spike(rid: str, offset: int, value: Any, unit: str = "g/dL", **kw: Any) -> dict[str, Any]:
    return lab(rid, offset, value, unit, code="33358-3", **kw)


def ife(rid: str, offset: int, text: str, patient: str = PATIENT, **extra: Any) -> dict[str, Any]:
    resource = {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "25700-6"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": iso(offset),
        "valueCodeableConcept": {"text": text},
    }
    resource.update(extra)
    return resource


def _medication(name: str, coding: list[dict[str, str]] | None) -> dict[str, Any]:
    concept: dict[str, Any] = {}
    if name:
        concept["text"] = name
    if coding:
        concept["coding"] = coding
    return concept


def _period(start: int, end: int | None) -> dict[str, str]:
    return {"start": iso(start), **({"end": iso(end)} if end is not None else {})}


def statement(
    rid: str,
    name: str,
    start: int | None,
    end: int | None = None,
    *,
    status: str = "active",
    patient: str = PATIENT,
    coding: list[dict[str, str]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "id": rid,
        "status": status,
        "subject": {"reference": f"Patient/{patient}"},
        "medicationCodeableConcept": _medication(name, coding),
    }
    if start is not None:
        resource["effectivePeriod"] = _period(start, end)
    resource.update(extra)
    return resource


def request_for(
    rid: str,
    name: str,
    authored: int,
    *,
    status: str = "active",
    validity: tuple[int, int | None] | None = None,
    patient: str = PATIENT,
    coding: list[dict[str, str]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": status,
        "intent": "order",
        "subject": {"reference": f"Patient/{patient}"},
        "medicationCodeableConcept": _medication(name, coding),
        "authoredOn": iso(authored),
    }
    if validity is not None:
        resource["dispenseRequest"] = {
            "validityPeriod": _period(*validity),
            "numberOfRepeatsAllowed": 2,
        }
    resource.update(extra)
    return resource


def administration(
    rid: str,
    name: str,
    offset: int,
    *,
    status: str = "completed",
    patient: str = PATIENT,
    coding: list[dict[str, str]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationAdministration",
        "id": rid,
        "status": status,
        "subject": {"reference": f"Patient/{patient}"},
        "medicationCodeableConcept": _medication(name, coding),
        "effectiveDateTime": iso(offset),
    }
    resource.update(extra)
    return resource


def plasmapheresis(
    rid: str, offset: int, status: str = "completed", text: str = "Plasmapheresis"
) -> dict[str, Any]:
    return {
        "resourceType": "Procedure",
        "id": rid,
        "status": status,
        "code": {"text": text},
        "subject": {"reference": f"Patient/{PATIENT}"},
        "performedDateTime": iso(offset),
    }


def bundle(*resources: dict[str, Any], next_url: str | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": r} for r in resources],
    }
    if next_url:
        document["link"] = [{"relation": "next", "url": next_url}]
    return document


def hook_request(
    observations: list[dict[str, Any]] | None = None,
    statements: list[dict[str, Any]] | None = None,
    requests: list[dict[str, Any]] | None = None,
    procedures: list[dict[str, Any]] | None = None,
    patient: str = PATIENT,
    administrations: list[dict[str, Any]] | None = None,
    conditions: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A complete patient-view request: every prefetch key present."""
    document: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/doc-1", "patientId": patient},
        "prefetch": {
            "observations": bundle(*(observations or [])),
            "medicationStatements": bundle(*(statements or [])),
            "medicationRequests": bundle(*(requests or [])),
            "medicationAdministrations": bundle(*(administrations or [])),
            "procedures": bundle(*(procedures or [])),
            "conditions": bundle(*(conditions or [])),
        },
    }
    document.update(extra)
    return document


def founding_request(
    fhir_server: str | None = None, missing: tuple[str, ...] = ()
) -> dict[str, Any]:
    """E1 (5100 -> 2233 mg/dL on zanubrutinib); `missing` prefetch keys left for the server."""
    request = hook_request(
        [lab("o1", -5, 5100), lab("o2", 360, 2233)], [statement("m1", "zanubrutinib", 0)]
    )
    for key in missing:
        del request["prefetch"][key]
    if fhir_server:
        request["fhirServer"] = fhir_server
    return request


GENERIC_412 = "the prefetch could not be completed from the FHIR server"


def logged_reasons(caplog: Any) -> str:
    """The reasons the request log gave, joined (what went wrong goes to the log only)."""
    return " | ".join(str(getattr(r, "fields", {}).get("reason", "")) for r in caplog.records)


def condition(
    rid: str,
    code: str = "C88.0",
    text: str = "Waldenström macroglobulinemia",
    *,
    system: str = "http://hl7.org/fhir/sid/icd-10-cm",
    clinical: str | None = "active",
    verification: str | None = "confirmed",
    patient: str = PATIENT,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": rid,
        "code": {"coding": [{"system": system, "code": code}], "text": text},
        "subject": {"reference": f"Patient/{patient}"},
    }
    if clinical:
        resource["clinicalStatus"] = {"coding": [{"code": clinical}]}
    if verification:
        resource["verificationStatus"] = {"coding": [{"code": verification}]}
    return resource


def issued_cards(
    client: Any, count: int, service: str = "/cds-services/wm-igm-response"
) -> list[str]:
    """The uuids of `count` cards the service really issued (feedback is accepted only for
    those, contract v3): one founding call each, the first card of each answer."""
    cards = []
    for _ in range(count):
        response = client.post(service, json=founding_request())
        assert response.status_code == 200, response.get_json()
        cards.append(response.get_json()["cards"][0]["uuid"])
    return cards


def record_issued(
    store: Any, count: int, service_id: str = "wm-igm-response", issuer: str = ""
) -> list[str]:
    """`count` card uuids recorded as issued in `store`, for tests of feedback in bulk (the
    record the service itself writes when it answers)."""
    cards = [str(uuid.uuid4()) for _ in range(count)]
    store.record_cards(service_id, [(card, "response", "PR") for card in cards], issuer)
    return cards
