"""Prefetch gaps filled from a real FHIR server on loopback (pytest-httpserver)."""

from __future__ import annotations

import json
import threading
import time

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from ..builders import GENERIC_412, bundle, hook_request, igm, logged_reasons, statement

SERVICE = "/cds-services/wm-igm-response"
TOKEN = "token-abc"


def base(server: HTTPServer) -> str:
    return server.url_for("/fhir")


def fhir_json(document, status=200):
    return Response(json.dumps(document), status=status, content_type="application/fhir+json")


def serve_patient(
    server, observations=(), statements=(), requests_=(), procedures=(), administrations=()
):
    """Answer the prefetch searches for patient p1, checking the bearer token and that the
    patient is named as a typed reference (contract v3)."""
    seen = []

    def handler(request: Request) -> Response:
        seen.append(request)
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return fhir_json({"resourceType": "OperationOutcome"}, 401)
        resource_type = request.path.rsplit("/", 2)[-1]
        assert request.args.get("patient") == "Patient/p1"
        content = {
            "Observation": observations,
            "MedicationStatement": statements,
            "MedicationRequest": requests_,
            "MedicationAdministration": administrations,
            "Procedure": procedures,
        }[resource_type]
        return fhir_json(bundle(*content))

    for resource_type in (
        "Observation",
        "MedicationStatement",
        "MedicationRequest",
        "MedicationAdministration",
        "Procedure",
    ):
        server.expect_request(f"/fhir/{resource_type}").respond_with_handler(handler)
    return seen


def no_prefetch_request(server, **extra):
    request = hook_request(
        fhirServer=base(server),
        fhirAuthorization={
            "access_token": TOKEN,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "wm-igm-cds",
        },
        **extra,
    )
    del request["prefetch"]
    return request


def assessment(response):
    return response.get_json()["cards"][0]["extension"]["wm-igm-assessment"]


def test_all_keys_fetched_with_bearer_token(fhir, client):
    seen = serve_patient(
        fhir,
        observations=[igm("o1", -5, 5100), igm("o2", 360, 2233)],
        statements=[statement("m1", "zanubrutinib", 0)],
    )
    response = client.post(SERVICE, json=no_prefetch_request(fhir))
    assert response.status_code == 200, response.get_json()
    assert assessment(response)["category"] == "PR"
    assert len(seen) == 5  # no Patient read: the cards do not use it (contract v3)
    observation_query = next(r for r in seen if r.path.endswith("/Observation"))
    # contract v3: every value percent-encoded, so that no proxy sees a "//" or a "|"
    assert observation_query.query_string.decode().startswith(
        "patient=Patient%2Fp1&code=http%3A%2F%2Floinc.org%7C2472-9,http%3A%2F%2Floinc.org%7C33358-3,"
    )
    assert observation_query.args["code"].split(",") == [
        "http://loinc.org|2472-9",
        "http://loinc.org|33358-3",
        "http://loinc.org|51435-6",
        "http://loinc.org|25700-6",
        "http://loinc.org|3128-6",
    ]
    assert observation_query.args["_sort"] == "-date"


def test_only_missing_keys_are_fetched(fhir, client):
    seen = serve_patient(fhir, statements=[statement("m1", "zanubrutinib", 0)])
    request = no_prefetch_request(fhir)
    given = hook_request([igm("o1", -5, 5100), igm("o2", 360, 2233)])["prefetch"]
    request["prefetch"] = {"observations": given["observations"]}
    response = client.post(SERVICE, json=request)
    assert response.status_code == 200
    assert assessment(response)["category"] == "PR"
    assert sorted(r.path.rsplit("/", 1)[-1] for r in seen) == [
        "MedicationAdministration",
        "MedicationRequest",
        "MedicationStatement",
        "Procedure",
    ]


