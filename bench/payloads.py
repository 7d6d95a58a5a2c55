"""Benchmark payloads: CDS Hooks requests for synthetic patients of a given size."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from typing import Any

START = date(2016, 3, 1)
UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
PATIENT = "bench-1"


def _observation(n: int, code: str, day: date, value: Any, unit: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"obs-{code}-{n}",
        "status": "final",
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
        "code": {"coding": [{"system": LOINC, "code": code, "display": "lab"}]},
        "subject": {"reference": f"Patient/{PATIENT}"},
        "effectiveDateTime": f"{day.isoformat()}T08:30:00-05:00",
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
        "referenceRange": [
            {"high": {"value": 230, "unit": "mg/dL", "system": UCUM, "code": "mg/dL"}}
        ],
    }


def _statement(n: int, name: str, start: date, end: date | None) -> dict[str, Any]:
    period = {"start": start.isoformat(), **({"end": end.isoformat()} if end else {})}
    return {
        "resourceType": "MedicationStatement",
        "id": f"ms-{n}",
        "status": "completed" if end else "active",
        "medicationCodeableConcept": {"text": name},
        "subject": {"reference": f"Patient/{PATIENT}"},
        "effectivePeriod": period,
    }


def patient(igm_results: int) -> dict[str, list[dict[str, Any]]]:
    """`igm_results` IgM values over ten years, an IFE, other labs, three drug episodes.

    IgM falls from 4000 towards 1000 mg/dL; BR in the first year, zanubrutinib from year 4.
    """
    span = 3650
    observations = [
        _observation(
            n,
            "2472-9",
            START + timedelta(days=n * span // igm_results),
            4000 - (n * 3000) // igm_results,
            "mg/dL",
        )
        for n in range(igm_results)
    ]
    ife = _observation(0, "25700-6", START + timedelta(days=span), 0, "mg/dL")
    del ife["valueQuantity"], ife["referenceRange"]
    ife["valueCodeableConcept"] = {"text": "Negative"}
    observations.append(ife)
    for n in range(10):  # haemoglobin and creatinine from the same draws: not ours
        observations.append(_observation(n, "718-7", START + timedelta(days=n * 300), 12.1, "g/dL"))
        observations.append(
            _observation(n, "2160-0", START + timedelta(days=n * 300), 0.9, "mg/dL")
        )
    statements = [
        _statement(1, "bendamustine", START + timedelta(days=10), START + timedelta(days=180)),
        _statement(2, "rituximab", START + timedelta(days=10), START + timedelta(days=180)),
        _statement(3, "zanubrutinib", START + timedelta(days=1500), None),
    ]
    return {"observations": observations, "statements": statements}


def _bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }


def request(
    igm_results: int, prefetch: bool = True, fhir_server: str | None = None
) -> dict[str, Any]:
    data = patient(igm_results)
    document: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": str(uuid.UUID(int=igm_results)),
        "context": {"userId": "Practitioner/bench", "patientId": PATIENT},
    }
    if prefetch:
        document["prefetch"] = {
            "patient": {"resourceType": "Patient", "id": PATIENT},
            "observations": _bundle(data["observations"]),
            "medicationStatements": _bundle(data["statements"]),
            "medicationRequests": _bundle([]),
            "procedures": _bundle([]),
        }
    if fhir_server:
        document["fhirServer"] = fhir_server
    return document


def body(igm_results: int, **kwargs: Any) -> bytes:
    return json.dumps(request(igm_results, **kwargs)).encode()
