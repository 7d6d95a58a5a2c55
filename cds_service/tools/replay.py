"""`cds-replay`: replay CDS Hooks request fixtures and check their expected outcomes.

Any hook of the service: each fixture goes to the service of its hook (`patient-view`,
`order-sign`, `order-select`). In process by default (no server needed), or POSTed to a
running service with `--url`. Order-check fixtures expect `rule`, `drug`, `referenceValue`.
A fixture names the day its expectation holds for in `extension["wm-igm-as-of"]` and the
expected outcome in `extension["wm-igm-expected"]`:

    {"category": "PR", "percentChange": -56.2, "caveats": ["btki-discordance"],
     "cards": 1, "excluded": 0, "reason": "...", "percentChangeIsBound": true,
     "byCriteria": {"IWWM-6-strict": {"category": "PD"}}}

Exit status: 0 all good, 1 an expectation did not hold or the service failed, 2 a usage
or file error.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests

from ..hooks.discovery import SERVICE_BY_HOOK, SERVICES
from ..hooks.service import AS_OF_EXTENSION
from ..hooks.validation import schema_errors

EXPECTED_EXTENSION = "wm-igm-expected"
ASSESSED_AS_OF_HEADER = "X-Assessed-As-Of"  # the "today" the service assessed against
ASSESSMENT_KEY = "wm-igm-assessment"
ORDER_CHECK_KEY = "wm-anti-cd20-order-check"
_EXTENSION_KEYS = (ASSESSMENT_KEY, ORDER_CHECK_KEY)
_CHECKED_FIELDS = (
    "rule",
    "drug",
    "referenceValue",
    "category",
    "series",
    "percentChange",
    "percentChangeIsBound",
    "caveats",
    "reason",
    "regimen",
    "therapyStart",
    "lineEnded",
    "progressionConfirmed",
    "continuingFrom",
    # contract v3
    "percentChangeFromNadir",
    "baseline",
    "lineStatus",
    "holdSince",
    "switchedFrom",
    "unrecognisedTherapy",
    "changeSinceLineStart",
    "earlierProgression",
    "riseSuppressed",
    "withdrawal",
    "bestResponse",
    "responseSince",
    "provisionalUntil",
    "riseBelowFloor",
    "unavailable",
    "crLost",
    "otherSeries",
    "heldBack",
    "responseDuration",
    "changeSinceFirst",
    "change12Months",
    "exchanges",
)


class UsageError(Exception):
    """A problem with the command line or a fixture file (exit status 2)."""


@dataclass
class Replayed:
    path: Path
    status: int
    body: Any
    differences: list[str] = field(default_factory=list)
    checked: bool = False

    @property
    def ok(self) -> bool:
        return not self.differences and (self.status == 200 or self.checked)


def fixture_files(arguments: Iterable[str]) -> list[Path]:
    """Files as given; a directory contributes its own *.json files, in name order."""
    files: list[Path] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            found = sorted(p for p in path.glob("*.json") if p.is_file())
            if not found:
                raise UsageError(f"{path}: no .json fixtures in this directory")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise UsageError(f"{path}: no such file or directory")
    return files


def load_fixture(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{path}: cannot be read ({error})") from None
    except json.JSONDecodeError as error:
        raise UsageError(f"{path}: not valid JSON ({error.msg}, line {error.lineno})") from None
    if not isinstance(document, dict) or "hook" not in document or "context" not in document:
        kind = document.get("resourceType") if isinstance(document, dict) else None
        what = f"a FHIR {kind}" if isinstance(kind, str) else "not a CDS Hooks request"
        raise UsageError(f"{path}: {what}, not a CDS Hooks request (no hook and context)")
    return document


def _to_json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(type(value).__name__)


def _with_as_of(request: dict[str, Any], as_of: date | None) -> dict[str, Any]:
    if as_of is None:
        return request
    extension = dict(request.get("extension") or {}, **{AS_OF_EXTENSION: as_of.isoformat()})
    return dict(request, extension=extension)


def _fixture_as_of(request: dict[str, Any]) -> date | None:
    raw = (request.get("extension") or {}).get(AS_OF_EXTENSION)
    try:
        return date.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        return None


class InProcess:
    """The real Flask app, called through its test client: the same code path as HTTP."""

    def __init__(self, criteria: str | None = None) -> None:
        from ..app import create_app
        from ..config import ConfigError, settings_from_env

        self._scratch = tempfile.TemporaryDirectory(prefix="cds-replay-")
        try:
            settings = settings_from_env()
        except ConfigError as error:
            raise UsageError(str(error)) from None
        settings = settings.with_overrides(
            {
                "allow_as_of": True,
                "criteria": criteria or settings.criteria,
                "log_level": "ERROR",  # no per-request lines or dev-mode warnings
                "feedback_db": Path(self._scratch.name) / "feedback.sqlite3",
                "card_record_seconds": 0,  # the scratch store goes before the process exits
                "public_base_url": settings.public_base_url or "http://127.0.0.1:8080",
            }
        )
        self._client = create_app(settings).test_client()

    def post(self, request: dict[str, Any]) -> tuple[int, Any, str | None]:
        body = json.dumps(request, default=_to_json)
        response = self._client.post(
            f"/cds-services/{_service_for(request)}", data=body, content_type="application/json"
        )
        return (
            response.status_code,
            response.get_json(silent=True),
            response.headers.get(ASSESSED_AS_OF_HEADER),
        )


class OverHttp:
    def __init__(self, url: str, timeout: float = 30) -> None:
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"--url {url!r} is not an http(s) URL of a CDS service")
        self._url = url
        self._session = requests.Session()
        self._timeout = timeout

    def post(self, request: dict[str, Any]) -> tuple[int, Any, str | None]:
        body = json.dumps(request, default=_to_json)
        try:
            response = self._session.post(
                _url_for(self._url, request),
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=self._timeout,
            )
        except requests.RequestException as error:
            raise UsageError(f"{self._url}: {type(error).__name__}: {error}") from None
        day = response.headers.get(ASSESSED_AS_OF_HEADER)
        try:
            return response.status_code, response.json(), day
        except ValueError:
            return response.status_code, response.text, day


def _service_for(request: dict[str, Any]) -> str:
    """The service that answers the fixture's hook (patient-view, order-sign, order-select)."""
    definition = SERVICE_BY_HOOK.get(request.get("hook"))  # type: ignore[arg-type]
    if definition is None:
        raise UsageError(f"no service of this project answers the hook {request.get('hook')!r}")
    return definition.id


