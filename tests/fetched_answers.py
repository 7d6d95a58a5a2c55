"""What must be equal between a fixture's answer from its prefetch and its answer when the
service fetches everything from a FHIR server (the fixture server, Medplum's, a proxy).

A server's search by patient never returns the other patient's results a fixture's prefetch
holds on purpose, so those are not compared as left out; and what a fixture names
`prefetchOnly` (an error outcome or a short total in its prefetch, which no server search
gives) is not compared either. Everything else must be identical.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cds_service.tools.replay import EXPECTED_EXTENSION

ANOTHER_PATIENT = "belongs to another patient"


def prefetch_only(request: dict[str, Any]) -> set[str]:
    expected = (request.get("extension") or {}).get(EXPECTED_EXTENSION) or {}
    return set(expected.get("prefetchOnly") or [])


def without_prefetch(request: dict[str, Any], fhir_server: str) -> dict[str, Any]:
    fetching = {k: v for k, v in request.items() if k != "prefetch"}
    fetching["fhirServer"] = fhir_server
    return fetching


def comparable(body: dict[str, Any], skipped: set[str]) -> list[Any]:
    """Each card's summary and assessment extension, as far as they must agree."""
    found: list[Any] = []
    for card in body["cards"]:
        extension = card.get("extension") or {}
        assessment = extension.get("wm-igm-assessment") or extension.get("wm-anti-cd20-order-check")
        if assessment is not None:
            assessment = {k: v for k, v in assessment.items() if k not in skipped}
            kept = [e for e in assessment.pop("excluded", []) if e["reason"] != ANOTHER_PATIENT]
            if kept:
                assessment["excluded"] = kept
        found.append((None if "summary" in skipped else card["summary"], assessment))
    return found


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))