def test_operation_outcome_prefetch_value_is_refetched(fhir, client):
    seen = serve_patient(fhir, statements=[statement("m1", "zanubrutinib", 0)])
    request = hook_request([igm("o1", -5, 5100), igm("o2", 360, 2233)])
    request.update(no_prefetch_request(fhir))
    request["prefetch"] = hook_request([igm("o1", -5, 5100), igm("o2", 360, 2233)])["prefetch"]
    request["prefetch"]["medicationStatements"] = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "timeout"}],
    }
    response = client.post(SERVICE, json=request)
    assert response.status_code == 200
    assert assessment(response)["regimen"] == ["zanubrutinib"]
    assert [r.path.rsplit("/", 1)[-1] for r in seen] == ["MedicationStatement"]


def test_next_links_are_followed(fhir, client):
    serve_patient(fhir, statements=[statement("m1", "zanubrutinib", 0)])
    page2 = f"{base(fhir)}/Observation-page?page=2"
    fhir.expect_request("/fhir/Observation-page").respond_with_json(bundle(igm("o2", 360, 2233)))
    request = no_prefetch_request(fhir)
    request["prefetch"] = {"observations": bundle(igm("o1", -5, 5100), next_url=page2)}
    response = client.post(SERVICE, json=request)
    assert response.status_code == 200, response.get_json()
    assert assessment(response)["latest"]["valueMgDl"] == 2233


def test_page_cap_is_reported_not_silent(fhir, make_app):
    serve_patient(fhir, statements=[statement("m1", "zanubrutinib", 0)])
    fhir.expect_request("/fhir/Observation-page").respond_with_json(
        bundle(igm("o2", 360, 2233), next_url=f"{base(fhir)}/Observation-page?page=3")
    )
    request = no_prefetch_request(fhir)
    request["prefetch"] = {
        "observations": bundle(
            igm("o1", -5, 5100), next_url=f"{base(fhir)}/Observation-page?page=2"
        )
    }
    response = make_app(fhir_max_pages=2).test_client().post(SERVICE, json=request)
    assert response.status_code == 200
    excluded = assessment(response)["excluded"]
    assert {
        "reference": "prefetch observations",
        "reason": "more than 2 pages; older results not read",
    } in excluded


def test_next_link_to_another_host_is_not_followed(fhir, client, caplog):
    serve_patient(fhir)
    request = no_prefetch_request(fhir)
    request["prefetch"] = {
        "observations": bundle(igm("o1", -5, 5100), next_url="http://169.254.169.254/latest")
    }
    response = client.post(SERVICE, json=request)
    assert response.status_code == 412
    assert GENERIC_412 in response.get_json()["issue"][0]["diagnostics"]
    assert "away from the FHIR server" in logged_reasons(caplog)


@pytest.mark.parametrize("status", [401, 403, 404, 500])
def test_error_status_from_server_is_412(fhir, client, status, caplog):
    fhir.expect_request("/fhir/Observation").respond_with_json(
        {"resourceType": "OperationOutcome"}, status=status
    )
    serve_patient(fhir)
    response = client.post(SERVICE, json=no_prefetch_request(fhir))
    assert response.status_code == 412
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    # one message whatever went wrong upstream; the status is in the log only
    assert body["issue"][0]["diagnostics"] == GENERIC_412
    assert f"HTTP {status}" in logged_reasons(caplog)
    assert TOKEN not in response.get_data(as_text=True)


def test_malformed_json_from_server_is_412(fhir, client, caplog):
    fhir.expect_request("/fhir/Observation").respond_with_data(
        "{oops", content_type="application/fhir+json"
    )
    serve_patient(fhir)
    response = client.post(SERVICE, json=no_prefetch_request(fhir))
    assert response.status_code == 412
    assert GENERIC_412 in response.get_json()["issue"][0]["diagnostics"]
    assert "not acceptable JSON" in logged_reasons(caplog)


