"""The HTTP contract: endpoints, status codes, error bodies, CORS (contract.md)."""

from __future__ import annotations

import json

import pytest

from cds_service.hooks.discovery import PREFETCH_TEMPLATES

from ..builders import hook_request, igm, statement

SERVICE = "/cds-services/wm-igm-response"


def outcome_text(response) -> str:
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"][0]["diagnostics"]


def test_discovery_lists_the_service_with_contract_prefetch(client):
    response = client.get("/cds-services")
    assert response.status_code == 200
    services = {s["id"]: s for s in response.get_json()["services"]}
    assert set(services) == {
        "wm-igm-response",
        "wm-anti-cd20-order-check",
        "wm-anti-cd20-order-select",
    }
    service = services["wm-igm-response"]
    assert service["hook"] == "patient-view"
    assert service["title"] and service["description"]
    assert "90 days before" in service["usageRequirements"]
    assert service["prefetch"] == {
        "observations": "Observation?patient={{context.patientId}}&code=http://loinc.org|2472-9,"
        "http://loinc.org|33358-3,http://loinc.org|51435-6,http://loinc.org|25700-6,"
        "http://loinc.org|3128-6&_sort=-date&_count=500",
        "medicationStatements": "MedicationStatement?patient={{context.patientId}}",
        "medicationRequests": "MedicationRequest?patient={{context.patientId}}",
        "medicationAdministrations": "MedicationAdministration?patient={{context.patientId}}",
        "procedures": "Procedure?patient={{context.patientId}}",
        "conditions": (
            "Condition?patient={{context.patientId}}&clinical-status=active,recurrence,relapse"
        ),
    }
    assert service["prefetch"] == PREFETCH_TEMPLATES
    # contract "Order check": observations (the same template) and procedures; v3:
    # conditions and the medication history, for evidence of WM
    for order_id, hook in (
        ("wm-anti-cd20-order-check", "order-sign"),
        ("wm-anti-cd20-order-select", "order-select"),
    ):
        order = services[order_id]
        assert order["hook"] == hook and order["title"] and order["usageRequirements"]
        assert order["prefetch"] == {
            key: service["prefetch"][key]
            for key in (
                "observations",
                "procedures",
                "conditions",
                "medicationStatements",
                "medicationRequests",
                "medicationAdministrations",
            )
        }


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok" and body["version"]
    assert response.headers["X-Service-Version"] == body["version"]


def test_complete_prefetch_without_wm_data_gives_empty_card_list(client):
    response = client.post(SERVICE, json=hook_request())
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}


def test_unknown_service_is_404_with_outcome(client):
    response = client.post("/cds-services/nope", json=hook_request())
    assert response.status_code == 404
    # the body names the problem, never the caller's input
    assert outcome_text(response) == "there is no such CDS service"


def test_wrong_method_is_405_with_allow_header(client):
    response = client.get(SERVICE)
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert outcome_text(response)


def test_non_json_content_type_is_415(client):
    response = client.post(SERVICE, data="hello", content_type="text/plain")
    assert response.status_code == 415
    assert "application/json" in outcome_text(response)


def test_missing_content_type_is_415(client):
    response = client.post(SERVICE, data=b"{}")
    assert response.status_code == 415


@pytest.mark.parametrize(
    "body, expected",
    [
        (b"{not json", "not valid JSON"),
        (b'{"hook": NaN}', "NaN"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
    ],
)
def test_malformed_json_is_400(client, body, expected):
    response = client.post(SERVICE, data=body, content_type="application/json")
    assert response.status_code == 400
    assert expected in outcome_text(response)


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda r: r.pop("hookInstance"), "hookInstance"),
        (lambda r: r.update(hook="order-sign"), "hook"),
        (lambda r: r["context"].pop("patientId"), "patientId"),
        (lambda r: r["context"].update(patientId="../Patient/x"), "context.patientId"),
        (lambda r: r.update(hookInstance="not-a-uuid"), "hookInstance"),
        (
            lambda r: r.update(
                fhirAuthorization={
                    "access_token": "t",
                    "token_type": "Bearer",
                    "expires_in": 300,
                    "scope": "patient/*.read",
                    "subject": "cds",
                }
            ),
            "fhirServer",
        ),
        (lambda r: r["prefetch"].update(observations=[1, 2]), "prefetch.observations"),
        (lambda r: r.update(context="p1"), "context"),
    ],
)
def test_schema_error_names_the_field(client, mutate, field):
    request = hook_request()
    mutate(request)
    response = client.post(SERVICE, json=request)
    assert response.status_code == 400
    assert field in outcome_text(response)


