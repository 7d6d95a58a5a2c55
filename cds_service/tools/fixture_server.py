"""`cds-fixture-server`: a small read-only FHIR R4 server over fixture Bundles.

For offline testing: the service's fetch-from-server path end to end, and the CDS Hooks
sandbox (or any FHIR client) pointed at local data. Supports `metadata`, instance reads,
and search by patient (and code) for the prefetch templates' resource types, by GET and
by `POST _search`, with searchset Bundles and paging. It is a test tool, not a FHIR server
for patient data: without `--smart` it serves every resource to anyone who asks.

With `--smart` it is also a SMART App Launch simulator (`tools/smart_simulator.py`): it
advertises its endpoints in `.well-known/smart-configuration` and, for older clients, as the
`oauth-uris` extension of its CapabilityStatement; its FHIR API still answers reads without a
token (as the CDS Hooks sandbox makes them), and a request with a token is served only that
token's patient.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, request
from werkzeug.serving import make_server

from ..fhir.parsing import subject_patient_id
from .smart_simulator import SmartSimulator

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
SEARCHABLE = (
    "Observation",
    "MedicationStatement",
    "MedicationRequest",
    "MedicationAdministration",
    "Procedure",
    "Condition",
    "Patient",
)
FHIR_JSON = "application/fhir+json"


def load_resources(directory: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Every resource in the Bundles under `directory` (CDS Hooks request files are skipped)."""
    store: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for path in sorted(directory.rglob("*.json")):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise SystemExit(f"cds-fixture-server: {path}: {error}") from None
        if not isinstance(document, dict) or document.get("resourceType") != "Bundle":
            continue
        for entry in document.get("entry") or []:
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(resource, dict) and resource.get("resourceType") and resource.get("id"):
                store[resource["resourceType"]][resource["id"]] = resource
    return store


def _outcome(status: int, text: str, code: str = "not-found") -> Response:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }
    return Response(json.dumps(body), status=status, mimetype=FHIR_JSON)


def _fhir(document: dict[str, Any]) -> Response:
    return Response(json.dumps(document), mimetype=FHIR_JSON)


def _codes_match(resource: dict[str, Any], wanted: str) -> bool:
    tokens = [token for token in wanted.split(",") if token]
    codings = (resource.get("code") or {}).get("coding") or []
    for token in tokens:
        system, _, code = token.rpartition("|")
        for coding in codings:
            if coding.get("code") == code and (not system or coding.get("system") == system):
                return True
    return False


def _effective(resource: dict[str, Any]) -> str:
    return (
        resource.get("effectiveDateTime")
        or (resource.get("effectivePeriod") or {}).get("start")
        or resource.get("issued")
        or ""
    )


# SMART App Launch 1.0's CapabilityStatement extension, which older clients (the CDS Hooks
# sandbox among them) still read to find the authorization server.
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


def _smart_security(endpoints: dict[str, str]) -> dict[str, Any]:
    return {
        "service": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                    }
                ]
            }
        ],
        "extension": [
            {
                "url": OAUTH_URIS,
                "extension": [{"url": name, "valueUri": url} for name, url in endpoints.items()],
            }
        ],
    }