def test_server_that_hangs_past_the_deadline_is_412_within_budget(fhir, make_app):
    def hang(request):
        fhir.release.wait(10)
        return fhir_json(bundle())

    fhir.expect_request("/fhir/Observation").respond_with_handler(hang)
    serve_patient(fhir)
    client = make_app(fhir_deadline_seconds=0.5).test_client()
    started = time.monotonic()
    response = client.post(SERVICE, json=no_prefetch_request(fhir))
    elapsed = time.monotonic() - started
    assert response.status_code == 412
    assert response.get_json()["issue"][0]["code"] == "incomplete"
    assert elapsed < 3, "the deadline must bound the request"


def test_unreachable_server_is_412(client, caplog):
    request = hook_request(fhirServer="http://127.0.0.1:9/fhir")
    del request["prefetch"]["observations"]
    response = client.post(SERVICE, json=request)
    assert response.status_code == 412
    assert GENERIC_412 in response.get_json()["issue"][0]["diagnostics"]
    assert "could not be reached" in logged_reasons(caplog)


def test_missing_keys_are_fetched_concurrently(fhir, client):
    """Five searches must be in flight at once: a sequential fetch never fills the barrier."""
    barrier = threading.Barrier(5, timeout=2)
    statements = [statement("m1", "zanubrutinib", 0)]
    serve_patient(fhir)

    def together(request):
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            return fhir_json({"resourceType": "OperationOutcome"}, 503)
        if request.path.endswith("MedicationStatement"):
            return fhir_json(bundle(*statements))
        return fhir_json(bundle())

    fhir.clear()
    fhir.expect_request("/fhir/Patient/p1").respond_with_json(
        {"resourceType": "Patient", "id": "p1"}
    )
    for resource_type in (
        "Observation",
        "MedicationStatement",
        "MedicationRequest",
        "MedicationAdministration",
        "Procedure",
    ):
        fhir.expect_request(f"/fhir/{resource_type}").respond_with_handler(together)
    response = client.post(SERVICE, json=no_prefetch_request(fhir))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["cards"][0]["extension"]["wm-igm-assessment"]["regimen"] == [
        "zanubrutinib"
    ]


def test_other_patients_resources_in_a_bundle_are_never_used(fhir, client):
    serve_patient(
        fhir,
        observations=[
            igm("o1", -5, 5100),
            igm("o2", 360, 2233),
            igm("x1", 361, 9000, patient="p2"),
        ],
        statements=[
            statement("m1", "zanubrutinib", 0),
            statement("x2", "rituximab", 200, patient="p2"),
        ],
    )
    response = client.post(SERVICE, json=no_prefetch_request(fhir))
    result = assessment(response)
    assert result["latest"]["valueMgDl"] == 2233
    assert result["regimen"] == ["zanubrutinib"]
    assert {"reference": "Observation/x1", "reason": "belongs to another patient"} in result[
        "excluded"
    ]
    assert "9000" not in json.dumps(response.get_json())


def test_absolute_subject_on_another_server_is_another_patient(fhir, client):
    foreign = igm("x1", 361, 9000)
    foreign["subject"] = {"reference": "https://other.example/fhir/Patient/p1"}
    local = igm("o2", 360, 2233)
    local["subject"] = {"reference": f"{base(fhir)}/Patient/p1"}
    serve_patient(
        fhir,
        observations=[igm("o1", -5, 5100), local, foreign],
        statements=[statement("m1", "zanubrutinib", 0)],
    )
    result = assessment(client.post(SERVICE, json=no_prefetch_request(fhir)))
    assert result["latest"]["valueMgDl"] == 2233
    assert {"reference": "Observation/x1", "reason": "its patient cannot be identified"} in result[
        "excluded"
    ]


# contract v3, "Incomplete is not complete" -------------------------------------------------

FOUNDING_RESULTS = (igm("o1", -5, 5100), igm("o2", 360, 2233))


def outcome_entry(severity):
    return {
        "resource": {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": severity, "code": "incomplete", "diagnostics": "x"}],
        },
        "search": {"mode": "outcome"},
    }