def _url_for(url: str, request: dict[str, Any]) -> str:
    """--url names one service; a fixture of another hook goes to its own service."""
    base, _, service = url.rstrip("/").rpartition("/")
    return f"{base}/{_service_for(request)}" if service in SERVICES else url


def _response_card(body: Any) -> dict[str, Any]:
    """The card whose extension the expectation is checked against."""
    for card in (body or {}).get("cards", []) if isinstance(body, dict) else []:
        if any(key in (card.get("extension") or {}) for key in _EXTENSION_KEYS):
            return card
    return {}


def _response_assessment(body: Any) -> dict[str, Any] | None:
    extension = _response_card(body).get("extension", {})
    return next((extension[key] for key in _EXTENSION_KEYS if key in extension), None)


def _comparable(value: Any) -> Any:
    # -56.2 parsed as a float from the service and as a Decimal from the fixture are equal.
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {key: _comparable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_comparable(item) for item in value]
    return value


def check(expected: dict[str, Any], status: int, body: Any) -> list[str]:
    """Differences between the expectation and the answer, one readable line each."""
    want_status = expected.get("status", 200)
    if status != want_status:
        return [f"status: expected {want_status}, got {status}"]
    if status != 200:
        return []
    invalid = schema_errors("response", body)
    if invalid:
        return [f"response is not valid CDS Hooks: {error}" for error in invalid[:5]]
    assessment = _response_assessment(body) or {}
    criteria = assessment.get("criteria")
    wanted = dict(expected)
    wanted.update((expected.get("byCriteria") or {}).get(criteria, {}))
    differences = []
    for name in _CHECKED_FIELDS:
        if name in wanted:
            got = assessment.get(name, [] if name == "caveats" else None)
            if _comparable(got) != _comparable(wanted[name]):
                differences.append(f"{name}: expected {wanted[name]!r}, got {got!r}")
    # A summary is checked where one is given (None: not checked under that profile).
    if (
        wanted.get("summary") is not None
        and _response_card(body).get("summary") != wanted["summary"]
    ):
        got = _response_card(body).get("summary")
        differences.append(f"summary: expected {wanted['summary']!r}, got {got!r}")
    if "monitoring" in wanted:
        monitoring = next(
            (
                c["extension"]["wm-igm-monitoring"]
                for c in body.get("cards", [])
                if "wm-igm-monitoring" in c.get("extension", {})
            ),
            None,
        )
        if _comparable(monitoring) != _comparable(wanted["monitoring"]):
            differences.append(f"monitoring: expected {wanted['monitoring']!r}, got {monitoring!r}")
    indicator = _response_card(body).get("indicator")
    if "indicator" in wanted and indicator != wanted["indicator"]:
        differences.append(f"indicator: expected {wanted['indicator']!r}, got {indicator!r}")
    if "cards" in wanted and len(body.get("cards", [])) != wanted["cards"]:
        differences.append(f"cards: expected {wanted['cards']}, got {len(body.get('cards', []))}")
    if "excluded" in wanted and len(assessment.get("excluded", [])) != wanted["excluded"]:
        got = len(assessment.get("excluded", []))
        differences.append(f"excluded: expected {wanted['excluded']}, got {got}")
    return differences


