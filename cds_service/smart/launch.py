"""The SMART App Launch 2.0 EHR launch of the trend app, done on the server.

A public client with PKCE (S256): `discover` reads the EHR's authorization server from
`{iss}/.well-known/smart-configuration` (cached per `iss`), `begin` builds the authorize
redirect, `finish` exchanges the code for an access token. Every call to the EHR has one
overall deadline that closes its socket (`fhir.bounded_http`); which endpoints may be called
at all is the caller's policy (`web.smart_policy`). The state between the two (state, PKCE
verifier, `iss`, the token endpoint) travels in a signed cookie that expires after
`LAUNCH_SECONDS`, so any worker of any instance holding the same keys can finish a launch.
The access token is returned to the caller for one request and is never logged, stored or
sent to the browser.

https://hl7.org/fhir/smart-app-launch/app-launch.html
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from ..fhir import strict_json
from ..fhir.bounded_http import BoundedSession, OutboundError
from ..fhir.url_policy import UrlRefused, is_loopback_host, origin

# A launch left longer than this (at the EHR's login, say) must start again.
LAUNCH_SECONDS = 600
# contract v3: every call to the EHR ends within this, its socket closed (a trickled answer
# included); each issuer's SMART configuration is kept this long.
OUTBOUND_SECONDS = 5.0
CONFIGURATION_SECONDS = 600
_CACHED_ISSUERS = 256
_MAX_ANSWER_BYTES = 256 * 1024
_PATIENT_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_SALT = "wm-igm-smart-launch"
# Browsers keep cookies up to about 4 KB: a longer state would be dropped without a word.
MAX_COOKIE_BYTES = 3800


class LaunchError(Exception):
    """The launch cannot go on; the message is for the user (never a token or a value the
    EHR sent), `status` the HTTP status of the page that says so."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class LaunchState:
    iss: str
    state: str
    verifier: str
    token_endpoint: str


@dataclass(frozen=True)
class Authorization:
    """What the token endpoint granted. `access_token` is for this request only."""

    access_token: str
    patient: str
    scope: str


def _endpoint(value: Any, what: str) -> str:
    """An endpoint from the configuration: absolute, unambiguous, https unless loopback."""
    if not isinstance(value, str) or not value:
        raise LaunchError(f"the EHR's SMART configuration has no {what}", 502)
    try:
        scheme, host, _ = origin(value)
    except UrlRefused:
        raise LaunchError(f"the EHR's SMART configuration has an unusable {what}", 502) from None
    if scheme != "https" and not is_loopback_host(host):
        raise LaunchError(f"the EHR's {what} is not https", 502)
    return value


def _call(url: str, method: str = "GET", data: dict[str, str] | None = None) -> tuple[int, Any]:
    """One call to the EHR, ended by `OUTBOUND_SECONDS` whatever the EHR does (a trickled
    answer included): its status and JSON body (None if it is not JSON)."""
    with BoundedSession(OUTBOUND_SECONDS) as session:
        answer = session.call(
            method, url, _MAX_ANSWER_BYTES, {"Accept": "application/json"}, data=data
        )
    try:
        document = strict_json.loads(answer.body)
    except ValueError:
        document = None
    return answer.status, document


@dataclass(frozen=True)
class Endpoints:
    authorize: str
    token: str


