"""`cds-fixture-server --smart`: the SMART App Launch simulator the trend app is tested with.
It must be as strict as a real authorization server where the app could go wrong: PKCE,
single-use codes, the redirect URI, and a FHIR API that needs its token."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from ..smart.test_app import FIXTURES, ehr

__all__ = ["ehr"]
PATIENT = "wm-01-e1-zanubrutinib-pr"
REDIRECT = "http://127.0.0.1:9/smart/app"


def challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize(ehr, verifier="v" * 50, launch=PATIENT, **changes):
    params = {
        "response_type": "code",
        "client_id": "app",
        "redirect_uri": REDIRECT,
        "launch": launch,
        "scope": "launch patient/*.rs",
        "state": "s1",
        "aud": f"{ehr.url}/fhir",
        "code_challenge": challenge(verifier),
        "code_challenge_method": "S256",
        **changes,
    }
    response = requests.get(
        f"{ehr.url}/smart/authorize", params=params, allow_redirects=False, timeout=30
    )
    assert response.status_code == 302
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}


def exchange(ehr, code, verifier="v" * 50, **changes):
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": "app",
        "code_verifier": verifier,
        **changes,
    }
    return requests.post(f"{ehr.url}/smart/token", data=form, timeout=30)


def test_configuration_advertises_an_ehr_launch_with_pkce(ehr):
    config = requests.get(f"{ehr.url}/fhir/.well-known/smart-configuration", timeout=30).json()
    assert "launch-ehr" in config["capabilities"] and "client-public" in config["capabilities"]
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert config["token_endpoint"] == f"{ehr.url}/smart/token"


def test_a_launch_gives_a_token_for_the_launch_patient(ehr):
    answer = authorize(ehr)
    assert answer["state"] == "s1"
    token = exchange(ehr, answer["code"]).json()
    assert token["patient"] == PATIENT and token["token_type"] == "Bearer"
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    search = requests.get(
        f"{ehr.url}/fhir/Observation", params={"patient": PATIENT}, headers=headers, timeout=30
    )
    assert search.status_code == 200 and search.json()["total"] > 0


def test_the_pkce_verifier_must_match(ehr):
    answer = authorize(ehr)
    refused = exchange(ehr, answer["code"], verifier="w" * 50)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"


def test_a_code_is_used_once(ehr):
    answer = authorize(ehr)
    assert exchange(ehr, answer["code"]).status_code == 200
    assert exchange(ehr, answer["code"]).status_code == 400


def test_the_redirect_uri_must_be_the_same(ehr):
    answer = authorize(ehr)
    assert exchange(ehr, answer["code"], redirect_uri="http://127.0.0.1:9/x").status_code == 400


@pytest.mark.parametrize(
    "changes, error",
    [
        ({"launch": "nobody"}, "access_denied"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"aud": "https://elsewhere.example/fhir"}, "invalid_request"),
    ],
)
def test_authorize_refuses_by_redirecting_with_an_error(ehr, changes, error):
    assert authorize(ehr, **changes)["error"] == error


def test_reads_without_a_token_are_served_and_a_sent_token_is_checked(ehr):
    # contract v3: the sandbox reads its FHIR server without a token, from the same base URL
    bare = requests.get(f"{ehr.url}/fhir/Observation", params={"patient": PATIENT}, timeout=30)
    assert bare.status_code == 200 and bare.json()["total"] > 0
    forged = requests.get(
        f"{ehr.url}/fhir/Observation",
        params={"patient": PATIENT},
        headers={"Authorization": "Bearer not-one-of-its-tokens"},
        timeout=30,
    )
    assert forged.status_code == 401
    token = exchange(ehr, authorize(ehr)["code"]).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    other = requests.get(
        f"{ehr.url}/fhir/Observation",
        params={"patient": "wm-02-e2-gram-per-litre"},
        headers=headers,
        timeout=30,
    )
    assert other.status_code == 403
    assert requests.get(f"{ehr.url}/fhir/metadata", timeout=30).status_code == 200


def test_the_capability_statement_advertises_the_oauth_uris(ehr):
    capability = requests.get(f"{ehr.url}/fhir/metadata", timeout=30).json()
    (security,) = [rest["security"] for rest in capability["rest"]]
    (uris,) = [e for e in security["extension"] if e["url"].endswith("/oauth-uris")]
    endpoints = {e["url"]: e["valueUri"] for e in uris["extension"]}
    configuration = requests.get(
        f"{ehr.url}/fhir/.well-known/smart-configuration", timeout=30
    ).json()
    assert endpoints == {
        "authorize": configuration["authorization_endpoint"],
        "token": configuration["token_endpoint"],
    }


def test_the_sandbox_launch_call_returns_a_launch_id(ehr):
    answer = requests.post(
        f"{ehr.url}/fhir/_services/smart/Launch",
        json={"launchUrl": "http://127.0.0.1:9/smart/launch", "parameters": {"patient": PATIENT}},
        timeout=30,
    )
    assert answer.json() == {"launch_id": PATIENT}
    assert answer.headers["Access-Control-Allow-Origin"] == "*"


def test_console_script_with_smart():
    executable = Path(sys.executable).parent / "cds-fixture-server"
    process = subprocess.Popen(
        [str(executable), "--smart", "--port", "0", str(FIXTURES / "bundles")],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        line = process.stdout.readline()
        assert "with a SMART launch simulator" in line
        base = line.split()[3]
        config = requests.get(f"{base}/.well-known/smart-configuration", timeout=30)
        assert config.status_code == 200
        assert "test tool for loopback" in process.stdout.readline()
        assert requests.get(f"{base}/Observation?patient={PATIENT}", timeout=30).status_code == 200
        forged = {"Authorization": "Bearer forged"}
        answer = requests.get(f"{base}/Observation?patient={PATIENT}", headers=forged, timeout=30)
        assert answer.status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=30)
