"""Configuration, read once from the environment into an immutable `Settings`.

Every variable is documented in the README with its default. Nothing else in the
package reads `os.environ`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

CRITERIA_PROFILES = ("iwwm6", "iwwm6-strict", "iwwm6-trial")
# SMART App Launch 2.0 scopes: the EHR launch, and read access to what the app reads (contract
# v3: no `openid fhirUser` unless configured; a launcher with no Practitioner to pick loops on
# its login page when asked for them).
DEFAULT_SMART_SCOPES = (
    "launch patient/Patient.rs patient/Observation.rs "
    "patient/MedicationStatement.rs patient/MedicationRequest.rs "
    "patient/MedicationAdministration.rs patient/Procedure.rs patient/Medication.rs "
    "patient/Condition.rs"
)


class ConfigError(ValueError):
    """A configuration value is unusable; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    criteria: str = "iwwm6"
    # Absolute URLs in cards are built from this when set (behind a proxy the request's
    # own host is not what the EHR called); otherwise from the incoming request.
    public_base_url: str | None = None
    feedback_db: Path = field(default_factory=lambda: Path("data") / "feedback.sqlite3")
    max_body_bytes: int = 5 * 1024 * 1024
    # CDS Hooks asks for answers in about 500 ms; EHRs give up after a few seconds, so the
    # whole FHIR fetch must end well before that.
    fhir_deadline_seconds: float = 3.0
    fhir_connect_timeout_seconds: float = 1.0
    fhir_max_pages: int = 20
    # At least the number of prefetch keys, so that one request fetches them all at once.
    fhir_max_concurrency: int = 8
    log_level: str = "INFO"
    # Testing only: honour extension["wm-igm-as-of"] in a request as "today", so fixtures
    # replayed against a running service give the answers they were written for.
    allow_as_of: bool = False
    # JSON file of trusted EHR issuers (keys, algorithms, FHIR servers). None: no
    # authentication, for development on loopback only.
    trusted_issuers: Path | None = None
    # Browser origins allowed by CORS besides loopback ones when authentication is off (for
    # the CDS Hooks sandbox in development); with authentication on, any origin (the JWT
    # decides). Without this, any web page could use a loopback service to fetch URLs.
    cors_origins: tuple[str, ...] = ()
    # Serve a non-loopback address without authentication (never with real data).
    allow_unauthenticated: bool = False
    # A client must send its request line, headers and body within this time: slow
    # clients cannot hold the server's threads.
    client_read_timeout_seconds: float = 10.0
    # The unit cards show IgM in (the card extension is always mg/dL).
    display_unit: str = "mg/dL"
    # postgresql://… : a store shared by several instances; None: the SQLite file above.
    database_url: str | None = None
    # The IgM trend SMART app: its client id at the EHR. None: no app, no `smart` card link.
    smart_client_id: str | None = None
    smart_scopes: str = DEFAULT_SMART_SCOPES
    # Issued-card records are written in batches at most this often (0: with each request).
    # They serve the feedback report only; see issued_cards.py.
    card_record_seconds: float = 0.5
    # contract v3: with authentication off, launch `iss` values allowed besides loopback ones.
    smart_issuers: tuple[str, ...] = ()
    # contract v3: /metrics answers loopback clients, and others only with this bearer token.
    metrics_token: str | None = None
    # contract v3: the launch state's signing keys, one per line (the first signs, all
    # verify); None: a key made at start-up in an owner-only file beside the store.
    secret_key_file: Path | None = None
    # contract v3: the largest `exp - iat` of an EHR's JWT that is accepted.
    max_token_lifetime_seconds: int = 3600

    def with_overrides(self, overrides: Mapping[str, Any]) -> Settings:
        return replace(self, **dict(overrides))


def _positive_number(env: Mapping[str, str], name: str, default: float, kind: type) -> Any:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a {kind.__name__}") from None
    if value <= 0:
        raise ConfigError(f"{name}={raw!r} must be greater than zero")
    return value


def _non_negative_number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if not 0 <= value <= 60:
        raise ConfigError(f"{name}={raw!r} must be between 0 and 60 seconds")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"{name}={raw!r} is not a yes/no value")


