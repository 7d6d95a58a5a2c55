"""The HTTP layer: translate requests into service calls and results into responses."""

from __future__ import annotations

import hmac
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from werkzeug.exceptions import (
    HTTPException,
    MisdirectedRequest,
    NotFound,
    RequestEntityTooLarge,
    UnsupportedMediaType,
)

from cards.caveat_pages import render_caveat_page

from .. import __version__
from ..fhir import strict_json
from ..fhir.documents import loads_request
from ..fhir.outcomes import INCOMPLETE, NOT_FOUND, SECURITY, operation_outcome
from ..fhir.prefetch import PrefetchUnavailable
from ..fhir.url_policy import is_loopback_host
from ..hooks.discovery import SERVICES, discovery_document
from ..hooks.service import CallStats, CdsHooksService, FeedbackLimited, FeedbackTooEarly
from ..hooks.validation import InvalidBody, parse_json
from ..store.sql import StoreUnavailable
from . import metrics
from .auth import AuthenticationFailed
from .request_log import log_request

cds = Blueprint("cds", __name__)
pages = Blueprint("pages", __name__)

_JSON_TYPES = ("application/json", "application/fhir+json")


def _service() -> CdsHooksService:
    return current_app.extensions["wm_igm_service"]


def public_base_url() -> str:
    """Where the EHR called us: the JWT audience and the base of card links. Without
    CDS_PUBLIC_BASE_URL it comes from the request only on loopback, where the developer is
    the client; elsewhere a Host header would let any caller choose it."""
    configured = current_app.config["CDS_SETTINGS"].public_base_url
    if configured:
        return configured
    if not is_loopback_host(request.host):
        raise MisdirectedRequest(
            "this service answers on loopback addresses only until CDS_PUBLIC_BASE_URL is set"
        )
    if not request.root_path:
        # The same text as `url_root` (which also percent-decodes, for nothing on a loopback
        # host), at a tenth of its cost: it is asked on every call.
        return f"{request.scheme}://{request.host}"
    return request.url_root.rstrip("/")


def loopback_only() -> Response | None:
    """With authentication off, serve loopback addresses only (unless explicitly allowed):
    the same rule whether started by `cds-service` or by gunicorn over the app factory."""
    settings = current_app.config["CDS_SETTINGS"]
    if settings.trusted_issuers is not None or settings.allow_unauthenticated:
        return None
    if request.path == "/healthz":
        return None
    if is_loopback_host(request.environ.get("SERVER_NAME", "")):
        return None
    return _outcome(
        403,
        "authentication is off: this service serves loopback addresses only "
        "(set CDS_TRUSTED_ISSUERS)",
        code=SECURITY,
    )


def _json_body(loads: Callable[[bytes], Any] = strict_json.loads) -> Any:
    if request.mimetype not in _JSON_TYPES and not request.mimetype.endswith("+json"):
        raise UnsupportedMediaType("Content-Type must be application/json")
    body = read_body(request, current_app.config["CDS_SETTINGS"].max_body_bytes)
    return parse_json(body, loads)


_READ_CHUNK = 64 * 1024


def read_body(req: Any, limit: int) -> bytes:
    """The whole body, counted as it is read: a body over `limit` is a 413, never silently
    cut. A chunked body declares no length; the server marks its end (WSGI
    `wsgi.input_terminated`), and it is read to that end. A declared length is read exactly
    (WSGI forbids reading past it)."""
    length = req.content_length
    if length is not None and length > limit:
        raise RequestEntityTooLarge()
    if length is None and not req.environ.get("wsgi.input_terminated"):
        return b""
    stream = req.environ["wsgi.input"]
    wanted = length if length is not None else limit + 1
    chunks: list[bytes] = []
    size = 0
    while size < wanted:
        chunk = stream.read(min(_READ_CHUNK, wanted - size))
        if not chunk:
            break
        size += len(chunk)
        chunks.append(chunk)
    if size > limit:
        raise RequestEntityTooLarge()
    return b"".join(chunks)


def _outcome(status: int, message: str, code: str = "invalid", where: str | None = None):
    response = jsonify(operation_outcome(message, code=code, expression=where))
    response.status_code = status
    return response