def _fetching_from(request: dict[str, Any], fhir_server: str | None) -> dict[str, Any]:
    """The request without its prefetch, sent to fetch everything from `fhir_server`."""
    if fhir_server is None:
        return request
    return {k: v for k, v in request.items() if k != "prefetch"} | {"fhirServer": fhir_server}


def replay(
    paths: list[Path], target: Any, as_of: date | None, fhir_server: str | None = None
) -> list[Replayed]:
    results = []
    for path in paths:
        request = load_fixture(path)
        day = as_of or _fixture_as_of(request)
        status, body, assessed = target.post(_fetching_from(_with_as_of(request, day), fhir_server))
        expected = (request.get("extension") or {}).get(EXPECTED_EXTENSION)
        result = Replayed(path, status, body)
        # An explicit --as-of moves "today" away from the day the expectation was written for.
        if isinstance(expected, dict) and as_of is None:
            result.checked = True
            if fhir_server is not None:
                # A server's search by patient never returns the other patient's results a
                # fixture's prefetch holds on purpose: what is left out differs; and what a
                # fixture names `prefetchOnly` (an error outcome, a short total) too.
                skipped = {"excluded", *(expected.get("prefetchOnly") or [])}
                expected = {k: v for k, v in expected.items() if k not in skipped}
            result.differences = check(expected, status, body)
            if result.differences and day and assessed and assessed != day.isoformat():
                result.differences.insert(
                    0,
                    f"the service assessed as of {assessed}, not the fixture's {day}: start it "
                    "with CDS_ALLOW_AS_OF=1 (testing only) for the fixture's expectations",
                )
        results.append(result)
    return results


def as_text(result: Replayed) -> str:
    lines = [f"== {result.path.name}: HTTP {result.status}"]
    body = result.body
    if result.status != 200:
        issues = body.get("issue", []) if isinstance(body, dict) else []
        lines += [f"   {issue.get('diagnostics', '')}" for issue in issues] or [f"   {body}"]
    else:
        cards = body.get("cards", [])
        if not cards:
            lines.append("   (no cards)")
        for card in cards:
            lines.append(f"   [{card['indicator']}] {card['summary']}")
            assessment = (card.get("extension") or {}).get(ASSESSMENT_KEY)
            if assessment and assessment.get("caveats"):
                lines.append(f"   caveats: {', '.join(assessment['caveats'])}")
            for link in card.get("links", []):
                lines.append(f"   link: {link['label']} <{link['url']}>")
    if result.checked:
        lines.append("   expected: ok" if not result.differences else "   expected: MISMATCH")
        lines += [f"   - {difference}" for difference in result.differences]
    return "\n".join(lines)


def as_json(result: Replayed) -> str:
    return json.dumps(
        {
            "file": str(result.path),
            "status": result.status,
            "response": result.body,
            **({"ok": not result.differences} if result.checked else {}),
            **({"differences": result.differences} if result.differences else {}),
        },
        default=_to_json,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cds-replay", description="Replay CDS Hooks patient-view request fixtures."
    )
    parser.add_argument("paths", nargs="+", metavar="FILE_OR_DIR")
    parser.add_argument("--url", help="POST to this CDS service URL instead of running in process")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--as-of", metavar="YYYY-MM-DD", help='"today" for time-dependent cards')
    parser.add_argument(
        "--fhir-server",
        metavar="URL",
        help="send each fixture without its prefetch, so the service fetches everything from "
        "this FHIR server (e.g. cds-fixture-server's)",
    )
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return 2 if exit_.code else 0
    try:
        as_of = date.fromisoformat(args.as_of) if args.as_of else None
    except ValueError:
        print(f"cds-replay: --as-of {args.as_of!r} is not a date (YYYY-MM-DD)", file=sys.stderr)
        return 2
    try:
        paths = fixture_files(args.paths)
        for path in paths:
            load_fixture(path)  # report every file error before replaying anything
        target = OverHttp(args.url) if args.url else InProcess()
        results = replay(paths, target, as_of, args.fhir_server)
    except UsageError as error:
        print(f"cds-replay: {error}", file=sys.stderr)
        return 2
    for result in results:
        print(as_json(result) if args.json else as_text(result))
    failed = [r for r in results if not r.ok]
    if not args.json:
        checked = sum(r.checked for r in results)
        passed = len(results) - len(failed)
        print(f"\n{passed} passed, {len(failed)} failed ({checked} with expectations)")
    return 1 if failed else 0
