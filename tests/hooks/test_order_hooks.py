"""The order check over HTTP (contract "Order check"): both hooks, their context, the
patient filter on drafts, and feedback per service. The fixtures (38-51) cover the cases
and the sandbox's Rx Sign shape; these cover the edges of the request."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from ..builders import igm

ROOT = Path(__file__).resolve().parents[2]
SIGN = "/cds-services/wm-anti-cd20-order-check"
SELECT = "/cds-services/wm-anti-cd20-order-select"


def fixture(name):
    return json.loads((ROOT / "fixtures" / f"{name}.json").read_text())


@pytest.fixture
def client(make_app):
    return make_app(allow_as_of=True).test_client()


@pytest.mark.parametrize(
    "draft_orders",
    [[], "Bundle", {"resourceType": "Parameters"}, {"resourceType": "Bundle", "entry": {}}],
)
def test_draft_orders_that_are_no_bundle_are_400(client, draft_orders):
    request = fixture("38-order-high-igm")
    request["context"]["draftOrders"] = draft_orders
    response = client.post(SIGN, json=request)
    assert response.status_code == 400
    assert "context.draftOrders" in response.get_json()["issue"][0]["diagnostics"]


def test_a_bundle_without_medication_requests_is_no_card_and_fetches_nothing(client):
    request = fixture("38-order-high-igm")
    request["context"]["draftOrders"]["entry"] = [
        {"resource": {"resourceType": "ServiceRequest", "id": "s1", "status": "draft"}}
    ]
    del request["prefetch"]  # with nothing to check, nothing needs fetching: no 412
    response = client.post(SIGN, json=request)
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}


def test_order_select_needs_its_selections(client):
    request = fixture("48-order-select-selected")
    del request["context"]["selections"]
    response = client.post(SELECT, json=request)
    assert response.status_code == 400
    assert "selections" in response.get_json()["issue"][0]["diagnostics"]


def test_each_service_answers_its_own_hook(client):
    response = client.post(SELECT, json=fixture("38-order-high-igm"))
    assert response.status_code == 400
    assert "order-select" in response.get_json()["issue"][0]["diagnostics"]
    response = client.post("/cds-services/wm-igm-response", json=fixture("38-order-high-igm"))
    assert response.status_code == 400


def test_a_draft_without_subject_is_this_patients(client):
    request = fixture("38-order-high-igm")
    del request["context"]["draftOrders"]["entry"][0]["resource"]["subject"]
    (card,) = client.post(SIGN, json=request).get_json()["cards"]
    assert card["extension"]["wm-anti-cd20-order-check"]["rule"] == "igm-high"


def test_the_high_card_says_what_to_do_with_sources(client):
    (card,) = client.post(SIGN, json=fixture("39-order-high-igm-after-exchange")).get_json()[
        "cards"
    ]
    assert card["summary"] == (
        "IgM 6500 mg/dL (2023-12-26): rituximab may cause an IgM flare and hyperviscosity"
    )
    assert "plasmapheresis was done on **2024-01-12**" in card["detail"]
    assert "pubmed.ncbi.nlm.nih.gov/15493038" in card["detail"]
    assert "single-agent rituximab" in card["detail"]
    suggestion = card["suggestions"][0]["actions"][0]["resource"]
    assert suggestion["code"]["coding"][0]["code"] == "3128-6"
    urls = [link["url"] for link in card["links"]]
    assert any(u.endswith("/caveats/anti-cd20-flare") for u in urls)
    assert any(u.endswith("/caveats/hyperviscosity-risk") for u in urls)


def test_the_missing_card_never_says_igm_is_low(client):
    (card,) = client.post(SIGN, json=fixture("41-order-igm-old")).get_json()["cards"]
    assert card["indicator"] == "info"
    assert card["summary"] == (
        "No IgM result in the last 3 months: measure IgM before starting rituximab"
    )
    assert "low" not in (card["summary"] + card["detail"]).lower()
    assert card["suggestions"][0]["actions"][0]["resource"]["code"]["coding"][0]["code"] == (
        "2472-9"
    )


def test_only_post_exchange_values_say_so(client):
    request = fixture("38-order-high-igm")
    observations = request["prefetch"]["observations"]
    observations["entry"] = [{"resource": igm("o9", -5, 2000, patient="wm-38-order-high-igm")}]
    request["prefetch"]["procedures"] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {
                "resource": {
                    "resourceType": "Procedure",
                    "id": "pp",
                    "status": "completed",
                    "code": {"text": "Plasma exchange"},
                    "subject": {"reference": "Patient/wm-38-order-high-igm"},
                    "performedDateTime": "2024-01-08",
                }
            }
        ],
    }
    (card,) = client.post(SIGN, json=request).get_json()["cards"]
    assert card["summary"].startswith("Only post-exchange IgM in the last 3 months")


def test_feedback_per_service_is_stored_under_that_service(client):
    (card,) = client.post(SIGN, json=fixture("38-order-high-igm")).get_json()["cards"]
    feedback = {
        "feedback": [
            {
                "card": card["uuid"],
                "outcome": "overridden",
                "overrideReason": {"reason": card["overrideReasons"][0]},
                "outcomeTimestamp": "2024-01-15T09:00:00Z",
            }
        ]
    }
    assert client.post(SIGN + "/feedback", json=feedback).status_code == 200
    store = client.application.extensions["wm_igm_store"]
    (row,) = store.outcomes()
    assert (row["service"], row["kind"]) == (
        "wm-anti-cd20-order-check",
        "anti-cd20-order-igm-high",
    )
    assert client.post(SELECT + "/feedback", json={"feedback": []}).status_code == 400


def test_order_cards_in_grams_per_litre(make_app):
    client = make_app(allow_as_of=True, display_unit="g/L").test_client()
    (card,) = client.post(SIGN, json=fixture("38-order-high-igm")).get_json()["cards"]
    assert card["summary"].startswith("IgM 52 g/L (2024-01-05)")
    assert card["extension"]["wm-anti-cd20-order-check"]["referenceValue"]["valueMgDl"] == 5200


def test_unknown_feedback_card_for_another_service_is_refused_for_unknown_services(client):
    feedback = {
        "feedback": [
            {
                "card": str(uuid.uuid4()),
                "outcome": "overridden",
                "overrideReason": {"userComment": "x"},
                "outcomeTimestamp": "2024-01-15T09:00:00Z",
            }
        ]
    }
    assert client.post("/cds-services/nope/feedback", json=feedback).status_code == 404


def _searched(fhir_base_log):
    return sorted({request.path.rsplit("/", 1)[-1] for request, _ in fhir_base_log})


@pytest.mark.parametrize(
    "name, fetched",
    [
        # a warning does not depend on evidence of WM: the medication history and the
        # problem list are not read (minimum necessary)
        ("38-order-high-igm", ["Observation", "Procedure"]),
        # an info card does: they are read, and only then
        (
            "40-order-no-igm",
            [
                "Condition",
                "MedicationAdministration",
                "MedicationRequest",
                "MedicationStatement",
                "Observation",
                "Procedure",
            ],
        ),
    ],
)
def test_evidence_keys_are_fetched_only_for_an_info_card(client, fhir, name, fetched):
    request = fixture(name)
    given = request.pop("prefetch")
    for key, resource_type in (
        ("observations", "Observation"),
        ("procedures", "Procedure"),
        ("conditions", "Condition"),
        ("medicationStatements", "MedicationStatement"),
        ("medicationRequests", "MedicationRequest"),
        ("medicationAdministrations", "MedicationAdministration"),
    ):
        fhir.expect_request(f"/fhir/{resource_type}").respond_with_json(given[key])
    request["fhirServer"] = fhir.url_for("/fhir")
    with_prefetch = client.post(SIGN, json={**request, "prefetch": given}).get_json()
    response = client.post(SIGN, json=request)
    assert response.status_code == 200
    assert _searched(fhir.log) == fetched
    summaries = [card["summary"] for card in response.get_json()["cards"]]
    assert summaries == [card["summary"] for card in with_prefetch["cards"]] and summaries


RITUXIMAB = {
    "resourceType": "Medication",
    "id": "m1",
    "code": {
        "coding": [
            {
                "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                "code": "121191",
                "display": "rituximab",
            }
        ]
    },
}


def test_a_draft_naming_its_drug_by_reference_is_resolved_by_a_read(client, fhir):
    # contract v3: neither contained nor in draftOrders: read as Medication/{id}
    request = fixture("87-e42-order-drug-unidentified")
    fhir.expect_request("/fhir/Medication/m1").respond_with_json(RITUXIMAB)
    request["fhirServer"] = fhir.url_for("/fhir")
    unresolved = client.post(SIGN, json={k: v for k, v in request.items() if k != "fhirServer"})
    assert (
        unresolved.get_json()["cards"][0]["extension"]["wm-anti-cd20-order-check"]["rule"]
        == "drug-unidentified"
    )
    (card,) = client.post(SIGN, json=request).get_json()["cards"]
    check = card["extension"]["wm-anti-cd20-order-check"]
    assert check["rule"] == "igm-missing" and check["drug"] == "rituximab"  # IgM 400 days old
    assert [r.path for r, _ in fhir.log] == ["/fhir/Medication/m1"]


def test_a_draft_whose_medication_read_fails_stays_unidentified(client, fhir):
    request = fixture("87-e42-order-drug-unidentified")
    fhir.expect_request("/fhir/Medication/m1").respond_with_data("down", status=503)
    request["fhirServer"] = fhir.url_for("/fhir")
    (card,) = client.post(SIGN, json=request).get_json()["cards"]
    assert card["extension"]["wm-anti-cd20-order-check"]["rule"] == "drug-unidentified"


@pytest.mark.parametrize("subject", ["Patient/someone-else", ["Patient/x"], 7, {"reference": 7}])
def test_a_draft_with_a_malformed_subject_is_excluded(client, subject):
    request = fixture("38-order-high-igm")
    for entry in request["context"]["draftOrders"]["entry"]:
        entry["resource"]["subject"] = subject
    response = client.post(SIGN, json=request)
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}  # never checked as this patient's order