class ConfigurationCache:
    """Each `iss`'s SMART endpoints, kept `CONFIGURATION_SECONDS` (what failed is not kept:
    the next launch asks again)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._found: dict[str, tuple[float, Endpoints]] = {}

    def get(self, iss: str) -> Endpoints | None:
        with self._lock:
            found = self._found.get(iss)
        if found is None or time.monotonic() - found[0] > CONFIGURATION_SECONDS:
            return None
        return found[1]

    def put(self, iss: str, endpoints: Endpoints) -> None:
        with self._lock:
            if len(self._found) >= _CACHED_ISSUERS:
                self._found.clear()  # bounded: iss values are few, but come from requests
            self._found[iss] = (time.monotonic(), endpoints)


CONFIGURATIONS = ConfigurationCache()


def discover(iss: str, cache: ConfigurationCache = CONFIGURATIONS) -> Endpoints:
    """`iss`'s authorization and token endpoints, from its SMART configuration."""
    known = cache.get(iss)
    if known is not None:
        return known
    url = iss.rstrip("/") + "/.well-known/smart-configuration"
    try:
        status, document = _call(url)
    except OutboundError:
        raise LaunchError("the EHR's FHIR server could not be reached", 502) from None
    if status != 200 or not isinstance(document, dict):
        raise LaunchError("the EHR's FHIR server gives no SMART configuration", 502)
    methods = document.get("code_challenge_methods_supported")
    if isinstance(methods, list) and "S256" not in methods:
        raise LaunchError("the EHR does not support PKCE with S256, which this app needs", 502)
    endpoints = Endpoints(
        _endpoint(document.get("authorization_endpoint"), "authorization endpoint"),
        _endpoint(document.get("token_endpoint"), "token endpoint"),
    )
    cache.put(iss, endpoints)
    return endpoints


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def begin(
    iss: str,
    launch: str,
    client_id: str,
    scopes: str,
    redirect_uri: str,
    endpoints: Endpoints,
) -> tuple[str, LaunchState]:
    """The authorize URL to redirect the browser to, and the state to keep until it is back."""
    state = LaunchState(
        iss=iss,
        state=secrets.token_urlsafe(24),
        verifier=secrets.token_urlsafe(48),  # 64 characters, within PKCE's 43-128
        token_endpoint=endpoints.token,
    )
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "launch": launch,
            "scope": scopes,
            "state": state.state,
            "aud": iss,
            "code_challenge": _challenge(state.verifier),
            "code_challenge_method": "S256",
        }
    )
    authorize = endpoints.authorize
    separator = "&" if "?" in authorize else "?"
    return f"{authorize}{separator}{query}", state


def finish(
    state: LaunchState,
    returned_state: str | None,
    code: str | None,
    client_id: str,
    redirect_uri: str,
) -> Authorization:
    """Exchange the authorization code for an access token (with the PKCE verifier). The
    state's token endpoint must have been checked by the caller."""
    if not returned_state or not secrets.compare_digest(returned_state, state.state):
        raise LaunchError("this page does not belong to the launch in progress: launch again")
    if not code:
        raise LaunchError("the EHR sent no authorization code: launch again")
    try:
        status, document = _call(
            state.token_endpoint,
            method="POST",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "client_id": client_id,
                "code_verifier": state.verifier,
            },
        )
    except OutboundError:
        raise LaunchError("the EHR's authorization server could not be reached", 502) from None
    if status != 200 or not isinstance(document, dict):
        raise LaunchError(f"the EHR did not grant access (HTTP {status})", 502)
    token, patient = document.get("access_token"), document.get("patient")
    if not isinstance(token, str) or not token:
        raise LaunchError("the EHR's answer has no access token", 502)
    if not isinstance(patient, str) or not _PATIENT_ID.fullmatch(patient):
        raise LaunchError("the EHR did not say which patient to show (no patient context)", 502)
    token_type = document.get("token_type")
    if token_type is not None and str(token_type).lower() != "bearer":  # RFC 6749: any case
        raise LaunchError("the EHR's answer has no bearer token", 502)
    scope = document.get("scope")
    return Authorization(token, patient, scope if isinstance(scope, str) else "")


class StateCookie:
    """The launch state, signed and time-limited, as a cookie value."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        """`keys`: the signing key first, then older ones that still verify."""
        # itsdangerous signs with the last key of a list and verifies with every one.
        self._serializer = URLSafeTimedSerializer(list(reversed(keys)), salt=_SALT)

    def dump(self, state: LaunchState) -> str:
        value = self._serializer.dumps(asdict(state))
        if len(value) > MAX_COOKIE_BYTES:
            raise LaunchError("the EHR's addresses are too long to keep during the launch", 502)
        return value

    def load(self, value: str | None) -> LaunchState:
        if not value:
            raise LaunchError(
                "the launch has expired or was not started here: launch the app again from the EHR"
            )
        try:
            fields = self._serializer.loads(value, max_age=LAUNCH_SECONDS)
        except SignatureExpired:
            raise LaunchError(
                "the launch took too long and has expired: launch the app again from the EHR"
            ) from None
        except BadSignature:
            raise LaunchError("the launch state is not valid: launch the app again") from None
        try:
            return LaunchState(**fields)
        except TypeError:
            raise LaunchError("the launch state is not valid: launch the app again") from None