def response_card(response):
    assert response.status_code == 200, response.get_json()
    return next(c for c in response.get_json()["cards"] if "wm-igm-assessment" in c["extension"])


@pytest.mark.parametrize("severity", ["error", "fatal"])
def test_an_error_outcome_in_a_prefetched_search_is_said(client, severity):
    request = hook_request(list(FOUNDING_RESULTS), [statement("m1", "zanubrutinib", 0)])
    request["prefetch"]["observations"]["entry"].append(outcome_entry(severity))
    card = response_card(client.post(SERVICE, json=request))
    assessment = card["extension"]["wm-igm-assessment"]
    assert assessment["unavailable"] == ["observations"]
    assert assessment["category"] == "PR"  # what was read still counts, and is qualified
    assert card["summary"].endswith("; some IgM results not returned")
    assert "Some IgM results were not returned by the FHIR server" in card["detail"]


@pytest.mark.parametrize("severity", ["warning", "information"])
def test_warning_and_information_outcomes_are_ignored(client, severity):
    request = hook_request(list(FOUNDING_RESULTS), [statement("m1", "zanubrutinib", 0)])
    request["prefetch"]["observations"]["entry"].append(outcome_entry(severity))
    card = response_card(client.post(SERVICE, json=request))
    assert "unavailable" not in card["extension"]["wm-igm-assessment"]
    assert "not returned" not in card["summary"]


def test_a_total_above_the_entries_without_a_next_link_is_incomplete(client):
    request = hook_request(list(FOUNDING_RESULTS), [statement("m1", "zanubrutinib", 0)])
    request["prefetch"]["observations"]["total"] = 40
    request["prefetch"]["medicationStatements"]["total"] = 600
    card = response_card(client.post(SERVICE, json=request))
    assessment = card["extension"]["wm-igm-assessment"]
    assert assessment["unavailable"] == ["observations", "medicationStatements"]
    assert "Some medication statements were not returned" in card["detail"]


def test_a_total_at_or_below_the_entries_is_complete(client):
    request = hook_request(list(FOUNDING_RESULTS), [statement("m1", "zanubrutinib", 0)])
    request["prefetch"]["observations"]["total"] = 1  # e.g. an included resource
    card = response_card(client.post(SERVICE, json=request))
    assert "unavailable" not in card["extension"]["wm-igm-assessment"]


def test_an_incomplete_treatment_search_never_reads_as_untreated(client):
    request = hook_request(list(FOUNDING_RESULTS))
    request["prefetch"]["medicationStatements"]["total"] = 5
    card = response_card(client.post(SERVICE, json=request))
    assert card["summary"].startswith("IgM trend, treatment records could not all be read")
    assert "no WM treatment found" not in card["summary"]


def test_a_fetched_search_with_a_short_total_or_an_error_outcome_is_incomplete(fhir, client):
    def observations(request):
        document = bundle(*FOUNDING_RESULTS)
        document["total"] = 3  # a server that stops without a next link
        return fhir_json(document)

    def statements(request):
        document = bundle(statement("m1", "zanubrutinib", 0))
        document["entry"].append(outcome_entry("error"))
        return fhir_json(document)

    fhir.expect_request("/fhir/Observation").respond_with_handler(observations)
    fhir.expect_request("/fhir/MedicationStatement").respond_with_handler(statements)
    for resource_type in ("MedicationRequest", "MedicationAdministration", "Procedure"):
        fhir.expect_request(f"/fhir/{resource_type}").respond_with_json(bundle())
    fhir.expect_request("/fhir/Condition").respond_with_json(bundle())
    card = response_card(client.post(SERVICE, json=no_prefetch_request(fhir)))
    assessment = card["extension"]["wm-igm-assessment"]
    assert sorted(assessment["unavailable"]) == ["medicationStatements", "observations"]
    assert assessment["category"] == "PR"
    assert "some IgM results not returned" in card["summary"]


