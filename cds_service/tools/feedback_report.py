"""`cds-feedback-report`: which cards clinicians accept or override, and why (contract v2).

Reads the store named by the configuration (CDS_FEEDBACK_DB). Feedback is joined to the
cards the service issued, so each item has the card's kind and category; feedback about a
card this store never issued is counted under kind "unknown".
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from datetime import date
from typing import Any

from ..config import ConfigError, settings_from_env
from ..store.factory import open_store
from ..store.sql import StoreUnavailable


def _rate(part: int, whole: int) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


# Control characters (newlines, terminal escapes) and bidirectional controls in what a client
# sent: shown as "?", so that no line of the report can be forged or recoloured (contract v3).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SHOWN_CHARACTERS = 100


def _inert(value: Any) -> str:
    """A client's text, one safe line of at most `_SHOWN_CHARACTERS`."""
    if not isinstance(value, str):
        return ""
    return _UNSAFE.sub("?", value[:_SHOWN_CHARACTERS])


def summarise(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts and rates by (service, kind, category), and override reasons within them."""
    groups: dict[tuple[str, str, str], Counter] = defaultdict(Counter)
    reasons: dict[tuple[str, str, str, str, str], int] = Counter()
    for item in items:
        key = (item["service"], item["kind"] or "unknown", item["category"] or "-")
        groups[key][item["outcome"]] += 1
        if item["outcome"] == "overridden":
            reason = (item.get("overrideReason") or {}).get("reason") or {}
            code = _inert(reason.get("code")) or "(none given)"
            reasons[(*key, code, _inert(reason.get("display")))] += 1
    rows = []
    for (service, kind, category), counts in sorted(groups.items()):
        total = sum(counts.values())
        rows.append(
            {
                "service": service,
                "kind": kind,
                "category": category,
                "feedback": total,
                "accepted": counts["accepted"],
                "overridden": counts["overridden"],
                "acceptanceRate": _rate(counts["accepted"], total),
                "overrideRate": _rate(counts["overridden"], total),
            }
        )
    overridden = {key: counts["overridden"] for key, counts in groups.items()}
    reason_rows = [
        {
            "service": service,
            "kind": kind,
            "category": category,
            "reason": code,
            "display": display,
            "count": count,
            "shareOfOverrides": _rate(count, overridden[(service, kind, category)]),
        }
        for (service, kind, category, code, display), count in sorted(reasons.items())
    ]
    return {"feedback": len(items), "groups": rows, "overrideReasons": reason_rows}


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    cells = [[str(row[key]) for key, _ in columns] for row in rows]
    widths = [
        max([len(title), *(len(line[i]) for line in cells)]) for i, (_, title) in enumerate(columns)
    ]
    lines = ["  ".join(title.ljust(w) for (_, title), w in zip(columns, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in cells]
    return "\n".join(lines)


def as_text(report: dict[str, Any]) -> str:
    if not report["feedback"]:
        return "No feedback stored" + (f" since {report['since']}" if report.get("since") else "")
    parts = [
        f"Feedback items: {report['feedback']}"
        + (f" (since {report['since']})" if report.get("since") else ""),
        "",
        _table(
            report["groups"],
            [
                ("service", "service"),
                ("kind", "card kind"),
                ("category", "category"),
                ("feedback", "feedback"),
                ("accepted", "accepted"),
                ("overridden", "overridden"),
                ("acceptanceRate", "accepted %"),
                ("overrideRate", "overridden %"),
            ],
        ),
    ]
    if report["overrideReasons"]:
        parts += [
            "",
            "Override reasons",
            _table(
                report["overrideReasons"],
                [
                    ("service", "service"),
                    ("kind", "card kind"),
                    ("category", "category"),
                    ("reason", "reason"),
                    ("display", "as shown"),
                    ("count", "count"),
                    ("shareOfOverrides", "% of overrides"),
                ],
            ),
        ]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cds-feedback-report",
        description="Acceptance and override rates of the service's cards, from the store.",
    )
    parser.add_argument("--since", help="only feedback on or after this day (YYYY-MM-DD)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    try:
        since = date.fromisoformat(args.since).isoformat() if args.since else None
    except ValueError:
        print(f"cds-feedback-report: --since {args.since!r} is not a date", file=sys.stderr)
        return 2
    try:
        settings = settings_from_env()
    except ConfigError as error:
        print(f"cds-feedback-report: {error}", file=sys.stderr)
        return 2
    if not settings.database_url and not settings.feedback_db.exists():
        print(f"cds-feedback-report: no store at {settings.feedback_db}", file=sys.stderr)
        return 2
    try:
        report = summarise(open_store(settings).outcomes(since))
    except StoreUnavailable as error:
        print(f"cds-feedback-report: the store cannot be reached ({error})", file=sys.stderr)
        return 2
    if since:
        report["since"] = since
    print(json.dumps(report, indent=2) if args.json else as_text(report))
    return 0
