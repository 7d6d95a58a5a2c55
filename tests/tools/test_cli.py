"""`cds-service` start-up checks: no unauthenticated service off loopback, clear config errors."""

from __future__ import annotations

import pytest

from cds_service.fhir.url_policy import is_loopback_host
from cds_service.tools.cli import serve_main


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "ehr-gateway.local"])
def test_refuses_non_loopback_without_authentication(host, monkeypatch, capsys):
    monkeypatch.delenv("CDS_TRUSTED_ISSUERS", raising=False)
    assert serve_main(["--host", host, "--port", "0"]) == 2
    assert "refusing to serve" in capsys.readouterr().err


@pytest.mark.parametrize(
    "host, loopback",
    [
        ("127.0.0.1", True),
        ("127.8.9.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("192.168.1.5", False),
    ],
)
def test_loopback_detection(host, loopback):
    assert is_loopback_host(host) is loopback


def test_malformed_issuers_file_stops_start_up(tmp_path, monkeypatch, capsys):
    path = tmp_path / "issuers.json"
    path.write_text('{"issuers": [{"iss": "https://ehr.example.org"}]}')
    monkeypatch.setenv("CDS_TRUSTED_ISSUERS", str(path))
    assert serve_main(["--port", "0"]) == 2
    assert "needs 'jwks', 'jwks_url'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("CDS_CRITERIA", "iwwm7", "CDS_CRITERIA='iwwm7' is not one of"),
        ("CDS_FHIR_DEADLINE_SECONDS", "soon", "is not a float"),
        ("CDS_MAX_BODY_BYTES", "-5", "must be greater than zero"),
        ("CDS_PUBLIC_BASE_URL", "cds.example.org", "must be an http(s) URL"),
        ("CDS_ALLOW_AS_OF", "maybe", "is not a yes/no value"),
    ],
)
def test_bad_settings_are_named(name, value, message, monkeypatch, capsys):
    monkeypatch.setenv(name, value)
    assert serve_main(["--port", "0"]) == 2
    assert message in capsys.readouterr().err