def test_an_error_outcome_on_a_later_page_is_incomplete(fhir, client):
    second = bundle(FOUNDING_RESULTS[1])
    second["entry"].append(outcome_entry("error"))
    fhir.expect_request("/fhir/page-2").respond_with_json(second)
    request = hook_request(
        [FOUNDING_RESULTS[0]], [statement("m1", "zanubrutinib", 0)], fhirServer=base(fhir)
    )
    request["prefetch"]["observations"] = bundle(
        FOUNDING_RESULTS[0], next_url=fhir.url_for("/fhir/page-2")
    )
    card = response_card(client.post(SERVICE, json=request))
    assessment = card["extension"]["wm-igm-assessment"]
    assert assessment["unavailable"] == ["observations"]
    assert assessment["category"] == "PR"


# contract v3: a medicationReference the prefetch does not hold is read as Medication/{id} ---


def by_reference(rid, reference, start=0):
    record = statement(rid, "zanubrutinib", start)
    del record["medicationCodeableConcept"]
    record["medicationReference"] = {"reference": reference}
    return record


ZANUBRUTINIB = {
    "resourceType": "Medication",
    "id": "med-zanu",
    "code": {
        "coding": [
            {
                "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                "code": "2264794",
                "display": "zanubrutinib 80 MG Oral Capsule",
            }
        ]
    },
}


def test_a_medication_named_by_reference_is_read_from_the_fhir_server(fhir, client):
    fhir.expect_request("/fhir/Medication/med-zanu").respond_with_json(ZANUBRUTINIB)
    request = hook_request(
        list(FOUNDING_RESULTS),
        [by_reference("m1", "Medication/med-zanu")],
        fhirServer=base(fhir),
    )
    assessment = response_card(client.post(SERVICE, json=request))["extension"]["wm-igm-assessment"]
    assert assessment["category"] == "PR" and assessment["regimen"] == ["zanubrutinib"]
    assert [r.path for r, _ in fhir.log] == ["/fhir/Medication/med-zanu"]


def test_an_absolute_reference_on_the_same_server_is_read(fhir, client):
    fhir.expect_request("/fhir/Medication/med-zanu").respond_with_json(ZANUBRUTINIB)
    reference = f"{base(fhir)}/Medication/med-zanu"
    request = hook_request(
        list(FOUNDING_RESULTS), [by_reference("m1", reference)], fhirServer=base(fhir)
    )
    card = response_card(client.post(SERVICE, json=request))
    assert card["extension"]["wm-igm-assessment"]["regimen"] == ["zanubrutinib"]


@pytest.mark.parametrize("where", ["another server", "not found"])
def test_a_medication_that_cannot_be_read_is_never_read_as_no_treatment(fhir, client, where):
    fhir.expect_request("/fhir/Medication/med-zanu").respond_with_json(
        {"resourceType": "OperationOutcome"}, status=404
    )
    reference = (
        "https://other.example.org/fhir/Medication/med-zanu"
        if where == "another server"
        else "Medication/med-zanu"
    )
    request = hook_request(
        list(FOUNDING_RESULTS), [by_reference("m1", reference)], fhirServer=base(fhir)
    )
    card = response_card(client.post(SERVICE, json=request))
    assessment = card["extension"]["wm-igm-assessment"]
    assert card["summary"].startswith("IgM trend, treatment records could not all be read")
    assert any("could not be resolved" in e["reason"] for e in assessment["excluded"])
    if where == "another server":
        assert fhir.log == []  # the same id on another server is another resource


def test_a_medication_in_the_prefetch_is_not_read_again(fhir, client):
    request = hook_request(
        list(FOUNDING_RESULTS), [by_reference("m1", "Medication/med-zanu")], fhirServer=base(fhir)
    )
    request["prefetch"]["medicationStatements"]["entry"].append({"resource": ZANUBRUTINIB})
    card = response_card(client.post(SERVICE, json=request))
    assert card["extension"]["wm-igm-assessment"]["regimen"] == ["zanubrutinib"]
    assert fhir.log == []
