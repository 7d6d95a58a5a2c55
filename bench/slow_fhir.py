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
    prefetch = payloads.request(40)["prefetch"]
    bodies = {
        "Observation": json.dumps(prefetch["observations"]),
        "MedicationStatement": json.dumps(prefetch["medicationStatements"]),
        "MedicationRequest": json.dumps(prefetch["medicationRequests"]),
        "Procedure": json.dumps(prefetch["procedures"]),
    }
    patient = json.dumps(prefetch["patient"])

    @app.get("/fhir/Patient/<pid>")
    def read_patient(pid: str) -> Response:
        time.sleep(QUERY_DELAY_SECONDS)
        return Response(patient, mimetype="application/fhir+json")

    @app.get("/fhir/<kind>")
    def search(kind: str) -> Response:
        time.sleep(QUERY_DELAY_SECONDS)
        return Response(bodies[kind], mimetype="application/fhir+json")

    return app
