"""`cds-cohort`: every WM patient of a Bulk Data export at once (contract v3, "Population
worklist"): the same reading, rules, "today" rule and profile as `patient-view`, one row per
patient with evidence of WM, attention first; CSV, a self-contained HTML page, JSON lines,
and mCODE CancerDiseaseStatus Observations as NDJSON.
"""

from __future__ import annotations

import argparse
import csv
import html
import json
import re
import sys
import tempfile
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

from cards.disease_status import disease_status_observation

from ..clinical.models import Category, Caveat
from ..config import ConfigError, settings_from_env
from ..fhir.bulk_export import BulkExport, ExportUnusable
from ..fhir.patient_banner import patient_name
from ..hooks.service import CdsHooksService, CohortView
from ..store.feedback import SqliteStore

COLUMNS = (
    "patientId",
    "name",
    "category",
    "percentChange",
    "percentChangeIsBound",
    "responseSince",
    "line",
    "lineStatus",
    "latestDate",
    "latestValueMgDl",
    "series",
    "confirmedProgression",
    "riseToRepeat",
    "riseSuppressed",
    "monitoringOverdueDays",
    "hyperviscosityReference",
    "leftOut",
    "treatmentNotRecognised",
    "summary",
)
# contract: PD first, then rises to repeat, then monitoring overdue, then by category
CATEGORY_ORDER = ("PD", "NE", "SD", "MR", "PR", "VGPR", "CR", "")


def _extension(view: CohortView, name: str) -> dict[str, Any]:
    for card in view.cards:
        body = (card.get("extension") or {}).get(name)
        if body is not None:
            return body
    return {}


def row_of(view: CohortView, patient: dict[str, Any] | None, patient_id: str) -> dict[str, Any]:
    assessment = view.assessment
    extension = _extension(view, "wm-igm-assessment")
    monitoring = _extension(view, "wm-igm-monitoring")
    latest = extension.get("latest") or {}
    overdue = None
    if monitoring.get("daysSince") is not None:
        overdue = max(0, monitoring["daysSince"] - monitoring["intervalDays"])
    elif monitoring:
        overdue = monitoring["intervalDays"]  # nothing measured in the interval at all
    finding = assessment.hyperviscosity
    # the response card's summary, or (a diagnosis and no result yet) the reminder's
    response = next(
        (c for c in view.cards if "wm-igm-assessment" in c["extension"]),
        view.cards[0] if view.cards else None,
    )
    return {
        "patientId": patient_id,
        "name": (patient_name(patient) if patient else None) or "",
        "category": extension.get("category", ""),
        "percentChange": extension.get("percentChange", ""),
        "percentChangeIsBound": extension.get("percentChangeIsBound", False),
        "responseSince": extension.get("responseSince", ""),
        "line": " + ".join(extension.get("regimen", [])),
        "lineStatus": extension.get("lineStatus", ""),
        "latestDate": latest.get("date", ""),
        "latestValueMgDl": latest.get("valueMgDl", ""),
        "series": extension.get("series", ""),
        "confirmedProgression": extension.get("progressionConfirmed", ""),
        "riseToRepeat": Caveat.UNCONFIRMED_PROGRESSION.value in extension.get("caveats", [])
        or "riseBelowFloor" in extension,
        "riseSuppressed": "riseSuppressed" in extension,
        "monitoringOverdueDays": "" if overdue is None else overdue,
        "hyperviscosityReference": (
            "" if finding is None else int(finding.reference_value.value_mg_dl)
        ),
        "leftOut": len(assessment.excluded),
        "treatmentNotRecognised": bool(extension.get("unrecognisedTherapy")),
        "summary": response["summary"]
        if response
        else (view.cards[0]["summary"] if view.cards else ""),
    }


def _kind_of(reason: str) -> str:
    """One tally per kind of reason: its words before any detail, numbers and dates as #."""
    return re.sub(r"\d[\d\-.:/]*", "#", reason.split(":")[0].split(" (")[0])[:60]


def attention(row: dict[str, Any]) -> tuple[int, int, str]:
    if row["category"] == Category.PD.value:
        group = 0
    elif row["riseToRepeat"]:
        group = 1
    elif row["monitoringOverdueDays"] not in ("", 0):
        group = 2
    else:
        group = 3
    category = row["category"] if row["category"] in CATEGORY_ORDER else ""
    return group, CATEGORY_ORDER.index(category), row["patientId"]


def sparkline(view: CohortView) -> str:
    values = [v for v in view.assessment.values if v.comparator is None]
    if len(values) < 2:
        return ""
    low = min(float(v.value_mg_dl) for v in values)
    high = max(float(v.value_mg_dl) for v in values) or 1.0
    first, last = values[0].day.toordinal(), values[-1].day.toordinal()
    span = max(1, last - first)
    points = " ".join(
        f"{(v.day.toordinal() - first) / span * 118 + 1:.1f},"
        f"{22 - (float(v.value_mg_dl) - low) / max(high - low, 1.0) * 20:.1f}"
        for v in values
    )
    return (
        '<svg width="120" height="24" viewBox="0 0 120 24" role="img" '
        f'aria-label="IgM course, {len(values)} values"><polyline fill="none" '
        f'stroke="currentColor" stroke-width="1.5" points="{points}"/></svg>'
    )