def create_fixture_app(directory: Path, smart: bool = False) -> Flask:
    store = load_resources(directory)
    app = Flask(__name__)
    if smart:

        def owner(resource_type: str, resource_id: str) -> str | None:
            resource = store.get(resource_type, {}).get(resource_id)
            if resource is None:
                return None
            if resource_type == "Patient":
                return resource_id
            return subject_patient_id(resource, None) or ""

        simulator = SmartSimulator(set(store.get("Patient", {})), owner)
        simulator.register(app)

    @app.get("/fhir/metadata")
    def metadata() -> Response:
        search = [{"name": "patient", "type": "reference"}, {"name": "code", "type": "token"}]
        rest: dict[str, Any] = {
            "mode": "server",
            "resource": [
                {
                    "type": name,
                    "interaction": [{"code": "read"}, {"code": "search-type"}],
                    "searchParam": search,
                }
                for name in SEARCHABLE
            ],
        }
        if smart:
            rest["security"] = _smart_security(simulator.endpoints())
        return _fhir(
            {
                "resourceType": "CapabilityStatement",
                "status": "active",
                "date": "2026-01-01",
                "kind": "instance",
                "fhirVersion": "4.0.1",
                "format": ["json"],
                "software": {"name": "cds-fixture-server"},
                "rest": [rest],
            }
        )

    @app.get("/fhir/<resource_type>/<resource_id>")
    def read(resource_type: str, resource_id: str) -> Response:
        resource = store.get(resource_type, {}).get(resource_id)
        if resource is None:
            return _outcome(404, f"{resource_type}/{resource_id} is not known")
        return _fhir(resource)

    @app.route("/fhir/<resource_type>", methods=["GET"])
    @app.route("/fhir/<resource_type>/_search", methods=["POST"])
    def search(resource_type: str) -> Response:
        if resource_type not in SEARCHABLE:
            return _outcome(404, f"{resource_type} is not searchable here", "not-supported")
        params = request.form if request.method == "POST" else request.args
        patient = params.get("patient") or params.get("subject")
        code = params.get("code")
        try:
            count = min(int(params.get("_count", DEFAULT_PAGE_SIZE)), MAX_PAGE_SIZE)
            offset = int(params.get("_offset", 0))
        except ValueError:
            return _outcome(400, "_count and _offset must be whole numbers", "invalid")
        if count < 1 or offset < 0:
            return _outcome(400, "_count must be positive and _offset not negative", "invalid")
        matches = []
        for resource in store.get(resource_type, {}).values():
            if patient:
                owner = (
                    resource["id"]
                    if resource_type == "Patient"
                    else subject_patient_id(resource, None)
                )
                if owner != patient.removeprefix("Patient/"):
                    continue
            if code and not _codes_match(resource, code):
                continue
            matches.append(resource)
        if params.get("_sort") == "-date":
            matches.sort(key=_effective, reverse=True)
        else:
            matches.sort(key=lambda r: r["id"])
        page = matches[offset : offset + count]
        base = request.host_url.rstrip("/") + f"/fhir/{resource_type}"
        query = {k: v for k, v in params.items() if k != "_offset"}
        links = [{"relation": "self", "url": f"{base}?{urlencode({**query, '_offset': offset})}"}]
        if offset + count < len(matches):
            next_query = urlencode({**query, "_count": count, "_offset": offset + count})
            links.append({"relation": "next", "url": f"{base}?{next_query}"})
        return _fhir(
            {
                "resourceType": "Bundle",
                "type": "searchset",
                "total": len(matches),
                "link": links,
                "entry": [
                    {
                        "fullUrl": f"{request.host_url.rstrip('/')}/fhir/{resource_type}/{r['id']}",
                        "resource": r,
                        "search": {"mode": "match"},
                    }
                    for r in page
                ],
            }
        )

    @app.after_request
    def cors(response: Response) -> Response:
        # The CDS Hooks sandbox reads FHIR from the browser.
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        return response

    app.extensions["fixture_store"] = store
    return app


def default_directory() -> Path:
    """The checkout's fixtures/ (cds_service/tools/ is two levels below it)."""
    return Path(__file__).resolve().parents[2] / "fixtures"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cds-fixture-server",
        description="Serve fixture Bundles as a read-only FHIR R4 server.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument(
        "--smart",
        action="store_true",
        help="also simulate a SMART App Launch server; the FHIR API then needs its tokens",
    )
    parser.add_argument("directory", nargs="?", type=Path, default=None, metavar="DIR")
    args = parser.parse_args(argv)
    directory = args.directory or default_directory()
    if not directory.is_dir():
        print(f"cds-fixture-server: {directory} is not a directory", file=sys.stderr)
        return 2
    app = create_fixture_app(directory, smart=args.smart)
    server = make_server(args.host, args.port, app, threaded=True)
    count = sum(len(v) for v in app.extensions["fixture_store"].values())
    smart = " with a SMART launch simulator" if args.smart else ""
    print(
        f"FHIR base URL: http://{args.host}:{server.server_port}/fhir ({count} resources){smart}",
        flush=True,
    )
    print(
        "A test tool for loopback: it serves every fixture resource to anyone who asks"
        + (", with or without a token, and approves every launch" if args.smart else ""),
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0
