"""A SMART App Launch simulator for `cds-fixture-server --smart` (contract "Command line").

Enough of an EHR's authorization server to test the trend app offline, in CI and in a real
browser: `{base}/fhir/.well-known/smart-configuration`; an authorize endpoint that approves
at once and redirects back with a code (or with `error=access_denied` for a `launch` that is
no fixture patient); a token endpoint that checks the PKCE verifier (S256) and returns an
opaque token whose `patient` is the `launch` value; and `POST {base}/fhir/_services/smart/Launch`,
the call the CDS Hooks sandbox makes before it opens a `smart` card link. Its FHIR API
answers reads without a token, as the plain fixture server does (the CDS Hooks sandbox reads
its FHIR server without one, and uses one base URL for its reads, the Launch call and `iss`);
a request that sends a token must send one of its own, and is then served only that token's
patient. Test tool for loopback: codes and tokens live in memory, and it approves everyone.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, jsonify, redirect, request

CODE_SECONDS = 120
TOKEN_SECONDS = 3600
_OPEN_PATHS = ("/fhir/metadata", "/fhir/.well-known/smart-configuration", "/fhir/_services/")


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    response = jsonify({"error": error, "error_description": description})
    response.status_code = status
    return response


class SmartSimulator:
    """Codes and tokens of one fixture server; `tokens` is read by tests (who was given what)."""

    def __init__(self, patients: set[str], owner: Callable[[str, str], str | None]) -> None:
        self.patients = patients
        self._owner = owner  # (resource type, id) -> the patient it belongs to
        self._lock = threading.Lock()
        self._codes: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}

    def register(self, app: Flask) -> None:
        app.add_url_rule(
            "/fhir/.well-known/smart-configuration", view_func=self.configuration, methods=["GET"]
        )
        app.add_url_rule("/smart/authorize", view_func=self.authorize, methods=["GET"])
        app.add_url_rule("/smart/token", view_func=self.token, methods=["POST"])
        app.add_url_rule(
            "/fhir/_services/smart/Launch", view_func=self.sandbox_launch, methods=["POST"]
        )
        app.before_request(self.require_token)
        app.extensions["smart_simulator"] = self

    def _base(self) -> str:
        return request.host_url.rstrip("/")

    def endpoints(self) -> dict[str, str]:
        base = self._base()
        return {
            "authorize": f"{base}/smart/authorize",
            "token": f"{base}/smart/token",
        }

    def configuration(self) -> Response:
        base = self._base()
        return jsonify(
            {
                "issuer": f"{base}/fhir",
                "authorization_endpoint": f"{base}/smart/authorize",
                "token_endpoint": f"{base}/smart/token",
                "capabilities": [
                    "launch-ehr",
                    "client-public",
                    "context-ehr-patient",
                    "permission-v2",
                ],
                "code_challenge_methods_supported": ["S256"],
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code"],
                "scopes_supported": ["launch", "openid", "fhirUser", "patient/*.rs"],
            }
        )

    def authorize(self) -> Response:
        params = request.args
        redirect_uri = params.get("redirect_uri", "")
        if not redirect_uri.startswith(("http://", "https://")):
            return _oauth_error("invalid_request", "redirect_uri is required")
        state = params.get("state", "")

        def back(**answer: str) -> Response:
            separator = "&" if "?" in redirect_uri else "?"
            return redirect(f"{redirect_uri}{separator}{urlencode({**answer, 'state': state})}")

        problems = [
            params.get("response_type") != "code" and "response_type must be code",
            not params.get("client_id") and "client_id is required",
            params.get("code_challenge_method") != "S256" and "PKCE S256 is required",
            not params.get("code_challenge") and "code_challenge is required",
            params.get("aud", "").rstrip("/") != f"{self._base()}/fhir"
            and "aud is not this server",
        ]
        problem = next((p for p in problems if p), None)
        if problem:
            return back(error="invalid_request", error_description=problem)
        patient = params.get("launch", "")
        if patient not in self.patients:
            return back(error="access_denied", error_description="no such launch")
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = {
                "patient": patient,
                "challenge": params["code_challenge"],
                "redirect_uri": redirect_uri,
                "client_id": params["client_id"],
                "scope": params.get("scope", ""),
                "expires": time.monotonic() + CODE_SECONDS,
            }
        return back(code=code)

    def token(self) -> Response:
        form = request.form
        if form.get("grant_type") != "authorization_code":
            return _oauth_error("unsupported_grant_type", "authorization_code only")
        with self._lock:
            granted = self._codes.pop(form.get("code", ""), None)  # a code is used once
        if granted is None or granted["expires"] < time.monotonic():
            return _oauth_error("invalid_grant", "unknown, used or expired code")
        if form.get("redirect_uri") != granted["redirect_uri"]:
            return _oauth_error("invalid_grant", "redirect_uri differs from the authorize call")
        if form.get("client_id") != granted["client_id"]:
            return _oauth_error("invalid_client", "client_id differs from the authorize call")
        verifier = form.get("code_verifier", "")
        if not verifier or not secrets.compare_digest(_challenge(verifier), granted["challenge"]):
            return _oauth_error("invalid_grant", "the PKCE code_verifier does not match")
        token = secrets.token_urlsafe(32)
        with self._lock:
            self.tokens[token] = {
                "patient": granted["patient"],
                "expires": time.monotonic() + TOKEN_SECONDS,
            }
        response = jsonify(
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": TOKEN_SECONDS,
                "scope": granted["scope"],
                "patient": granted["patient"],
                "need_patient_banner": True,
            }
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    def sandbox_launch(self) -> Response:
        body = request.get_json(silent=True) or {}
        parameters = body.get("parameters") if isinstance(body, dict) else None
        patient = parameters.get("patient") if isinstance(parameters, dict) else None
        if not isinstance(patient, str) or patient not in self.patients:
            return _oauth_error("invalid_request", "parameters.patient is no fixture patient")
        return jsonify({"launch_id": patient})

    def require_token(self) -> Response | None:
        path = request.path
        if not path.startswith("/fhir/") or path.startswith(_OPEN_PATHS):
            return None
        if request.method == "OPTIONS":
            return None
        authorization = request.headers.get("Authorization")
        if authorization is None:
            return None  # contract v3: anonymous reads, as the sandbox makes them
        scheme, _, token = authorization.partition(" ")
        with self._lock:
            grant = self.tokens.get(token) if scheme.lower() == "bearer" else None
        if grant is None or grant["expires"] < time.monotonic():
            return _fhir_outcome(401, "a valid access token from this server is required")
        parts = path.removeprefix("/fhir/").split("/")
        if len(parts) >= 2 and parts[1] != "_search":  # a read: only the token's patient's
            if self._owner(parts[0], parts[1]) not in (None, grant["patient"]):
                return _fhir_outcome(403, "not this token's patient")
            return None
        params = request.form if request.method == "POST" else request.args
        wanted = (params.get("patient") or params.get("subject") or "").removeprefix("Patient/")
        if wanted != grant["patient"]:
            return _fhir_outcome(403, "searches must name this token's patient")
        return None


def _fhir_outcome(status: int, text: str) -> Response:
    response = jsonify(
        {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "forbidden", "diagnostics": text}],
        }
    )
    response.status_code = status
    return response
