"""The fetch path against FHIR servers nobody on this project wrote (contract v3, "Searches
real servers answer"): Medplum's FHIR server, and a proxy that collapses `//` in front of a
server (as the SMART launcher's does). Every fixture fetched from them gives the cards its
prefetch gives: the patient-view service, the order hooks and the SMART app's reads.

Fixtures whose prefetch holds what no server search returns are compared without it: other
patients' results (a server's search never returns them, so they are not listed as left
out), and what a fixture names `prefetchOnly` (93: an error outcome entry, 94: a short
`total`).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import requests

from cds_service.hooks.discovery import SERVICE_BY_HOOK, SERVICE_ID
from cds_service.tools.replay import EXPECTED_EXTENSION

from ..collapsing_proxy import collapsing_proxy
from ..fetched_answers import comparable, load, prefetch_only, without_prefetch
from ..medplum import medplum_server, require

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = sorted((ROOT / "fixtures").glob("*.json"))
PATIENT_VIEW = [p for p in FIXTURES if load(p)["hook"] == "patient-view"]


@pytest.fixture(scope="module")
def medplum():
    require()
    with medplum_server() as base:
        yield base


def _answers(make_app, request, fhir_server):
    app = make_app(allow_as_of=True, fhir_max_pages=5)
    url = f"/cds-services/{SERVICE_BY_HOOK[request['hook']].id}"
    with_prefetch = app.test_client().post(url, json=request).get_json()
    response = app.test_client().post(url, json=without_prefetch(request, fhir_server))
    assert response.status_code == 200, response.get_json()
    skipped = prefetch_only(request)
    return comparable(response.get_json(), skipped), comparable(with_prefetch, skipped)


def test_a_bare_id_or_a_raw_code_finds_nothing_on_medplum(medplum):
    # Why the searches are written as they are: Medplum matches only a typed reference.
    patient = "wm-01-e1-zanubrutinib-pr"
    bare = requests.get(f"{medplum}/Observation", params={"patient": patient}, timeout=60)
    typed = requests.get(
        f"{medplum}/Observation", params={"patient": f"Patient/{patient}"}, timeout=60
    )
    assert bare.json()["total"] == 0 and typed.json()["total"] > 0


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_every_fixture_fetched_from_medplum_gives_the_prefetch_answer(path, medplum, make_app):
    fetched, given = _answers(make_app, load(path), medplum)
    assert fetched == given


@pytest.mark.parametrize("path", PATIENT_VIEW, ids=lambda p: p.name)
def test_every_fixture_fetched_through_a_collapsing_proxy_gives_the_prefetch_answer(
    path, fhir_base, make_app
):
    with collapsing_proxy(fhir_base) as proxy:
        fetched, given = _answers(make_app, load(path), proxy)
    assert fetched == given


def test_medplum_through_a_collapsing_proxy(medplum, make_app):
    request = load(ROOT / "fixtures" / "01-e1-zanubrutinib-pr.json")
    with collapsing_proxy(medplum) as proxy:
        fetched, given = _answers(make_app, request, proxy)
    assert fetched == given and given[0][1]["category"] == "PR"


@pytest.mark.parametrize("path", PATIENT_VIEW, ids=lambda p: p.name)
def test_the_smart_apps_reads_from_medplum_give_the_cards_words(path, medplum, make_app):
    request = load(path)
    as_of = date.fromisoformat(request["extension"]["wm-igm-as-of"])
    app = make_app(allow_as_of=True, fhir_max_pages=5)
    with_prefetch = app.test_client().post(f"/cds-services/{SERVICE_ID}", json=request)
    service = app.extensions["wm_igm_service"]
    view = service.trend(
        medplum, "no-token-needed", request["context"]["patientId"], as_of, "http://localhost"
    )
    skipped = prefetch_only(request) | {"uuid"}
    assert comparable({"cards": view.cards}, skipped) == comparable(
        with_prefetch.get_json(), skipped
    )
    # the app also reads the Patient, for its banner
    assert view.banner is not None and "Fixture" in view.banner
    assert EXPECTED_EXTENSION  # the fixtures carry their expectations (checked elsewhere)


@pytest.mark.parametrize(
    "name, trend",
    [
        ("01-e1-zanubrutinib-pr", "268910001"),  # PR: improved
        ("32-pd-then-fall", None),  # whatever the category, the server takes it
        ("04-e4-stable-disease-24-9", "359746009"),  # SD: stable
    ],
)
def test_the_record_status_suggestion_is_accepted_by_medplum(name, trend, medplum, make_app):
    # contract v3: the card's mCODE CancerDiseaseStatus, a `create` the clinician accepts,
    # applied to a real FHIR server as an EHR would apply it
    request = load(ROOT / "fixtures" / f"{name}.json")
    app = make_app(allow_as_of=True)
    answer = app.test_client().post(f"/cds-services/{SERVICE_ID}", json=request).get_json()
    (suggestion,) = [
        s
        for s in answer["cards"][0]["suggestions"]
        if s["label"].startswith("Record disease status")
    ]
    (action,) = suggestion["actions"]
    assert action["type"] == "create" and suggestion["isRecommended"] is False
    resource = action["resource"]
    created = requests.post(
        f"{medplum}/Observation",
        json=resource,
        headers={"Content-Type": "application/fhir+json"},
        timeout=60,
    )
    assert created.status_code == 201, created.text[:500]
    stored = requests.get(f"{medplum}/Observation/{created.json()['id']}", timeout=60).json()
    assert stored["code"]["coding"][0]["code"] == "97509-4"
    assert stored["subject"]["reference"] == f"Patient/{request['context']['patientId']}"
    if trend is not None:
        assert stored["valueCodeableConcept"]["coding"][0]["code"] == trend
    # what it was derived from is on that server too: the references resolve
    for derived in stored.get("derivedFrom", []):
        assert requests.get(f"{medplum}/{derived['reference']}", timeout=60).status_code == 200
