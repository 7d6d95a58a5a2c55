"""Suggested orders as FHIR R4 `ServiceRequest` resources (status draft, intent proposal)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from cds_service.clinical.valuesets import LOINC_SYSTEM

from .card_ids import new_card_uuid

SERUM_IGM = ("2472-9", "IgM [Mass/volume] in Serum or Plasma")
SERUM_VISCOSITY = ("3128-6", "Viscosity of Serum")


def _service_request(patient_id: str, loinc: tuple[str, str]) -> dict[str, Any]:
    code, display = loinc
    return {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "proposal",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://snomed.info/sct",
                        "code": "108252007",
                        "display": "Laboratory procedure",
                    }
                ]
            }
        ],
        "code": {
            "coding": [{"system": LOINC_SYSTEM, "code": code, "display": display}],
            "text": display,
        },
        "subject": {"reference": f"Patient/{patient_id}"},
    }


def _suggestion(label: str, description: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "label": label,
        "uuid": new_card_uuid(),
        "isRecommended": True,
        "actions": [{"type": "create", "description": description, "resource": resource}],
    }


def repeat_igm_suggestion(patient_id: str, after: date | None = None) -> dict[str, Any]:
    """On unconfirmed progression, a sub-floor rise or a suppressed rise; in the same
    laboratory (BCSH-2014). `after`: not before this day (the end of a suppression window)."""
    resource = _service_request(patient_id, SERUM_IGM)
    when = ""
    if after is not None:
        start = after + timedelta(days=1)
        resource["occurrencePeriod"] = {"start": start.isoformat()}
        when = f" on or after {start.isoformat()}"
    return _suggestion(
        "Repeat serum IgM",
        f"Order a serum IgM (LOINC 2472-9) in the same laboratory{when} to confirm or rule out "
        "progression",
        resource,
    )


def monitoring_igm_suggestion(patient_id: str, before: str | None = None) -> dict[str, Any]:
    """Routine monitoring, or (`before`) a measurement before starting a drug."""
    purpose = f"before starting {before}" if before else "for routine monitoring"
    return _suggestion(
        "Order serum IgM",
        f"Order a serum IgM (LOINC 2472-9) in the same laboratory {purpose}",
        _service_request(patient_id, SERUM_IGM),
    )


def serum_viscosity_suggestion(patient_id: str) -> dict[str, Any]:
    return _suggestion(
        "Order serum viscosity",
        "Order serum viscosity (LOINC 3128-6)",
        _service_request(patient_id, SERUM_VISCOSITY),
    )
