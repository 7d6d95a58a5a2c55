"""Prometheus metrics (contract v2 `/metrics`): no patient data, no ids, bounded labels.

Under gunicorn every worker writes its samples to `PROMETHEUS_MULTIPROC_DIR` (set by the
gunicorn configuration before any worker starts) and `/metrics` sums them; without it (tests,
a single process) the default registry is used.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter(
    "cds_requests_total", "HTTP requests by endpoint and status", ["endpoint", "method", "status"]
)
LATENCY = Histogram(
    "cds_request_duration_seconds",
    "HTTP request latency by endpoint",
    ["endpoint"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CARDS = Counter("cds_cards_total", "Cards returned, by kind and category", ["kind", "category"])
FHIR_FETCHES = Counter(
    "cds_fhir_fetches_total", "Prefetch keys fetched from FHIR servers, by outcome", ["outcome"]
)
FHIR_FETCH_LATENCY = Histogram(
    "cds_fhir_fetch_duration_seconds",
    "Time spent completing the prefetch from the FHIR server, per request",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10),
)
PRECONDITION_FAILED = Counter("cds_412_total", "Answers 412: observations could not be had")
AUTH_FAILURES = Counter("cds_auth_failures_total", "Refused JWTs, by reason", ["reason"])

# Auth failure messages name keys and claims; the metric gets one of these fixed reasons.
_AUTH_REASONS = (
    ("no bearer", "no-token"),
    ("malformed", "malformed"),
    ("wrong type", "malformed"),
    ("finite", "malformed"),
    ("unknown issuer", "unknown-issuer"),
    ("aud", "audience"),
    ("exp", "expired"),
    ("iat", "expired"),
    ("tenant", "tenant"),
    ("algorithm", "algorithm"),
    ("jku", "key"),
    ("kid", "key"),
    ("key", "key"),
    ("signature", "signature"),
    ("replay", "replay"),
    ("jti", "replay"),
)


# contract v3: the method label comes from a fixed set; a client's made-up methods are one
# `other` series, not one series each.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})


def method_label(method: str) -> str:
    return method if method in _METHODS else "other"


def auth_reason(message: str) -> str:
    lowered = message.lower()
    return next((code for word, code in _AUTH_REASONS if word in lowered), "other")


def exposition() -> tuple[bytes, str]:
    """The metrics text, summed over all workers when running under gunicorn."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