def settings_from_env(env: Mapping[str, str] | None = None) -> Settings:
    """Build `Settings` from environment variables (`os.environ` by default)."""
    env = os.environ if env is None else env
    defaults = Settings()
    criteria = env.get("CDS_CRITERIA", defaults.criteria) or defaults.criteria
    if criteria not in CRITERIA_PROFILES:
        raise ConfigError(f"CDS_CRITERIA={criteria!r} is not one of {', '.join(CRITERIA_PROFILES)}")
    base_url = (env.get("CDS_PUBLIC_BASE_URL") or "").rstrip("/") or None
    if base_url and not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"CDS_PUBLIC_BASE_URL={base_url!r} must be an http(s) URL")
    feedback_db = env.get("CDS_FEEDBACK_DB")
    return Settings(
        criteria=criteria,
        public_base_url=base_url,
        feedback_db=Path(feedback_db) if feedback_db else defaults.feedback_db,
        max_body_bytes=_positive_number(env, "CDS_MAX_BODY_BYTES", defaults.max_body_bytes, int),
        fhir_deadline_seconds=_positive_number(
            env, "CDS_FHIR_DEADLINE_SECONDS", defaults.fhir_deadline_seconds, float
        ),
        fhir_connect_timeout_seconds=_positive_number(
            env, "CDS_FHIR_CONNECT_TIMEOUT_SECONDS", defaults.fhir_connect_timeout_seconds, float
        ),
        fhir_max_pages=_positive_number(env, "CDS_FHIR_MAX_PAGES", defaults.fhir_max_pages, int),
        fhir_max_concurrency=_positive_number(
            env, "CDS_FHIR_MAX_CONCURRENCY", defaults.fhir_max_concurrency, int
        ),
        log_level=_log_level(env, defaults.log_level),
        allow_as_of=_flag(env, "CDS_ALLOW_AS_OF"),
        trusted_issuers=Path(env["CDS_TRUSTED_ISSUERS"])
        if env.get("CDS_TRUSTED_ISSUERS")
        else None,
        cors_origins=_origins(env, "CDS_CORS_ORIGINS"),
        allow_unauthenticated=_flag(env, "CDS_ALLOW_UNAUTHENTICATED"),
        client_read_timeout_seconds=_positive_number(
            env, "CDS_CLIENT_READ_TIMEOUT_SECONDS", defaults.client_read_timeout_seconds, float
        ),
        display_unit=_display_unit(env, defaults.display_unit),
        database_url=_database_url(env),
        card_record_seconds=_non_negative_number(
            env, "CDS_CARD_RECORD_SECONDS", defaults.card_record_seconds
        ),
        smart_client_id=_smart_client_id(env),
        smart_scopes=_smart_scopes(env, defaults.smart_scopes),
        smart_issuers=_smart_issuers(env),
        metrics_token=_metrics_token(env),
        secret_key_file=Path(env["CDS_SECRET_KEY_FILE"])
        if env.get("CDS_SECRET_KEY_FILE")
        else None,
        max_token_lifetime_seconds=_positive_number(
            env, "CDS_MAX_TOKEN_LIFETIME_SECONDS", defaults.max_token_lifetime_seconds, int
        ),
    )


def _smart_issuers(env: Mapping[str, str]) -> tuple[str, ...]:
    found = []
    for raw in (env.get("CDS_SMART_ISSUERS") or "").split():
        if not raw.startswith(("https://", "http://")) or any(c in raw for c in "?#\\@"):
            raise ConfigError(
                "CDS_SMART_ISSUERS must be space-separated FHIR base URLs (http or https, "
                "no query, fragment or user info)"
            )
        found.append(raw.rstrip("/"))
    return tuple(found)


def _metrics_token(env: Mapping[str, str]) -> str | None:
    raw = (env.get("CDS_METRICS_TOKEN") or "").strip()
    if not raw:
        return None
    if len(raw) < 16 or not _PRINTABLE.fullmatch(raw):
        # The token is never repeated in a message.
        raise ConfigError("CDS_METRICS_TOKEN must be 16 to 200 printable characters")
    return raw


_PRINTABLE = re.compile(r"[\x21-\x7e]{1,200}")
_SCOPES = re.compile(r"[\x21-\x7e]{1,200}( [\x21-\x7e]{1,200}){0,63}")


def _smart_client_id(env: Mapping[str, str]) -> str | None:
    raw = (env.get("CDS_SMART_CLIENT_ID") or "").strip()
    if not raw:
        return None
    if not _PRINTABLE.fullmatch(raw):
        raise ConfigError("CDS_SMART_CLIENT_ID must be printable ASCII without spaces")
    return raw


def _smart_scopes(env: Mapping[str, str], default: str) -> str:
    raw = " ".join((env.get("CDS_SMART_SCOPES") or default).split())
    if not _SCOPES.fullmatch(raw) or "launch" not in raw.split():
        raise ConfigError("CDS_SMART_SCOPES must be space-separated scopes including 'launch'")
    return raw


def _database_url(env: Mapping[str, str]) -> str | None:
    url = (env.get("CDS_DATABASE_URL") or "").strip()
    if not url:
        return None
    if not url.startswith(("postgresql://", "postgres://")):
        # The URL may hold a password: it is never repeated in a message.
        raise ConfigError("CDS_DATABASE_URL must be a postgresql:// URL")
    return url


DISPLAY_UNITS = ("mg/dL", "g/L")


def _display_unit(env: Mapping[str, str], default: str) -> str:
    raw = (env.get("CDS_DISPLAY_UNIT") or default).strip()
    for unit in DISPLAY_UNITS:
        if raw.lower() == unit.lower():
            return unit
    raise ConfigError(f"CDS_DISPLAY_UNIT={raw!r} is not one of {', '.join(DISPLAY_UNITS)}")


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(env: Mapping[str, str], default: str) -> str:
    level = (env.get("CDS_LOG_LEVEL") or default).strip().upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"CDS_LOG_LEVEL={level!r} is not one of {', '.join(LOG_LEVELS)}")
    return level


def _origins(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    origins = tuple(o.strip().rstrip("/") for o in (env.get(name) or "").split(",") if o.strip())
    for origin in origins:
        if not origin.startswith(("http://", "https://")) or "/" in origin.split("://", 1)[1]:
            raise ConfigError(f"{name}: {origin!r} is not an origin (scheme://host[:port])")
    return origins
