"""A loopback FHIR server that answers the prefetch queries for the benchmark patient,
adding 50 ms to every query (a realistic EHR FHIR server is slower still)."""

from __future__ import annotations

import json
import time

import payloads
from flask import Flask, Response

from cds_service.hooks.discovery import PREFETCH_TEMPLATES

QUERY_DELAY_SECONDS = 0.05


def create_app() -> Flask:
    app = Flask(__name__)
    prefetch = payloads.request(40)["prefetch"]
    # Each prefetch key's searchset, by the resource type its search names.
    bodies = {
        template.split("?")[0]: json.dumps(prefetch[key])
        for key, template in PREFETCH_TEMPLATES.items()
    }
    empty = json.dumps({"resourceType": "Bundle", "type": "searchset", "total": 0})

    @app.get("/fhir/<kind>")
    def search(kind: str) -> Response:
        time.sleep(QUERY_DELAY_SECONDS)
        return Response(bodies.get(kind, empty), mimetype="application/fhir+json")

    return app
