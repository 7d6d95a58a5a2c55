"""`cds-cohort`: every WM patient of a Bulk Data export at once (contract v3, "Population
worklist"): the same reading, rules, "today" rule and profile as `patient-view`, one row per
patient with evidence of WM, attention first; CSV, a self-contained HTML page, JSON lines,
and mCODE CancerDiseaseStatus Observations as NDJSON.

Scale: the export is indexed into an SQLite file in a scratch folder (`fhir.bulk_export`);
patients go to worker processes (one per core) in small batches, a few batches in flight at
a time; each patient's outcome is spilled to a second SQLite file as it comes back, and the
outputs are written from there in attention order. Memory holds a few batches, not the
export.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import html
import json
import multiprocessing
import os
import re
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import date
from itertools import islice
from pathlib import Path
from typing import Any, TextIO

from cards.disease_status import disease_status_observation

from ..clinical.models import Category, Caveat
from ..config import ConfigError, Settings, settings_from_env
from ..fhir.bulk_export import BulkExport, ExportReader, ExportUnusable, PatientPlaces
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


# The page shows the IgM course beside the category; yes/blank for flags (the CSV keeps
# true/false for machines).
PAGE_COLUMNS = (*COLUMNS[:5], "course", *COLUMNS[5:])
ATTENTION_CLASS = ("progression", "repeat", "overdue", "")


def page_parts(as_of: date) -> tuple[str, str]:
    """The page's head (up to the table body) and tail; rows go between (`page_row`)."""
    columns = "".join(f'<th scope="col">{html.escape(c)}</th>' for c in PAGE_COLUMNS)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>WM worklist as of {as_of.isoformat()}</title><style>"
        "body{font-family:system-ui,sans-serif;margin:1rem}table{border-collapse:collapse}"
        "th,td{border:1px solid #ccc;padding:2px 6px;font-size:13px;vertical-align:top}"
        "th{cursor:pointer;background:#eee;position:sticky;top:0}td.summary{min-width:36em}"
        "tr.progression td:first-child{border-left:5px solid #b00020}"
        "tr.repeat td:first-child{border-left:5px solid #e08a00}"
        "tr.overdue td:first-child{border-left:5px solid #5c6bc0}</style></head><body>"
        f"<h1>Waldenström macroglobulinemia worklist, as of {as_of.isoformat()}</h1>"
        "<p>Attention first: progression (red), rises to repeat (amber), monitoring overdue "
        "(blue), then by category. IgM-based (IWWM-6): marrow, imaging and symptoms are not "
        "seen. Click a column to sort.</p>"
        f"<table><thead><tr>{columns}</tr></thead><tbody>",
        f"</tbody></table><script>{_SORT_SCRIPT}</script></body></html>",
    )


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else ""
    return html.escape(str(value))


def page_row(row: dict[str, Any], line: str) -> str:
    cells = "".join(
        f"<td>{line}</td>"
        if column == "course"
        else f'<td class="summary">{_cell(row[column])}</td>'
        if column == "summary"
        else f"<td>{_cell(row[column])}</td>"
        for column in PAGE_COLUMNS
    )
    marked = ATTENTION_CLASS[attention(row)[0]]
    return f'<tr class="{marked}">{cells}</tr>' if marked else f"<tr>{cells}</tr>"


BATCH = 32  # patients a worker assesses per task: large enough to amortise the hand-off
IN_FLIGHT_PER_WORKER = 3  # batches queued per worker: enough to keep it busy, no more


@dataclass
class Outcome:
    """What one patient's assessment gives the worklist (small: it crosses processes)."""

    patient_id: str
    speaks: bool = False
    row: dict[str, Any] | None = None
    sparkline: str = ""
    status: dict[str, Any] | None = None
    extension: dict[str, Any] = field(default_factory=dict)
    left_out: Counter = field(default_factory=Counter)
    failure: str | None = None  # the patient could not be assessed: why (never data)


