"""The floors the service is measured against, served by the same gunicorn settings.

Floor A: parse the request body as the service does and return one fixed card.
Floor B: Floor A plus fhir.resources R4B validation of exactly the resources the
assessment needs (the patient's WM laboratory Observations, medication records,
procedures, conditions and Medications: the types and codes the service reads, as of
clinical rules version 3): the cost no correct implementation can avoid.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.medication import Medication
from fhir.resources.R4B.medicationadministration import MedicationAdministration
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.procedure import Procedure
from flask import Flask, Response, request

from cds_service.clinical.valuesets import OBSERVATION_CODES

CARD = {
    "cards": [
        {
            "uuid": "3b0e7d3c-6a6e-4b8e-9d55-1b2c3d4e5f60",
            "summary": (
                "Partial response (PR), IWWM-6: IgM -56.2% (5100 -> 2233 mg/dL) on zanubrutinib"
            ),
            "indicator": "info",
            "source": {"label": "IWWM-6"},
        }
    ]
}
MODELS = {
    "MedicationStatement": MedicationStatement,
    "MedicationRequest": MedicationRequest,
    "MedicationAdministration": MedicationAdministration,
    "Procedure": Procedure,
    "Condition": Condition,
    "Medication": Medication,
}


def _needed(resource: dict[str, Any]) -> type | None:
    kind = resource.get("resourceType")
    if kind == "Observation":
        codes = {c.get("code") for c in resource.get("code", {}).get("coding", [])}
        return Observation if codes & OBSERVATION_CODES else None
    return MODELS.get(kind)


def _validate_needed(document: dict[str, Any]) -> int:
    count = 0
    for value in (document.get("prefetch") or {}).values():
        if not isinstance(value, dict):
            continue
        for entry in value.get("entry", []):
            resource = entry.get("resource", {})
            model = _needed(resource)
            if model is not None:
                model.model_validate(resource)
                count += 1
    return count


def _app(validate: bool) -> Flask:
    app = Flask(__name__)
    body = json.dumps(CARD)

    @app.post("/cds-services/wm-igm-response")
    def service() -> Response:
        document = json.loads(request.get_data(), parse_float=Decimal)
        if validate:
            _validate_needed(document)
        return Response(body, mimetype="application/json")

    return app


def floor_a() -> Flask:
    return _app(validate=False)


def floor_b() -> Flask:
    return _app(validate=True)
