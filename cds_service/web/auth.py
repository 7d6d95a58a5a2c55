"""CDS Hooks 2.0 authentication: verify the EHR's JWT before anything else is read.

Order (CDS Hooks 2.0 "Trusting CDS Clients"): issuer known -> `aud` is the URL called ->
`exp`/`iat` -> tenant -> signature with the key chosen by `kid` -> `jti` not seen before.
`none` and HMAC algorithms are never accepted. Any failure is `AuthenticationFailed`; its
reason is for the log only (the client gets a generic 401), and never contains the token.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from jwt import PyJWKSet

from ..config import ConfigError
from ..store.sql import SqlStore, StoreUnavailable
from .issuer_keys import FetchedKeys, KeyFetchFailed

# Asymmetric algorithms only: with HMAC the "public" key would be the signing secret.
ALLOWED_ALGORITHMS = frozenset(
    {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
)
DEFAULT_ALGORITHMS = ("ES384", "RS384")  # CDS Hooks 2.0 recommends these
CLOCK_SKEW_SECONDS = 60
DEFAULT_MAX_LIFETIME_SECONDS = 3600


# 9999-12-31T23:59:59Z: a time after it is no time (and would overflow the jti store).
LATEST_TIMESTAMP = 253402300799
_KEY_FAMILIES = {"ES": "EC", "RS": "RSA", "PS": "RSA"}


class AuthenticationFailed(Exception):
    """The request is not from a trusted EHR; the message says why (for the log)."""


_NUMBER = (int, float)
# What each header field and claim must be when present: every one is checked for type
# before it is used (a list for `iss` or `alg` must be a 401, not an exception).
_HEADER_TYPES: dict[str, tuple[type, ...]] = {
    "alg": (str,),
    "kid": (str,),
    "jku": (str,),
    "typ": (str,),
}
_CLAIM_TYPES: dict[str, tuple[type, ...]] = {
    "iss": (str,),
    "aud": (str, list),  # CDS Hooks 2.0: a string or an array of strings
    "exp": _NUMBER,
    "iat": _NUMBER,
    "nbf": _NUMBER,
    "jti": (str,),
    "tenant": (str,),
}


def _check_types(
    fields: Mapping[str, Any], types: Mapping[str, tuple[type, ...]], what: str
) -> None:
    for name, allowed in types.items():
        if name not in fields:
            continue
        value = fields[name]
        if isinstance(value, bool) or not isinstance(value, allowed):
            raise AuthenticationFailed(f"{what} '{name}' has the wrong type")
        if isinstance(value, float) and not math.isfinite(value):
            raise AuthenticationFailed(f"{what} '{name}' is not a finite number")
        if isinstance(value, list) and not all(isinstance(item, str) for item in value):
            raise AuthenticationFailed(f"{what} '{name}' has the wrong type")


@dataclass(frozen=True)
class TrustedIssuer:
    iss: str
    algorithms: tuple[str, ...]
    fhir_servers: tuple[str, ...]
    tenants: tuple[str, ...] = ()
    jwks: PyJWKSet | None = None
    jwks_urls: tuple[str, ...] = ()  # registered JWK Set URLs (a `jku` may name any of them)
    jku_list_url: str | None = None  # a JSON array of further allowed JWK Set URLs
    # contract v3: the SMART authorization and token endpoints (URLs or origins) the trend app
    # may use besides those on its FHIR servers' own origins
    smart_endpoints: tuple[str, ...] = ()

    def allows_fhir_server(self, url: str) -> bool:
        return url.rstrip("/") in {server.rstrip("/") for server in self.fhir_servers}


def _strings(entry: Mapping[str, Any], name: str, where: str) -> tuple[str, ...]:
    value = entry.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: '{name}' must be a list of strings")
    return tuple(value)


def _http_urls(entry: Mapping[str, Any], name: str, where: str) -> tuple[str, ...]:
    """A URL (for `jwks_url`, `jku_list_url`) or a list of them (`jwks_urls`), each http(s)."""
    value = entry.get(name)
    if value is None:
        return ()
    urls = value if name.endswith("s") and isinstance(value, list) else [value]
    for url in urls:
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            kind = "a list of http(s) URLs" if name.endswith("s") else "an http(s) URL"
            raise ConfigError(f"{where}: '{name}' must be {kind}")
    return tuple(urls)


def load_trusted_issuers(path: Path) -> dict[str, TrustedIssuer]:
    """Read CDS_TRUSTED_ISSUERS; a malformed file stops the service with a clear message."""
    where = f"CDS_TRUSTED_ISSUERS ({path})"
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{where}: cannot be read: {error.strerror}") from None
    except ValueError as error:
        raise ConfigError(f"{where}: not valid JSON: {error}") from None
    issuers = document.get("issuers") if isinstance(document, dict) else None
    if not isinstance(issuers, list) or not issuers:
        raise ConfigError(f"{where}: needs a non-empty 'issuers' list")
    trusted: dict[str, TrustedIssuer] = {}
    for index, entry in enumerate(issuers):
        at = f"{where}: issuers[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("iss"), str) or not entry["iss"]:
            raise ConfigError(f"{at}: needs 'iss'")
        algorithms = _strings(entry, "algorithms", at) or DEFAULT_ALGORITHMS
        refused = [a for a in algorithms if a not in ALLOWED_ALGORITHMS]
        if refused:
            raise ConfigError(f"{at}: algorithm(s) {', '.join(refused)} not allowed")
        jwks = None
        if "jwks" in entry:
            try:
                jwks = PyJWKSet.from_dict(entry["jwks"])
            except (jwt.PyJWKSetError, jwt.PyJWKError, TypeError, KeyError, ValueError) as error:
                raise ConfigError(f"{at}: 'jwks' is not a usable JWK Set ({error})") from None
        jwks_urls = _http_urls(entry, "jwks_url", at) + _http_urls(entry, "jwks_urls", at)
        (jku_list_url, *_) = _http_urls(entry, "jku_list_url", at) or (None,)
        if jwks is None and not jwks_urls and jku_list_url is None:
            raise ConfigError(f"{at}: needs 'jwks', 'jwks_url', 'jwks_urls' or 'jku_list_url'")
        if entry["iss"] in trusted:
            raise ConfigError(f"{at}: issuer {entry['iss']!r} is listed twice")
        trusted[entry["iss"]] = TrustedIssuer(
            iss=entry["iss"],
            algorithms=tuple(algorithms),
            fhir_servers=_strings(entry, "fhir_servers", at),
            tenants=_strings(entry, "tenants", at),
            jwks=jwks,
            jwks_urls=tuple(dict.fromkeys(jwks_urls)),
            jku_list_url=jku_list_url,
            smart_endpoints=_http_urls(entry, "smart_endpoints", at),
        )
    return trusted


class Authenticator:
    def __init__(
        self,
        issuers: dict[str, TrustedIssuer],
        seen: SqlStore,
        max_lifetime_seconds: int = DEFAULT_MAX_LIFETIME_SECONDS,
    ) -> None:
        self.issuers = issuers
        self.seen = seen
        self.max_lifetime_seconds = max_lifetime_seconds
        self._fetched = FetchedKeys()

    def authenticate(self, authorization: str | None, audience: str) -> TrustedIssuer:
        """The verified issuer, or AuthenticationFailed (never any other exception)."""
        try:
            return self._authenticate(authorization, audience)
        except (AuthenticationFailed, StoreUnavailable):
            raise  # no store, no replay check: a 503, never a token let through
        except Exception as error:  # a token shaped in a way no check foresaw: still a 401
            raise AuthenticationFailed(f"verification failed ({type(error).__name__})") from None

    def _authenticate(self, authorization: str | None, audience: str) -> TrustedIssuer:
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():  # RFC 7235: any case
            raise AuthenticationFailed("no bearer token")
        token = token.strip()
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise AuthenticationFailed("malformed JWT") from None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise AuthenticationFailed("malformed JWT")
        _check_types(header, _HEADER_TYPES, "header")
        _check_types(claims, _CLAIM_TYPES, "claim")
        issuer = self.issuers.get(claims.get("iss"))  # 1. issuer known
        if issuer is None:
            raise AuthenticationFailed("unknown issuer")
        aud = claims.get("aud")  # 2. the URL called, or an array holding it
        if aud != audience and not (isinstance(aud, list) and audience in aud):
            raise AuthenticationFailed("aud is not the URL called")
        self._check_times(claims)  # 3. exp / iat
        if issuer.tenants and claims.get("tenant") not in issuer.tenants:  # 4. tenant
            raise AuthenticationFailed("tenant not allowed for this issuer")
        key = self._signing_key(issuer, header, token)  # 5. signature
        family = _KEY_FAMILIES[header["alg"][:2]]
        if getattr(key, "key_type", None) != family:
            raise AuthenticationFailed(f"key {header['kid']!r} is not a {family} key")
        try:
            jwt.decode(
                token,
                key.key,  # the raw public key: the header's alg, checked above, decides
                algorithms=[header["alg"]],
                audience=audience,
                issuer=issuer.iss,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["exp", "iat", "jti", "iss", "aud"]},
            )
        except jwt.PyJWTError as error:
            raise AuthenticationFailed(
                f"signature or claims invalid ({type(error).__name__})"
            ) from None
        jti = claims.get("jti")  # 6. not seen before
        if not jti:
            raise AuthenticationFailed("no jti")
        if not self.seen.first_use(issuer.iss, jti, int(claims["exp"])):
            raise AuthenticationFailed("jti already used (replay)")
        return issuer

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        now = time.time()
        exp, iat = claims.get("exp"), claims.get("iat")
        if exp is None:
            raise AuthenticationFailed("no exp")
        if not 0 < exp <= LATEST_TIMESTAMP:
            raise AuthenticationFailed("exp out of range")
        if exp < now - CLOCK_SKEW_SECONDS:
            raise AuthenticationFailed("expired")
        if iat is None:
            raise AuthenticationFailed("no iat")
        if not 0 < iat <= LATEST_TIMESTAMP:
            raise AuthenticationFailed("iat out of range")
        if iat > now + CLOCK_SKEW_SECONDS:
            raise AuthenticationFailed("iat in the future")
        # contract v3: a token valid for years is a stolen-key risk; its jti would also be
        # kept as long (CDS_MAX_TOKEN_LIFETIME_SECONDS).
        if exp - iat > self.max_lifetime_seconds:
            raise AuthenticationFailed("exp is too far after iat (token lifetime too long)")

    def _signing_key(self, issuer: TrustedIssuer, header: Mapping[str, Any], token: str) -> Any:
        algorithm = header.get("alg")
        if algorithm not in ALLOWED_ALGORITHMS or algorithm not in issuer.algorithms:
            raise AuthenticationFailed(f"algorithm {algorithm!r} not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthenticationFailed("no kid")
        jku = header.get("jku")
        if jku is not None and not self._jku_allowed(issuer, jku):
            raise AuthenticationFailed("jku is not one of the issuer's JWKS URLs")
        if issuer.jwks is not None:  # keys written into the issuer file come first
            for key in issuer.jwks.keys:
                if key.key_id == kid:
                    return key
        urls: tuple[str, ...] = issuer.jwks_urls if jku is None else (jku,)
        problems = []
        for url in urls:
            try:
                return self._fetched.signing_key(url, kid)
            except KeyFetchFailed as error:
                problems.append(str(error))
        if problems:
            raise AuthenticationFailed(f"kid not found at the JWKS URL ({'; '.join(problems)})")
        raise AuthenticationFailed("unknown kid")

    def _jku_allowed(self, issuer: TrustedIssuer, jku: str) -> bool:
        if jku in issuer.jwks_urls:
            return True
        if issuer.jku_list_url is None:
            return False
        return jku in self._fetched.jku_list(issuer.jku_list_url)