@pytest.mark.parametrize(
    "value, location, expected",
    [
        ([1, 2], "prefetch.observations", "not an array"),
        ("Bundle", "prefetch.observations", "not a string"),
        (7, "prefetch.observations", "not a number"),
        ({"entry": []}, "prefetch.observations.resourceType", "resource type"),
        ({"resourceType": "bundle"}, "prefetch.observations.resourceType", "resource type"),
        ({"resourceType": ["Bundle"]}, "prefetch.observations.resourceType", "resource type"),
    ],
)
def test_a_prefetch_value_that_is_not_a_resource_is_400(client, value, location, expected):
    request = hook_request()
    request["prefetch"]["observations"] = value
    response = client.post(SERVICE, json=request)
    assert response.status_code == 400
    body = response.get_json()
    assert body["issue"][0]["expression"] == [location]
    assert expected in body["issue"][0]["diagnostics"]


def test_prefetch_keys_the_service_did_not_ask_for_are_ignored(client):
    request = hook_request()
    request["prefetch"]["somethingElse"] = [1, 2]
    request["prefetch"][""] = None
    assert client.post(SERVICE, json=request).status_code == 200


def test_body_over_the_limit_is_413(make_app):
    client = make_app(max_body_bytes=1000).test_client()
    request = hook_request([igm(f"o{i}", i, 1000) for i in range(30)])
    response = client.post(SERVICE, data=json.dumps(request), content_type="application/json")
    assert response.status_code == 413
    assert outcome_text(response)


def test_unknown_request_members_are_tolerated(client):
    request = hook_request(extension={"com.example.x": {"a": 1}}, somethingNew=True)
    assert client.post(SERVICE, json=request).status_code == 200


def _founding_card(response):
    assert response.status_code == 200, response.get_json()
    (card,) = [c for c in response.get_json()["cards"] if "wm-igm-assessment" in c["extension"]]
    return card["extension"]["wm-igm-assessment"]


FOUNDING = ([igm("o1", -5, 5100), igm("o2", 360, 2233)], [statement("m1", "zanubrutinib", 0)])


def test_optional_fields_sent_as_null_are_absent(client):
    # contract v3: some clients send optional members as JSON null
    request = hook_request(*FOUNDING, fhirServer=None, fhirAuthorization=None, extension=None)
    request["context"]["encounterId"] = None
    assert _founding_card(client.post(SERVICE, json=request))["category"] == "PR"


def test_a_required_field_sent_as_null_is_named(client):
    request = hook_request(*FOUNDING)
    request["context"]["patientId"] = None
    response = client.post(SERVICE, json=request)
    assert response.status_code == 400
    assert outcome_text(response) == "context: 'patientId' is required"


@pytest.mark.parametrize("token_type", ["Bearer", "bearer", "BEARER"])
def test_the_token_type_is_case_insensitive(client, token_type):
    request = hook_request(*FOUNDING, fhirServer="https://ehr.example.org/fhir")
    request["fhirAuthorization"] = {
        "access_token": "abc",
        "token_type": token_type,
        "expires_in": 300,
        "scope": "patient/Observation.rs",
        "subject": "wm-igm-cds",
    }
    assert _founding_card(client.post(SERVICE, json=request))["category"] == "PR"


def test_null_prefetch_means_no_data(client):
    request = hook_request()
    request["prefetch"] = {key: None for key in PREFETCH_TEMPLATES}
    response = client.post(SERVICE, json=request)
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}


def test_missing_prefetch_without_fhir_server_is_412(client):
    request = hook_request([igm("o1", -5, 5100)], [statement("m1", "ibrutinib", 0)])
    del request["prefetch"]["observations"]
    response = client.post(SERVICE, json=request)
    assert response.status_code == 412
    text = outcome_text(response)
    assert "observations" in text and "no FHIR server" in text


def test_operation_outcome_prefetch_without_server_is_412(client):
    request = hook_request()
    request["prefetch"]["observations"] = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "forbidden", "diagnostics": "denied"}],
    }
    response = client.post(SERVICE, json=request)
    assert response.status_code == 412
    assert "observations" in outcome_text(response)
    assert "denied" not in outcome_text(response)  # the client's text is not copied


def test_an_operation_outcome_for_another_key_degrades_not_blanks(client):
    request = hook_request([igm("o1", -5, 5100), igm("o2", 360, 2233)])
    request["prefetch"]["procedures"] = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "forbidden", "diagnostics": "denied"}],
    }
    response = client.post(SERVICE, json=request)
    assert response.status_code == 200
    card = response.get_json()["cards"][0]  # the response card comes first
    assert card["extension"]["wm-igm-assessment"]["unavailable"] == ["procedures"]
    assert "Procedures could not be read: plasmapheresis was not checked." in card["detail"]