@dataclass
class Assessor:
    """The patient-view steps for exported patients, in one process."""

    service: CdsHooksService
    reader: ExportReader
    today: date
    base_url: str

    def assess(self, group: PatientPlaces) -> Outcome:
        outcome = Outcome(group.patient_id)
        try:
            resources = self.reader.resources(group)
            view = self.service.assess_exported(
                group.patient_id, resources.keyed, resources.incomplete, self.today, self.base_url
            )
        except Exception as error:  # one patient's failure never ends the worklist
            outcome.failure = type(error).__name__
            return outcome
        for exclusion in view.assessment.excluded:
            outcome.left_out[_kind_of(exclusion.reason)] += 1
        if view.speaks:
            outcome.speaks = True
            outcome.row = row_of(view, resources.patient, group.patient_id)
            outcome.sparkline = sparkline(view)
            outcome.status = disease_status_observation(view.assessment, group.patient_id)
            outcome.extension = _extension(view, "wm-igm-assessment")
        return outcome


_assessor: Assessor | None = None  # each worker process's own


def _start_worker(
    settings: Settings, reader: ExportReader, today: date, base_url: str, scratch: Path
) -> None:
    global _assessor
    # The cohort writes nothing to the service's store: a scratch one for each process.
    store = SqliteStore(scratch / f"store-{os.getpid()}.sqlite3")
    _assessor = Assessor(CdsHooksService(settings, store), reader, today, base_url)


def _assess_batch(groups: list[PatientPlaces]) -> list[Outcome]:
    assert _assessor is not None, "worker not started"
    return [_assessor.assess(group) for group in groups]


def _batches(groups: Iterable[PatientPlaces]) -> Iterator[list[PatientPlaces]]:
    iterator = iter(groups)
    while batch := list(islice(iterator, BATCH)):
        yield batch


def assess_all(
    groups: Iterable[PatientPlaces], workers: int, start: tuple[Any, ...]
) -> Iterator[Outcome]:
    """Every patient's outcome, in the order they finish; at most a few batches in flight."""
    if workers <= 1:
        _start_worker(*start)
        for batch in _batches(groups):
            yield from _assess_batch(batch)
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ProcessPoolExecutor(workers, context, _start_worker, start) as pool:
        pending: set[Future] = set()
        try:
            for batch in _batches(groups):
                pending.add(pool.submit(_assess_batch, batch))
                if len(pending) >= workers * IN_FLIGHT_PER_WORKER:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        yield from future.result()
            for future in list(pending):
                pending.discard(future)
                yield from future.result()
        finally:
            for future in pending:
                future.cancel()


class Progress:
    """A progress bar on a terminal (redrawn at most ten times a second); silent otherwise."""

    WIDTH = 30

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total, self.stream = total, stream
        self.shown = stream.isatty()
        self.started = self.drawn = time.monotonic()
        self.done = 0

    def step(self) -> None:
        self.done += 1
        now = time.monotonic()
        if self.shown and (now - self.drawn >= 0.1 or self.done == self.total):
            self.drawn = now
            filled = self.WIDTH * self.done // max(self.total, 1)
            print(
                f"\r[{'#' * filled}{'.' * (self.WIDTH - filled)}] {self.done:,}/{self.total:,}"
                f" patients, {now - self.started:.0f} s",
                end="",
                file=self.stream,
                flush=True,
            )

    def finish(self) -> None:
        if self.shown:
            print(file=self.stream)


