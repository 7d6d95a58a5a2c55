"""The fixture FHIR server, and the service fetching everything from it (no prefetch)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from cds_service.hooks.discovery import SERVICE_BY_HOOK

from ..fetched_answers import comparable, load, prefetch_only, without_prefetch

ROOT = Path(__file__).resolve().parents[2]
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
    request = load(path)
    app = make_app(allow_as_of=True, fhir_max_pages=5)
    url = f"/cds-services/{SERVICE_BY_HOOK[request['hook']].id}"  # every hook of the service
    with_prefetch = app.test_client().post(url, json=request).get_json()
    response = app.test_client().post(url, json=without_prefetch(request, fhir_base))
    assert response.status_code == 200, response.get_json()
    skipped = prefetch_only(request)
    assert comparable(response.get_json(), skipped) == comparable(with_prefetch, skipped)


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