@pytest.mark.parametrize("path", ["/cds-services", SERVICE, SERVICE + "/feedback"])
def test_cors_preflight_allows_authorization(make_app, path):
    # With authentication off the sandbox origin must be configured (CDS_CORS_ORIGINS).
    client = make_app(cors_origins=("https://sandbox.cds-hooks.org",)).test_client()
    response = client.options(path, headers=preflight("https://sandbox.cds-hooks.org"))
    assert response.status_code == 200
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert response.headers["Access-Control-Allow-Origin"] == "https://sandbox.cds-hooks.org"


def preflight(origin):
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }


@pytest.mark.parametrize(
    "origin, allowed",
    [
        ("http://127.0.0.1:3000", True),
        ("http://localhost:8080", True),
        ("http://[::1]:5173", True),
        ("https://sandbox.cds-hooks.org", False),
        ("https://evil.example", False),
        ("http://127.0.0.1.evil.example", False),
    ],
)
def test_without_authentication_only_loopback_pages_may_call(client, origin, allowed):
    # Any web page in the developer's browser could otherwise use the loopback service to
    # make it fetch URLs (finding 10 of the security review).
    response = client.options(SERVICE, headers=preflight(origin))
    assert (response.headers.get("Access-Control-Allow-Origin") == origin) is allowed


def test_cards_link_to_the_configured_public_base_url(make_app):
    client = make_app(
        public_base_url="https://cds.example.org/wm", allow_unauthenticated=True
    ).test_client()
    request = hook_request(
        [igm("o1", -5, 5100), igm("o2", 360, 2233)], [statement("m1", "zanubrutinib", 0)]
    )
    response = client.post(SERVICE, json=request, base_url="http://10.0.0.5:8080")
    links = [link["url"] for link in response.get_json()["cards"][0]["links"]]
    assert "https://cds.example.org/wm/caveats/btki-discordance" in links


def test_on_loopback_cards_link_to_the_request_host_by_default(client):
    request = hook_request(
        [igm("o1", -5, 5100), igm("o2", 360, 2233)], [statement("m1", "zanubrutinib", 0)]
    )
    response = client.post(SERVICE, json=request, base_url="http://127.0.0.1:9090")
    links = [link["url"] for link in response.get_json()["cards"][0]["links"]]
    assert "http://127.0.0.1:9090/caveats/btki-discordance" in links


def test_without_a_public_base_url_another_host_cannot_choose_the_links(make_app):
    # A Host header would otherwise choose the card links (and, with authentication on,
    # the JWT audience): finding 10 of the security review.
    client = make_app(allow_unauthenticated=True).test_client()
    request = hook_request([igm("o1", -5, 5100)], [statement("m1", "zanubrutinib", 0)])
    response = client.post(SERVICE, json=request, base_url="https://attacker.example:8443")
    assert response.status_code == 421
    assert "CDS_PUBLIC_BASE_URL" in outcome_text(response)
    assert "attacker" not in response.get_data(as_text=True)


def test_without_authentication_a_non_loopback_address_is_refused(client):
    response = client.post(SERVICE, json=hook_request(), base_url="http://10.0.0.5:8080")
    assert response.status_code == 403
    assert "loopback" in outcome_text(response)
    assert client.get("/healthz", base_url="http://10.0.0.5:8080").status_code == 200


def test_request_log_line_has_no_token_or_patient_data(client, caplog):
    request = hook_request(
        [igm("o1", -5, 5100), igm("o2", 360, 2233)], [statement("m1", "zanubrutinib", 0)]
    )
    request["fhirServer"] = "http://127.0.0.1:9/fhir"
    request["fhirAuthorization"] = {
        "access_token": "SECRET-TOKEN-123",
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "cds-service",
    }
    with caplog.at_level("INFO", logger="cds_service"):
        assert client.post(SERVICE, json=request).status_code == 200
    lines = [r for r in caplog.records if r.name == "cds_service.requests"]
    assert len(lines) == 1
    fields = lines[0].fields
    assert fields["hookInstance"] == request["hookInstance"]
    assert fields["status"] == 200 and fields["cards"] == 2 and "duration_ms" in fields
    text = caplog.text + json.dumps(fields)
    for secret in ("SECRET-TOKEN-123", "5100", "2233", "p1", "zanubrutinib"):
        assert secret not in text
