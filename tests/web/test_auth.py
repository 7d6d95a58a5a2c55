"""CDS Hooks JWT verification (cds-hooks.md "Security"): each rule, and the fhirServer
allowlist. Keys are made here with `cryptography`; tokens are signed with PyJWT."""

from __future__ import annotations

import base64
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pytest_httpserver import HTTPServer

from cds_service.config import ConfigError
from cds_service.web.auth import load_trusted_issuers

from ..builders import founding_request, hook_request, record_issued

ISS = "https://ehr.example.org"
# Registered but unreachable (loopback, refused): tests never leave this machine.
JWKS_URL = "http://127.0.0.1:9/.well-known/jwks.json"
BASE = "http://localhost"
SERVICE = "/cds-services/wm-igm-response"
EC_KEY = ec.generate_private_key(ec.SECP384R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = ec.generate_private_key(ec.SECP384R1())


def public_jwk(private_key, kid, alg):
    jwk = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(private_key.public_key()))
    return {**jwk, "kid": kid, "alg": alg, "use": "sig"}


def issuers_file(tmp_path, **overrides):
    issuer = {
        "iss": ISS,
        "jwks": {
            "keys": [public_jwk(EC_KEY, "ec-1", "ES384"), public_jwk(RSA_KEY, "rsa-1", "RS384")]
        },
        "jwks_url": JWKS_URL,
        "fhir_servers": ["https://ehr.example.org/fhir"],
    }
    issuer.update(overrides)
    path = tmp_path / "issuers.json"
    path.write_text(json.dumps({"issuers": [issuer]}))
    return path


def token(aud=BASE + SERVICE, key=EC_KEY, alg="ES384", kid="ec-1", headers=None, **claims):
    now = int(time.time())
    payload = {"iss": ISS, "aud": aud, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())}
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    header = {"kid": kid, "typ": "JWT", **(headers or {})}
    return jwt.encode(payload, key, algorithm=alg, headers=header)


@pytest.fixture
def secured(make_app, tmp_path):
    return make_app(trusted_issuers=issuers_file(tmp_path)).test_client()


def post(client, bearer, request=None, path=SERVICE):
    headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
    return client.post(path, json=request or hook_request(), headers=headers)


def test_valid_es384_and_rs384_tokens_are_accepted(secured):
    assert post(secured, token()).status_code == 200
    assert post(secured, token(key=RSA_KEY, alg="RS384", kid="rsa-1")).status_code == 200


def test_discovery_and_feedback_need_a_token_too(secured):
    assert secured.get("/cds-services").status_code == 401
    ok = secured.get(
        "/cds-services", headers={"Authorization": f"Bearer {token(aud=BASE + '/cds-services')}"}
    )
    assert ok.status_code == 200
    # a card issued to this EHR (contract v3: feedback only for this service's cards)
    (card,) = record_issued(secured.application.extensions["wm_igm_store"], 1, issuer=ISS)
    feedback = {
        "feedback": [
            {
                "card": card,
                "outcome": "overridden",
                "overrideReason": {"userComment": "x"},
                "outcomeTimestamp": "2026-11-24T10:00:00Z",
            }
        ]
    }
    assert secured.post(SERVICE + "/feedback", json=feedback).status_code == 401
    good = secured.post(
        SERVICE + "/feedback",
        json=feedback,
        headers={"Authorization": f"Bearer {token(aud=BASE + SERVICE + '/feedback')}"},
    )
    assert good.status_code == 200


