"""The fixture FHIR server, and the service fetching everything from it (no prefetch)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from cds_service.hooks.discovery import SERVICE_BY_HOOK

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = sorted((ROOT / "fixtures").glob("*.json"))


def test_metadata_and_read(fhir_base):
    capability = requests.get(f"{fhir_base}/metadata", timeout=5).json()
    assert capability["resourceType"] == "CapabilityStatement"
    assert capability["fhirVersion"] == "4.0.1"
    patient = requests.get(f"{fhir_base}/Patient/wm-01-e1-zanubrutinib-pr", timeout=5).json()
    assert patient["resourceType"] == "Patient"
    missing = requests.get(f"{fhir_base}/Patient/nobody", timeout=5)
    assert missing.status_code == 404 and missing.json()["resourceType"] == "OperationOutcome"


def test_search_by_patient_and_code_with_paging(fhir_base):
    pid = "wm-07-e7-rises-under-the-floor-bdr"
    first = requests.get(
        f"{fhir_base}/Observation",
        params={"patient": pid, "code": "http://loinc.org|2472-9", "_count": 3, "_sort": "-date"},
        timeout=5,
    ).json()
    assert first["type"] == "searchset" and first["total"] == 4
    assert len(first["entry"]) == 3
    dates = [e["resource"]["effectiveDateTime"] for e in first["entry"]]
    assert dates == sorted(dates, reverse=True)
    (next_link,) = [link["url"] for link in first["link"] if link["relation"] == "next"]
    second = requests.get(next_link, timeout=5).json()
    assert len(second["entry"]) == 1
    assert not [link for link in second["link"] if link["relation"] == "next"]
    posted = requests.post(
        f"{fhir_base}/MedicationStatement/_search", data={"patient": pid}, timeout=5
    ).json()
    assert posted["total"] == 3
    other = requests.get(f"{fhir_base}/Observation", params={"patient": "nobody"}, timeout=5).json()
    assert other["total"] == 0


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_service_fetches_everything_from_the_fixture_server(path, fhir_base, make_app):
    request = json.loads(path.read_text())
    app = make_app(allow_as_of=True, fhir_max_pages=5)
    url = f"/cds-services/{SERVICE_BY_HOOK[request['hook']].id}"  # every hook of the service
    with_prefetch = app.test_client().post(url, json=request).get_json()
    del request["prefetch"]
    request["fhirServer"] = fhir_base
    response = app.test_client().post(url, json=request)
    assert response.status_code == 200, response.get_json()
    fetched = response.get_json()

    def extensions(body):
        # The server filters by patient, so another patient's result never arrives and
        # is not reported as left out; everything else must be identical.
        found = []
        for card in body["cards"]:
            extension = card.get("extension") or {}
            assessment = extension.get("wm-igm-assessment") or extension.get(
                "wm-anti-cd20-order-check"
            )
            if assessment and "excluded" in assessment:
                kept = [
                    e for e in assessment["excluded"] if e["reason"] != "belongs to another patient"
                ]
                assessment = {k: v for k, v in assessment.items() if k != "excluded"}
                if kept:
                    assessment["excluded"] = kept
            found.append(assessment)
        return found

    assert extensions(fetched) == extensions(with_prefetch)
    assert [c["summary"] for c in fetched["cards"]] == [
        c["summary"] for c in with_prefetch["cards"]
    ]


def test_console_script_prints_its_base_url():
    executable = Path(sys.executable).parent / "cds-fixture-server"
    process = subprocess.Popen(
        [str(executable), "--port", "0", str(ROOT / "fixtures" / "bundles")],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("FHIR base URL: http://127.0.0.1:")
        base = line.split()[3]
        assert requests.get(f"{base}/metadata", timeout=5).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=10)