_SORT_SCRIPT = """
document.querySelectorAll('th').forEach(function (th, column) {
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0];
    var rows = Array.from(body.rows);
    var down = th.dataset.down !== 'true';
    th.dataset.down = down;
    rows.sort(function (a, b) {
      var x = a.cells[column].dataset.key || a.cells[column].textContent;
      var y = b.cells[column].dataset.key || b.cells[column].textContent;
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return down ? c : -c;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  });
});
"""


def page(rows: list[dict[str, Any]], lines: dict[str, str], as_of: date) -> str:
    head = "".join(f'<th scope="col">{html.escape(c)}</th>' for c in (*COLUMNS, "course"))
    body = []
    for row in rows:
        cells = "".join(f"<td>{html.escape(str(row[c]))}</td>" for c in COLUMNS)
        body.append(f"<tr>{cells}<td>{lines.get(row['patientId'], '')}</td></tr>")
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>WM worklist as of {as_of.isoformat()}</title><style>"
        "body{font-family:system-ui,sans-serif;margin:1rem}table{border-collapse:collapse}"
        "th,td{border:1px solid #ccc;padding:2px 6px;font-size:13px;vertical-align:top}"
        "th{cursor:pointer;background:#eee}</style></head><body>"
        f"<h1>Waldenström macroglobulinemia worklist, as of {as_of.isoformat()}</h1>"
        "<p>Attention first: progression, rises to repeat, monitoring overdue, then by "
        "category. IgM-based (IWWM-6): marrow, imaging and symptoms are not seen. Click a "
        "column to sort.</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        f"<script>{_SORT_SCRIPT}</script></body></html>"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cds-cohort",
        description="A worklist of every WM patient in a FHIR Bulk Data export.",
    )
    parser.add_argument("export", type=Path, metavar="EXPORT_DIR")
    parser.add_argument("--as-of", help="assess as of this day (YYYY-MM-DD; default today)")
    parser.add_argument("--out", type=Path, default=Path("."), help="where the worklist goes")
    parser.add_argument("--json", action="store_true", help="print one JSON object per row")
    parser.add_argument("--mcode", type=Path, help="write mCODE disease status NDJSON here")
    args = parser.parse_args(argv)
    try:
        today = date.fromisoformat(args.as_of) if args.as_of else date.today()
    except ValueError:
        print(f"cds-cohort: --as-of {args.as_of!r} is not a date", file=sys.stderr)
        return 2
    try:
        settings = settings_from_env()
        export = BulkExport(args.export)
    except (ConfigError, ExportUnusable) as error:
        print(f"cds-cohort: {error}", file=sys.stderr)
        return 2
    base_url = settings.public_base_url or "http://127.0.0.1:8080"
    rows, lines, statuses = [], {}, []
    extensions: dict[str, dict[str, Any]] = {}
    left_out_by_reason: Counter[str] = Counter()
    without_evidence = 0
    ids = export.patient_ids()
    with tempfile.TemporaryDirectory(prefix="cds-cohort-") as scratch:
        # The cohort writes nothing to the service's store: a scratch one for the run.
        service = CdsHooksService(settings, SqliteStore(Path(scratch) / "store.sqlite3"))
        for number, patient_id in enumerate(ids, start=1):
            resources = export.patient(patient_id)
            view = service.assess_exported(
                patient_id, resources.keyed, resources.incomplete, today, base_url
            )
            for exclusion in view.assessment.excluded:
                left_out_by_reason[_kind_of(exclusion.reason)] += 1
            if not view.speaks:
                without_evidence += 1
            else:
                row = row_of(view, resources.patient, patient_id)
                rows.append(row)
                lines[patient_id] = sparkline(view)
                status = disease_status_observation(view.assessment, patient_id)
                if status is not None:
                    statuses.append(status)
                extensions[patient_id] = _extension(view, "wm-igm-assessment")
            if sys.stderr.isatty():
                print(f"\r{number}/{len(ids)} patients", end="", file=sys.stderr, flush=True)
    rows.sort(key=attention)
    if args.json:  # in the worklist's order, with the card extension
        for row in rows:
            print(json.dumps({**row, "assessment": extensions[row["patientId"]]}, default=str))
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "worklist.csv").open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    (args.out / "worklist.html").write_text(page(rows, lines, today), encoding="utf-8")
    if args.mcode is not None:
        args.mcode.mkdir(parents=True, exist_ok=True)
        with (args.mcode / "Observation.ndjson").open("w", encoding="utf-8") as file:
            for status in statuses:
                file.write(json.dumps(status) + "\n")
    report = export.report
    for problem in report.problems:
        print(f"cds-cohort: {problem}", file=sys.stderr)
    left_out_by_reason.update(report.left_out)
    left_out = "; ".join(
        f"{count} {why}" for why, count in sorted(left_out_by_reason.items(), key=lambda i: -i[1])
    )
    print(
        f"{'' if not sys.stderr.isatty() else chr(10)}cds-cohort: {len(ids)} patients read, "
        f"{len(rows)} assessed, {without_evidence} without evidence of WM; "
        f"{report.malformed_lines} malformed lines; "
        f"{report.without_patient_resource} resources without a Patient resource"
        + (f"; left out: {left_out}" if left_out else ""),
        file=sys.stderr,
    )
    return 0