def test_health_caveat_pages_and_preflight_stay_open(secured):
    assert secured.get("/healthz").status_code == 200
    assert secured.get("/caveats/no-baseline").status_code == 200
    preflight = secured.options(
        SERVICE,
        headers={
            "Origin": "https://sandbox.cds-hooks.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status_code == 200


def hs256_with_public_key():
    pem = EC_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": "ec-1"}
    now = int(time.time())
    payload = {"iss": ISS, "aud": BASE + SERVICE, "exp": now + 300, "iat": now, "jti": "h"}
    import hashlib
    import hmac

    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def alg_none():
    def b64(data):
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    now = int(time.time())
    payload = {"iss": ISS, "aud": BASE + SERVICE, "exp": now + 300, "iat": now, "jti": "n"}
    return f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': 'ec-1'})}.{b64(payload)}."


@pytest.mark.parametrize(
    "bearer, logged",
    [
        (None, "no bearer token"),
        ("not.a.jwt", "malformed JWT"),
        (lambda: token(aud="https://attacker.example/cds-services/wm-igm-response"), "aud is not"),
        (lambda: token(exp=int(time.time()) - 3600), "expired"),
        (lambda: token(iat=int(time.time()) + 3600), "iat in the future"),
        (lambda: token(iss="https://unknown.example"), "unknown issuer"),
        (lambda: token(kid="nope"), "kid not found"),
        (lambda: token(key=OTHER_KEY), "InvalidSignatureError"),
        (alg_none, "algorithm 'none' not allowed"),
        (hs256_with_public_key, "algorithm 'HS256' not allowed"),
        (lambda: token(headers={"jku": "https://attacker.example/jwks.json"}), "jku is not"),
        (lambda: token(jti=None), "MissingRequiredClaimError"),
        (lambda: token(key=RSA_KEY, alg="RS256", kid="rsa-1"), "algorithm 'RS256' not allowed"),
    ],
)
def test_rejected_tokens_get_a_generic_401(secured, bearer, logged, caplog):
    value = bearer() if callable(bearer) else bearer
    with caplog.at_level("INFO", logger="cds_service"):
        response = post(secured, value)
    assert response.status_code == 401
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["diagnostics"] == "authentication required"
    assert response.headers["WWW-Authenticate"] == "Bearer"
    (line,) = [r for r in caplog.records if r.name == "cds_service.requests"]
    assert logged in line.fields["reason"]  # the reason goes to the log, not to the client
    if value:
        assert value not in caplog.text


def test_replayed_jti_is_refused_across_restart(make_app, tmp_path):
    path = issuers_file(tmp_path)
    once = token()
    assert post(make_app(trusted_issuers=path).test_client(), once).status_code == 200
    assert post(make_app(trusted_issuers=path).test_client(), once).status_code == 401


def test_jku_equal_to_the_registered_url_is_accepted(secured):
    good = token(headers={"jku": JWKS_URL})
    assert post(secured, good).status_code == 200


def test_tenant_is_checked_when_configured(make_app, tmp_path):
    client = make_app(trusted_issuers=issuers_file(tmp_path, tenants=["clinic-a"])).test_client()
    assert post(client, token(tenant="clinic-a")).status_code == 200
    assert post(client, token(tenant="clinic-b")).status_code == 401
    assert post(client, token()).status_code == 401


def test_audience_uses_the_public_base_url_behind_a_proxy(make_app, tmp_path):
    client = make_app(
        trusted_issuers=issuers_file(tmp_path), public_base_url="https://cds.example.org/wm"
    ).test_client()
    assert post(client, token()).status_code == 401
    assert post(client, token(aud="https://cds.example.org/wm" + SERVICE)).status_code == 200


def test_keys_from_the_issuers_jwks_url(make_app, tmp_path):
    server = HTTPServer(host="127.0.0.1")
    server.start()
    try:
        url = server.url_for("/jwks.json")
        server.expect_request("/jwks.json").respond_with_json(
            {"keys": [public_jwk(EC_KEY, "remote-1", "ES384")]}
        )
        path = tmp_path / "issuers.json"
        path.write_text(json.dumps({"issuers": [{"iss": ISS, "jwks_url": url}]}))
        client = make_app(trusted_issuers=path).test_client()
        assert post(client, token(kid="remote-1", headers={"jku": url})).status_code == 200
        assert post(client, token(kid="remote-1")).status_code == 200
        assert post(client, token(kid="absent")).status_code == 401
    finally:
        server.clear()
        server.stop()


def request_needing_fetch(fhir_server):
    return founding_request(fhir_server, missing=("observations",))


def test_fhir_server_not_listed_for_the_issuer_is_never_contacted(make_app, tmp_path, fhir):
    fhir.expect_request("/fhir/Observation").respond_with_json(
        founding_request()["prefetch"]["observations"]
    )
    client = make_app(trusted_issuers=issuers_file(tmp_path)).test_client()
    response = post(client, token(), request_needing_fetch(fhir.url_for("/fhir")))
    assert response.status_code == 412
    assert fhir.log == []  # not one request reached it
    allowed = make_app(
        trusted_issuers=issuers_file(tmp_path, fhir_servers=[fhir.url_for("/fhir")])
    ).test_client()
    response = post(allowed, token(), request_needing_fetch(fhir.url_for("/fhir") + "/"))
    assert response.status_code == 200
    assert len(fhir.log) == 1


@pytest.mark.parametrize(
    "content, message",
    [
        ("{", "not valid JSON"),
        ('{"issuers": []}', "non-empty 'issuers'"),
        ('{"issuers": [{"jwks": {"keys": []}}]}', "needs 'iss'"),
        ('{"issuers": [{"iss": "x"}]}', "needs 'jwks', 'jwks_url'"),
        (
            '{"issuers": [{"iss": "x", "jwks_url": "https://x/j", "algorithms": ["HS256"]}]}',
            "HS256 not allowed",
        ),
        (
            '{"issuers": [{"iss": "x", "jwks_url": "https://x/j", "algorithms": ["none"]}]}',
            "none not allowed",
        ),
        ('{"issuers": [{"iss": "x", "jwks": {"keys": "no"}}]}', "not a usable JWK Set"),
        ('{"issuers": [{"iss": "x", "jwks_url": "file:///etc/passwd"}]}', "http(s) URL"),
    ],
)
def test_malformed_issuers_file_stops_the_service(make_app, tmp_path, content, message):
    path = tmp_path / "issuers.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_trusted_issuers(path)
    with pytest.raises(ConfigError):
        make_app(trusted_issuers=path)


# contract v3, CDS Hooks conformance ---------------------------------------------------------


def test_aud_as_an_array_holding_the_url_called_is_accepted(secured):
    assert post(secured, token(aud=[BASE + SERVICE])).status_code == 200
    assert post(secured, token(aud=["https://other.example/x", BASE + SERVICE])).status_code == 200


@pytest.mark.parametrize(
    "aud",
    [
        ["https://attacker.example/cds-services/wm-igm-response"],
        [],
        [BASE + SERVICE + "/"],
        [[BASE + SERVICE]],
        [BASE + SERVICE, 7],
    ],
)
def test_aud_arrays_without_the_url_called_are_refused(secured, aud):
    assert post(secured, token(aud=aud)).status_code == 401


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "bEaReR"])
def test_the_bearer_scheme_is_case_insensitive(secured, scheme):
    response = secured.post(
        SERVICE, json=hook_request(), headers={"Authorization": f"{scheme} {token()}"}
    )
    assert response.status_code == 200


