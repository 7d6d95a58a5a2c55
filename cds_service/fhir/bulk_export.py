"""A FHIR Bulk Data export on disk, read patient by patient (contract v3, `cds-cohort`).

The folder holds what a Bulk Data client writes: the export manifest (`output` and `error`
entries, each with a `type` and a `url` whose last path segment names the NDJSON file beside
it) and the NDJSON files themselves. The files are read twice: once to index where each
patient's resources are (a file and a byte offset per resource, spilled to an SQLite file in
a scratch folder, so memory stays bounded whatever the export's size), then patient by
patient, in patient order, by whichever process assesses that patient (`ExportReader` is
small enough to hand to worker processes). A malformed line is counted with its
file and line number, never fatal; a resource whose patient has no Patient resource in the
export is counted; the `error` files (OperationOutcomes) mark the patients they name as
incomplete.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import groupby, islice
from pathlib import Path
from typing import Any

from . import strict_json
from .parsing import subject_patient_id

# Resource type -> the prefetch key of patient-view that holds it (contract "Prefetch").
KEYS = {
    "Observation": "observations",
    "MedicationStatement": "medicationStatements",
    "MedicationRequest": "medicationRequests",
    "MedicationAdministration": "medicationAdministrations",
    "Procedure": "procedures",
    "Condition": "conditions",
}
READ_TYPES = frozenset({*KEYS, "Patient", "Medication"})
MANIFEST_NAMES = ("manifest.json", "export_manifest.json", "bulk-export-manifest.json")
_PATIENT_NAMED = re.compile(r"Patient/([A-Za-z0-9\-.]{1,64})")
MAX_REPORTED_PROBLEMS = 50


class ExportUnusable(Exception):
    """The folder is not a Bulk Data export this tool can read (exit status 2)."""


@dataclass
class ExportReport:
    """What reading the export found, besides the patients (the tool's last line)."""

    resources_read: int = 0
    malformed_lines: int = 0
    problems: list[str] = field(default_factory=list)  # "file:line: why", the first ones
    left_out: Counter = field(default_factory=Counter)  # reason -> resources
    without_patient_resource: int = 0

    def note(self, where: str, why: str) -> None:
        if len(self.problems) < MAX_REPORTED_PROBLEMS:
            self.problems.append(f"{where}: {why}")


@dataclass(frozen=True)
class PatientPlaces:
    """Where one patient's resources are: (file number, byte offset) each."""

    patient_id: str
    places: tuple[tuple[int, int], ...]


@dataclass
class PatientResources:
    patient_id: str
    patient: dict[str, Any] | None
    keyed: dict[str, list[dict[str, Any]]]
    incomplete: dict[str, str]


def _manifest(folder: Path) -> dict[str, Any]:
    for name in MANIFEST_NAMES:
        path = folder / name
        if path.is_file():
            try:
                document = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as error:
                raise ExportUnusable(f"{path.name}: not readable JSON ({error})") from None
            if isinstance(document, dict) and isinstance(document.get("output"), list):
                return document
            raise ExportUnusable(f"{path.name}: not a Bulk Data manifest (no 'output' list)")
    raise ExportUnusable(f"no export manifest in {folder} (looked for {', '.join(MANIFEST_NAMES)})")


def _files(folder: Path, entries: Any) -> list[tuple[str, Path]]:
    found = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            continue
        name = entry["url"].rstrip("/").rsplit("/", 1)[-1]
        path = folder / name
        if not path.is_file() and not name.endswith(".ndjson"):
            path = folder / f"{name}.ndjson"
        found.append((str(entry.get("type") or ""), path))
    return found


INDEX_BATCH = 5000


class ExportReader:
    """Reads one patient's resources from their places (in the indexing process or in a
    worker: it holds only file paths, the Medications and the error files' findings)."""

    def __init__(
        self,
        paths: list[Path],
        medications: dict[str, dict[str, Any]],
        incomplete: dict[str, str],
    ) -> None:
        self.paths = paths
        self.medications = medications
        self.incomplete = incomplete

    def resources(self, group: PatientPlaces) -> PatientResources:
        """The patient's resources by prefetch key (Medications under medicationRequests)."""
        keyed: dict[str, list[dict[str, Any]]] = {key: [] for key in KEYS.values()}
        patient = None
        handles: dict[int, Any] = {}
        try:
            for index, offset in group.places:
                handle = handles.get(index)
                if handle is None:
                    handle = handles[index] = self.paths[index].open("rb")
                handle.seek(offset)
                # the index read this line whole: it is a resource of a type read here
                resource = strict_json.loads(handle.readline())
                if resource["resourceType"] == "Patient":
                    patient = resource
                else:
                    keyed[KEYS[resource["resourceType"]]].append(resource)
        finally:
            for handle in handles.values():
                handle.close()
        keyed["medicationRequests"].extend(self.medications.values())
        why = self.incomplete.get(group.patient_id)
        incomplete = {key: why for key in KEYS.values()} if why else {}
        return PatientResources(group.patient_id, patient, keyed, incomplete)


class BulkExport:
    """The export's manifest read and its resources indexed by patient (into `scratch`)."""

    def __init__(self, folder: Path, scratch: Path) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise ExportUnusable(f"{folder} is not a folder")
        manifest = _manifest(self.folder)
        self.report = ExportReport()
        self._outputs = [
            (kind, path)
            for kind, path in _files(self.folder, manifest["output"])
            if kind in READ_TYPES
        ]
        self._errors = _files(self.folder, manifest.get("error"))
        missing = [path.name for _, path in self._outputs if not path.is_file()]
        if missing:
            raise ExportUnusable(f"files named in the manifest are missing: {', '.join(missing)}")
        self._medications: dict[str, dict[str, Any]] = {}
        self._incomplete: dict[str, str] = {}
        self._index = sqlite3.connect(Path(scratch) / "export-index.sqlite3")
        self._index.executescript(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;"
            "CREATE TABLE place (patient TEXT NOT NULL, is_patient INTEGER NOT NULL,"
            " file INTEGER NOT NULL, offset INTEGER NOT NULL);"
        )
        self._build_index()
        self.patients = self._index.execute("SELECT count(DISTINCT patient) FROM place").fetchone()[
            0
        ]

    def close(self) -> None:
        self._index.close()

    def _read(self, line: bytes, where: str) -> dict[str, Any] | None:
        if not line.strip():
            return None
        try:
            resource = strict_json.loads(line)
        except ValueError as error:
            self.report.malformed_lines += 1
            self.report.note(where, f"not a JSON resource ({str(error)[:80]})")
            return None
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            self.report.malformed_lines += 1
            self.report.note(where, "not a FHIR resource")
            return None
        return resource

    def _places(self) -> Iterator[tuple[str, int, int, int]]:
        """(patient, is the Patient resource, file, offset) of every resource read."""
        for index, (_, path) in enumerate(self._outputs):
            with path.open("rb") as file:
                offset = 0
                for number, line in enumerate(file, start=1):
                    here, offset = offset, offset + len(line)
                    resource = self._read(line, f"{path.name}:{number}")
                    if resource is None:
                        continue
                    self.report.resources_read += 1
                    kind = resource["resourceType"]
                    if kind == "Patient" and isinstance(resource.get("id"), str):
                        yield resource["id"], 1, index, here
                    elif kind == "Medication" and isinstance(resource.get("id"), str):
                        self._medications[resource["id"]] = resource
                    elif kind in KEYS:
                        owner = subject_patient_id(resource, None)
                        if owner is None:
                            self.report.left_out["its patient cannot be identified"] += 1
                        else:
                            yield owner, 0, index, here
                    else:
                        self.report.left_out[f"a {kind} where its file says another type"] += 1

    def _build_index(self) -> None:
        places = self._places()
        while batch := list(islice(places, INDEX_BATCH)):
            self._index.executemany("INSERT INTO place VALUES (?, ?, ?, ?)", batch)
        self._index.execute("CREATE INDEX place_by_patient ON place (patient, is_patient DESC)")
        (self.report.without_patient_resource,) = self._index.execute(
            "SELECT count(*) FROM place WHERE patient NOT IN"
            " (SELECT patient FROM place WHERE is_patient = 1)"
        ).fetchone()
        for _, path in self._errors:
            if not path.is_file():
                self.report.note(path.name, "error file named in the manifest is missing")
                continue
            with path.open("rb") as file:
                for number, line in enumerate(file, start=1):
                    text = line.decode("utf-8", "replace")
                    for patient in _PATIENT_NAMED.findall(text):
                        self._incomplete[patient] = (
                            f"the export's error file {path.name} (line {number}) names this "
                            "patient"
                        )

    def reader(self) -> ExportReader:
        return ExportReader(
            [path for _, path in self._outputs], self._medications, self._incomplete
        )

    def groups(self) -> Iterator[PatientPlaces]:
        """Each patient's places, patient by patient (the Patient resource first)."""
        rows = self._index.execute(
            "SELECT patient, file, offset FROM place ORDER BY patient, is_patient DESC, file,"
            " offset"
        )
        for patient_id, places in groupby(rows, key=lambda row: row[0]):
            yield PatientPlaces(patient_id, tuple((file, offset) for _, file, offset in places))