class Spill:
    """The assessed patients' outcomes on disk, read back in attention order."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path)
        self._db.executescript(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;"
            "CREATE TABLE outcome (grp INTEGER, category INTEGER, patient TEXT, row TEXT,"
            " sparkline TEXT, status TEXT, extension TEXT);"
        )
        self.rows = 0

    def add(self, outcome: Outcome) -> None:
        assert outcome.row is not None
        self._db.execute(
            "INSERT INTO outcome VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                *attention(outcome.row),
                json.dumps(outcome.row, default=str),
                outcome.sparkline,
                None if outcome.status is None else json.dumps(outcome.status),
                json.dumps(outcome.extension, default=str),
            ),
        )
        self.rows += 1

    def in_order(self) -> Iterator[tuple[dict[str, Any], str, dict | None, dict[str, Any]]]:
        for row, line, status, extension in self._db.execute(
            "SELECT row, sparkline, status, extension FROM outcome ORDER BY grp, category, patient"
        ):
            yield json.loads(row), line, status and json.loads(status), json.loads(extension)

    def close(self) -> None:
        self._db.close()


def write_outputs(spill: Spill, args: argparse.Namespace, today: date) -> None:
    """CSV, HTML, JSON lines and mCODE NDJSON, streamed from the spill in attention order."""
    args.out.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as files:
        table = files.enter_context(
            (args.out / "worklist.csv").open("w", newline="", encoding="utf-8")
        )
        webpage = files.enter_context((args.out / "worklist.html").open("w", encoding="utf-8"))
        statuses = None
        if args.mcode is not None:
            args.mcode.mkdir(parents=True, exist_ok=True)
            statuses = files.enter_context(
                (args.mcode / "Observation.ndjson").open("w", encoding="utf-8")
            )
        writer = csv.DictWriter(table, fieldnames=COLUMNS)
        writer.writeheader()
        head, tail = page_parts(today)
        webpage.write(head)
        for row, line, status, extension in spill.in_order():
            writer.writerow(row)
            webpage.write(page_row(row, line))
            if status is not None and statuses is not None:
                statuses.write(json.dumps(status) + "\n")
            if args.json:  # in the worklist's order, with the card extension
                print(json.dumps({**row, "assessment": extension}, default=str))
        webpage.write(tail)


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
    parser.add_argument(
        "--workers",
        type=int,
        default=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        help="processes assessing patients (default: one per core available)",
    )
    args = parser.parse_args(argv)
    workers = max(1, args.workers or os.cpu_count() or 1)
    try:
        today = date.fromisoformat(args.as_of) if args.as_of else date.today()
    except ValueError:
        print(f"cds-cohort: --as-of {args.as_of!r} is not a date", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="cds-cohort-") as scratch_name:
        scratch = Path(scratch_name)
        try:
            settings = settings_from_env()
            export = BulkExport(args.export, scratch)
        except (ConfigError, ExportUnusable) as error:
            print(f"cds-cohort: {error}", file=sys.stderr)
            return 2
        base_url = settings.public_base_url or "http://127.0.0.1:8080"
        start = (settings, export.reader(), today, base_url, scratch)
        spill = Spill(scratch / "outcomes.sqlite3")
        left_out: Counter[str] = Counter()
        without_evidence, failures = 0, []
        progress = Progress(export.patients, sys.stderr)
        try:
            for outcome in assess_all(export.groups(), workers, start):
                progress.step()
                left_out.update(outcome.left_out)
                if outcome.failure is not None:
                    failures.append(f"{outcome.patient_id} ({outcome.failure})")
                elif outcome.speaks:
                    spill.add(outcome)
                else:
                    without_evidence += 1
            progress.finish()
            write_outputs(spill, args, today)
        finally:
            spill.close()
            export.close()
    report = export.report
    for problem in report.problems:
        print(f"cds-cohort: {problem}", file=sys.stderr)
    for failure in failures:
        print(f"cds-cohort: could not be assessed: patient {failure}", file=sys.stderr)
    left_out.update(report.left_out)
    reasons = "; ".join(
        f"{count} {why}" for why, count in sorted(left_out.items(), key=lambda i: -i[1])
    )
    print(
        f"cds-cohort: {export.patients} patients read, {spill.rows} assessed, "
        f"{without_evidence} without evidence of WM"
        + (f", {len(failures)} could not be assessed" if failures else "")
        + f"; {report.malformed_lines} malformed lines; "
        f"{report.without_patient_resource} resources without a Patient resource"
        + (f"; left out: {reasons}" if reasons else ""),
        file=sys.stderr,
    )
    return 0