@pytest.mark.parametrize("value", ["Basic abc", "Bearer", "Bearer ", "Bearerx abc", ""])
def test_other_schemes_and_empty_tokens_are_refused(secured, value):
    response = secured.post(SERVICE, json=hook_request(), headers={"Authorization": value})
    assert response.status_code == 401


def _serve_jwks(server, path, *keys):
    server.expect_request(path).respond_with_json({"keys": list(keys)})
    return server.url_for(path)


def test_several_jwks_urls_per_issuer(make_app, tmp_path, fhir):
    first = _serve_jwks(fhir, "/a/jwks.json", public_jwk(EC_KEY, "a-1", "ES384"))
    second = _serve_jwks(fhir, "/b/jwks.json", public_jwk(OTHER_KEY, "b-1", "ES384"))
    path = tmp_path / "issuers.json"
    path.write_text(json.dumps({"issuers": [{"iss": ISS, "jwks_urls": [first, second]}]}))
    client = make_app(trusted_issuers=path).test_client()
    assert post(client, token(kid="a-1", headers={"jku": first})).status_code == 200
    assert post(client, token(key=OTHER_KEY, kid="b-1", headers={"jku": second})).status_code == 200
    assert post(client, token(key=OTHER_KEY, kid="b-1")).status_code == 200  # no jku: any
    # a key served at one URL is not taken from a token that names the other
    assert post(client, token(kid="a-1", headers={"jku": second})).status_code == 401


def test_jku_from_the_issuers_jku_list(make_app, tmp_path, fhir):
    listed = _serve_jwks(fhir, "/listed/jwks.json", public_jwk(EC_KEY, "l-1", "ES384"))
    unlisted = _serve_jwks(fhir, "/unlisted/jwks.json", public_jwk(EC_KEY, "u-1", "ES384"))
    fhir.expect_request("/jku-list.json").respond_with_json([listed])
    path = tmp_path / "issuers.json"
    entry = {"iss": ISS, "jku_list_url": fhir.url_for("/jku-list.json")}
    path.write_text(json.dumps({"issuers": [entry]}))
    client = make_app(trusted_issuers=path).test_client()
    assert post(client, token(kid="l-1", headers={"jku": listed})).status_code == 200
    assert post(client, token(kid="u-1", headers={"jku": unlisted})).status_code == 401
    assert post(client, token(kid="l-1")).status_code == 401  # no jku, no registered URL
    # the list is read once and cached: a second token does not fetch it again
    list_reads = [r for r, _ in fhir.log if r.path == "/jku-list.json"]
    assert len(list_reads) == 1
    assert post(client, token(kid="l-1", headers={"jku": listed})).status_code == 200
    assert len([r for r, _ in fhir.log if r.path == "/jku-list.json"]) == 1


def test_an_unreadable_jku_list_lets_no_new_jku_in(make_app, tmp_path, fhir):
    listed = _serve_jwks(fhir, "/listed/jwks.json", public_jwk(EC_KEY, "l-1", "ES384"))
    fhir.expect_request("/jku-list.json").respond_with_data("down", status=503)
    path = tmp_path / "issuers.json"
    entry = {"iss": ISS, "jku_list_url": fhir.url_for("/jku-list.json")}
    path.write_text(json.dumps({"issuers": [entry]}))
    client = make_app(trusted_issuers=path).test_client()
    assert post(client, token(kid="l-1", headers={"jku": listed})).status_code == 401
    assert not [r for r, _ in fhir.log if r.path == "/listed/jwks.json"]  # never contacted


def test_a_token_valid_for_longer_than_the_cap_is_refused(make_app, tmp_path):
    # contract v3: CDS_MAX_TOKEN_LIFETIME_SECONDS (default 3600); a token valid ten years
    # ahead was accepted before
    now = int(time.time())
    secured = make_app(trusted_issuers=issuers_file(tmp_path)).test_client()
    assert post(secured, token(iat=now, exp=now + 3600)).status_code == 200
    assert post(secured, token(iat=now, exp=now + 3601)).status_code == 401
    assert post(secured, token(iat=now, exp=now + 10 * 365 * 86400)).status_code == 401
    strict = make_app(
        trusted_issuers=issuers_file(tmp_path), max_token_lifetime_seconds=300
    ).test_client()
    assert post(strict, token(iat=now, exp=now + 600)).status_code == 401
    assert post(strict, token(iat=now, exp=now + 300)).status_code == 200
