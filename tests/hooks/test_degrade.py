"""contract.md v2 "Degrade, don't go blank": only `observations` is required. Every other key
that cannot be read is reported in `unavailable` and in a sentence on the card, never
silently treated as empty."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from werkzeug import Response

from cards.build import NOT_CHECKED

SERVICE = "/cds-services/wm-igm-response"
FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "32-pd-then-fall.json"
TYPES = {
    "observations": "Observation",
    "medicationStatements": "MedicationStatement",
    "medicationRequests": "MedicationRequest",
    "medicationAdministrations": "MedicationAdministration",
    "procedures": "Procedure",
    "conditions": "Condition",
}


def serve_fixture(fhir, failing_type):
    """The fixture's patient on a real loopback FHIR server, one resource type failing."""
    request = json.loads(FIXTURE.read_text())
    prefetch = request.pop("prefetch")
    for key, resource_type in TYPES.items():
        path = f"/fhir/{resource_type}"
        if resource_type == failing_type:
            fhir.expect_request(path).respond_with_response(
                Response('{"resourceType": "OperationOutcome"}', status=500)
            )
        else:
            fhir.expect_request(path).respond_with_json(prefetch[key])
    request["fhirServer"] = fhir.url_for("/fhir")
    return request


def the_response_card(response):
    assert response.status_code == 200, response.get_json()
    cards = response.get_json()["cards"]
    card = next(c for c in cards if "wm-igm-assessment" in c.get("extension", {}))
    return card, card["extension"]["wm-igm-assessment"]


@pytest.mark.parametrize(
    "key", ["conditions", "medicationRequests", "medicationAdministrations", "procedures"]
)
def test_a_failing_resource_type_is_named_and_the_rest_still_answers(fhir, make_app, key):
    client = make_app(allow_as_of=True).test_client()
    response = client.post(SERVICE, json=serve_fixture(fhir, TYPES[key]))
    card, assessment = the_response_card(response)
    assert assessment["unavailable"] == [key]
    assert assessment["category"] == "PD"  # the treatment is in its statements
    assert NOT_CHECKED[key] in card["detail"]
    assert card["indicator"] == "warning"


def test_failing_statements_never_read_as_no_treatment(fhir, make_app):
    # the regimen is recorded as statements only: without them the history is unknown.
    client = make_app(allow_as_of=True).test_client()
    response = client.post(SERVICE, json=serve_fixture(fhir, "MedicationStatement"))
    card, assessment = the_response_card(response)
    assert assessment["unavailable"] == ["medicationStatements"]
    assert assessment["category"] == "NE"
    assert assessment["reason"] == (
        "no WM treatment found in the treatment records that could be read"
    )
    assert card["summary"].startswith("IgM trend, treatment records could not all be read")
    assert "no WM treatment found" not in card["summary"]
    assert NOT_CHECKED["medicationStatements"] in card["detail"]


def test_failing_observations_is_still_412(fhir, make_app):
    client = make_app(allow_as_of=True).test_client()
    response = client.post(SERVICE, json=serve_fixture(fhir, "Observation"))
    assert response.status_code == 412


def test_keys_the_sandbox_failed_to_fetch_are_omitted_and_reported(make_app):
    # The CDS Hooks sandbox silently omits keys it failed to fetch, and sends no fhirServer
    # when it has none to offer: the answer says what was not checked.
    request = json.loads(FIXTURE.read_text())
    for key in ("medicationRequests", "medicationAdministrations", "procedures"):
        del request["prefetch"][key]
    client = make_app(allow_as_of=True).test_client()
    card, assessment = the_response_card(client.post(SERVICE, json=request))
    assert assessment["unavailable"] == [
        "medicationRequests",
        "medicationAdministrations",
        "procedures",
    ]
    assert assessment["category"] == "PD"
    for key in assessment["unavailable"]:
        assert NOT_CHECKED[key] in card["detail"]


def test_nothing_is_reported_unavailable_when_everything_was_read(make_app):
    request = json.loads(FIXTURE.read_text())
    client = make_app(allow_as_of=True).test_client()
    _, assessment = the_response_card(client.post(SERVICE, json=request))
    assert "unavailable" not in assessment
