"""A loopback FHIR server that answers the prefetch queries for the benchmark patient,
adding 50 ms to every query (a realistic EHR FHIR server is slower still)."""

from __future__ import annotations

import json
import time

import payloads
from flask import Flask, Response

QUERY_DELAY_SECONDS = 0.05


def create_app() -> Flask:
    app = Flask(__name__)
    data = payloads.patient(40)
    by_type = {
        "Observation": data["observations"],
        "MedicationStatement": data["statements"],
        "MedicationRequest": [],
        "Procedure": [],
    }
    bodies = {
        kind: json.dumps(
            {
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": [{"resource": r} for r in items],
            }
        )
        for kind, items in by_type.items()
    }
    patient = json.dumps({"resourceType": "Patient", "id": payloads.PATIENT})

    @app.get("/fhir/Patient/<pid>")
    def read_patient(pid: str) -> Response:
        time.sleep(QUERY_DELAY_SECONDS)
        return Response(patient, mimetype="application/fhir+json")

    @app.get("/fhir/<kind>")
    def search(kind: str) -> Response:
        time.sleep(QUERY_DELAY_SECONDS)
        return Response(bodies[kind], mimetype="application/fhir+json")

    return app