@cds.before_request
def authenticate() -> Response | None:
    """Every CDS endpoint needs the EHR's JWT when trusted issuers are configured."""
    authenticator = current_app.extensions["wm_igm_auth"]
    g.issuer = None
    if authenticator is None or request.method == "OPTIONS":
        return None
    audience = public_base_url() + request.path
    try:
        g.issuer = authenticator.authenticate(request.headers.get("Authorization"), audience)
    except StoreUnavailable as error:
        return _store_unavailable(error)  # the replay check cannot run: never let it through
    except AuthenticationFailed as error:
        g.auth_failure = str(error)
        response = _outcome(401, "authentication required", code=SECURITY)
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    return None


def _store_unavailable(error: StoreUnavailable) -> Response:
    g.failure_detail = str(error)
    response = _outcome(503, "the service's store is unavailable: retry shortly", code="transient")
    response.headers["Retry-After"] = "5"
    return response


def _issuer() -> str | None:
    """The verified issuer's `iss`, or None with authentication off."""
    issuer = getattr(g, "issuer", None)
    return None if issuer is None else issuer.iss


def _allowed_fhir_servers() -> tuple[str, ...] | None:
    """None: any (authentication off); otherwise the verified issuer's servers."""
    if current_app.extensions["wm_igm_auth"] is None:
        return None
    return g.issuer.fhir_servers


@cds.get("/cds-services")
def discovery() -> Response:
    return jsonify(discovery_document())


@cds.post("/cds-services/<service_id>")
def call_service(service_id: str) -> Response:
    if service_id not in SERVICES:
        raise NotFound("there is no such CDS service")
    stats: CallStats = g.stats
    try:
        body = _json_body(loads_request)
        today = current_app.extensions["wm_igm_today"]()
        result = _service().evaluate(
            body, today, public_base_url(), stats, _allowed_fhir_servers(), service_id,
            _issuer(),
        )  # fmt: skip
    except InvalidBody as error:
        return _outcome(400, str(error), where=error.location)
    except PrefetchUnavailable as error:
        g.failure_detail = error.detail  # what went wrong upstream: the log only
        return _outcome(412, str(error), code=INCOMPLETE)
    except StoreUnavailable as error:
        return _store_unavailable(error)
    return jsonify(result)


@cds.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str) -> Response:
    if service_id not in SERVICES:
        raise NotFound("there is no such CDS service")
    try:
        result = _service().record_feedback(_json_body(), service_id, _issuer())
    except InvalidBody as error:
        return _outcome(400, str(error), where=error.location)
    except FeedbackLimited as error:
        response = _outcome(429, str(error), code="throttled")
        response.headers["Retry-After"] = "60"
        return response
    except FeedbackTooEarly as error:
        response = _outcome(503, str(error), code="transient")  # nothing was written
        response.headers["Retry-After"] = "1"
        return response
    except StoreUnavailable as error:
        return _store_unavailable(error)  # nothing was written: the client retries
    return jsonify(result)


@pages.get("/healthz")
def healthz() -> Response:
    """Liveness: the process answers. No patient data; names the version."""
    return jsonify({"status": "ok", "version": __version__})


@pages.get("/readyz")
def readyz() -> Response:
    """Readiness: the configuration loaded and the store answers (503 with the reason)."""
    problem = _service().store_problem()
    if problem:
        response = jsonify({"status": "not ready", "reason": problem, "version": __version__})
        response.status_code = 503
        return response
    return jsonify({"status": "ready", "version": __version__})


@pages.get("/metrics")
def metrics_endpoint() -> Response:
    """contract v3: loopback clients, and others only with `CDS_METRICS_TOKEN`."""
    token = current_app.config["CDS_SETTINGS"].metrics_token
    scheme, _, given = (request.headers.get("Authorization") or "").partition(" ")
    with_token = (
        token is not None
        and scheme.lower() == "bearer"
        and hmac.compare_digest(given.strip().encode(), token.encode())
    )
    if not with_token and not is_loopback_host(request.remote_addr or ""):
        response = _outcome(401 if token else 403, "metrics are for the operator", code=SECURITY)
        if token:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type)


@pages.get("/favicon.ico")
def favicon() -> Response:
    return Response(status=204)  # browsers ask on every caveat page: no 404, no log line


@pages.get("/caveats/<code>")
def caveat_page(code: str) -> Response:
    try:
        html = render_caveat_page(code)
    except KeyError:
        raise NotFound("there is no such caveat") from None
    return Response(html, mimetype="text/html")


_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Paths worth no log line: a browser's icon request, the load balancer's probes, scraping.
_QUIET_PATHS = frozenset({"/favicon.ico", "/metrics"})


def start_timer() -> None:
    state = g._get_current_object()  # one context lookup, not one per attribute
    state.started = time.perf_counter()
    state.stats = CallStats()
    # From the WSGI environ: Werkzeug's `headers.get` raises and catches for an absent header.
    given = request.environ.get("HTTP_X_REQUEST_ID", "")
    # A caller's id is kept when it is a plain token; otherwise one is made.
    state.request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def log_response(response: Response) -> Response:
    state = g._get_current_object()  # one context lookup each, not one per attribute
    req = request._get_current_object()
    stats: CallStats = getattr(state, "stats", None) or CallStats()
    started = getattr(state, "started", time.perf_counter())
    request_id = getattr(state, "request_id", None) or uuid.uuid4().hex
    response.headers["X-Request-ID"] = request_id
    response.headers["X-Service-Version"] = __version__
    if stats.today is not None:
        response.headers["X-Assessed-As-Of"] = stats.today.isoformat()
    endpoint = req.url_rule.rule if req.url_rule else "(no route)"
    elapsed = time.perf_counter() - started
    metrics.REQUESTS.labels(
        endpoint, metrics.method_label(req.method), str(response.status_code)
    ).inc()
    metrics.LATENCY.labels(endpoint).observe(elapsed)
    if response.status_code == 412:
        metrics.PRECONDITION_FAILED.inc()
    if getattr(state, "auth_failure", None):
        metrics.AUTH_FAILURES.labels(metrics.auth_reason(state.auth_failure)).inc()
    for kind, category in stats.issued:
        metrics.CARDS.labels(kind, category or "none").inc()
    if stats.fetched:
        metrics.FHIR_FETCHES.labels("ok").inc(len(stats.fetched))
    if stats.unavailable:
        metrics.FHIR_FETCHES.labels("unavailable").inc(len(stats.unavailable))
    if getattr(state, "failure_detail", None):
        metrics.FHIR_FETCHES.labels("failed").inc()
    if stats.fetch_seconds is not None and (stats.fetched or stats.unavailable):
        metrics.FHIR_FETCH_LATENCY.observe(stats.fetch_seconds)
    if req.path in _QUIET_PATHS:
        return response
    level = logging.WARNING if response.status_code >= 400 else logging.INFO
    if response.status_code >= 400 and response.is_json:
        # Non-2xx answers show as "Could not get a response" in the CDS Hooks sandbox, so
        # the reason must be in our own log. OperationOutcome texts carry no patient data.
        issues = (response.get_json(silent=True) or {}).get("issue") or [{}]
        reason = (
            getattr(state, "auth_failure", None)
            or getattr(state, "failure_detail", None)
            or issues[0].get("diagnostics")
        )
    else:
        # A degraded answer says in the log what could not be read, and why.
        reason = "; ".join(stats.problems) or None
    # A path that matched nothing, or named no service, is the client's text: not logged.
    path = req.path
    if response.status_code == 404:
        path = req.url_rule.rule if req.url_rule else "(no route)"
    log_request(
        level,
        "request",
        requestId=request_id,
        method=req.method,
        path=path,
        status=response.status_code,
        duration_ms=round(elapsed * 1000, 1),
        hook=stats.hook,
        hookInstance=stats.hook_instance,
        cards=stats.cards,
        fetched=",".join(stats.fetched) or None,
        unavailable=",".join(stats.unavailable) or None,
        excluded=stats.excluded or None,
        otherPatientResources=stats.other_patient or None,
        reason=reason,
    )
    return response


def http_error(error: HTTPException) -> Response:
    response = _outcome(
        error.code or 500,
        error.description or error.name,
        code=NOT_FOUND if error.code == 404 else "invalid",
    )
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def unexpected_error(error: Exception) -> Response:
    current_app.logger.exception("unhandled error")
    return _outcome(500, "internal error", code="exception")
