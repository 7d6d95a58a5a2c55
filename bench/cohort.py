"""`make bench`, part two: `cds-cohort` on a synthetic Bulk Data export (contract v3,
"Population worklist"): 1,000 and 10,000 patients, wall time and the peak memory of the
whole process tree, and how cost grows between the two.

Targets (issue "Every WM patient at once"): 10,000 patients in <= 60 s on the 2-core
machine, <= 1 GB peak, and time(10,000) / time(1,000) <= 11 (linear).

Each synthetic patient is a fixture patient's history (treatment, conditions, procedures,
other laboratories: the fixture builder's shapes) under a new id, with its IgM course
filled in between the fixture's own results to about 40 results on average.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "fixtures"))
import generate  # noqa: E402  (fixtures/ is not a package)

# After every fixture's last day: every result counts (none is "after today").
AS_OF = "2038-01-01"
MEAN_IGM_RESULTS = 40
TARGET_SECONDS, TARGET_PEAK_MB, TARGET_RATIO = 60.0, 1024.0, 11.0
IGM = "2472-9"


def _templates() -> list[tuple[str, list[dict[str, Any]]]]:
    """(patient id, resources) of every patient-view fixture with an IgM course in mg/dL."""
    found = []
    for patient in generate.patients():
        if patient.hook != "patient-view":
            continue
        resources = [entry["resource"] for entry in patient.transaction()["entry"]]
        if any(_is_igm_mg_dl(r) for r in resources):
            found.append((patient.pid, resources))
    return found


def _is_igm(resource: dict[str, Any]) -> bool:
    if resource.get("resourceType") != "Observation":
        return False
    return IGM in {c.get("code") for c in (resource.get("code") or {}).get("coding", [])}


def _is_igm_mg_dl(resource: dict[str, Any]) -> bool:
    quantity = resource.get("valueQuantity") or {}
    return _is_igm(resource) and quantity.get("code") == "mg/dL" and "comparator" not in quantity


def _filled_course(resources: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """The fixture's IgM results plus results between them on the same line; a few per cent
    of measurement noise on the added ones. Patients whose fixture has fewer than two IgM
    results in mg/dL get none added, so the others get a little more than MEAN_IGM_RESULTS
    (the export's own mean is measured and printed)."""
    own = sorted((r for r in resources if _is_igm_mg_dl(r)), key=lambda r: r["effectiveDateTime"])
    wanted = max(0, rng.randint(MEAN_IGM_RESULTS * 3 // 5, MEAN_IGM_RESULTS * 8 // 5) - len(own))
    if len(own) < 2 or wanted == 0:
        return []
    added, days = [], {r["effectiveDateTime"][:10] for r in own}
    for number in range(wanted * 5):  # days already taken are tried again
        if len(added) == wanted:
            break
        left = rng.randrange(len(own) - 1)
        a, b = own[left], own[left + 1]
        start = datetime.fromisoformat(a["effectiveDateTime"])
        end = datetime.fromisoformat(b["effectiveDateTime"])
        if (end - start).days < 2:
            continue
        share = rng.random()
        when = start + timedelta(days=max(1, int((end - start).days * share)))
        if when.date().isoformat() in days:
            continue  # one result a day: another the same day would be left out
        days.add(when.date().isoformat())
        value = a["valueQuantity"]["value"] + share * (
            b["valueQuantity"]["value"] - a["valueQuantity"]["value"]
        )
        copy = json.loads(json.dumps(a))
        copy["id"] = f"{a['id']}-fill{number}"
        copy["effectiveDateTime"] = when.isoformat()
        copy["issued"] = when.isoformat()
        copy["valueQuantity"]["value"] = round(value * (1 + rng.uniform(-0.03, 0.03)))
        added.append(copy)
    return added


def write_export(folder: Path, patients: int, seed: int = 7) -> tuple[int, int]:
    """A Bulk Data export of `patients` synthetic patients: (resources, IgM results)."""
    rng = random.Random(seed)
    templates = _templates()
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Any] = {}
    written = igm_results = 0
    medications_seen: set[str] = set()
    try:
        for number in range(patients):
            template_id, resources = templates[number % len(templates)]
            new_id = f"syn-{number:06d}"
            text = json.dumps(resources + _filled_course(resources, rng))
            # ids and references of this patient only; shared Medications keep theirs
            text = text.replace(f'"Patient/{template_id}"', f'"Patient/{new_id}"')
            text = text.replace(f'"id": "{template_id}"', f'"id": "{new_id}"')
            for sequence, resource in enumerate(json.loads(text)):
                kind = resource["resourceType"]
                if kind == "Medication":
                    if resource["id"] in medications_seen:
                        continue
                    medications_seen.add(resource["id"])
                elif kind != "Patient":
                    resource["id"] = f"{new_id}-{sequence}"
                if kind not in files:
                    files[kind] = (folder / f"{kind}.ndjson").open("w", encoding="utf-8")
                files[kind].write(json.dumps(resource, separators=(",", ":")) + "\n")
                written += 1
                igm_results += _is_igm(resource)
    finally:
        for file in files.values():
            file.close()
    manifest = generate.bulk_manifest(sorted(files), f"{AS_OF}T00:00:00Z")
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return written, igm_results


def _tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and all its descendants, from /proc."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += next(
                int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")
            )
            for task in Path(f"/proc/{current}/task").iterdir():
                stack.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, StopIteration, ValueError):
            continue
    return total


def run_cohort(folder: Path, out: Path, extra: list[str]) -> tuple[float, float, str]:
    """(seconds, peak MB of the process tree, last line of stderr) of one cds-cohort run."""
    executable = Path(sys.executable).parent / "cds-cohort"
    command = [str(executable), str(folder), "--as-of", AS_OF, "--out", str(out), *extra]
    started = time.perf_counter()
    peak = 0
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)
        try:
            while process.poll() is None:
                peak = max(peak, _tree_rss_kb(process.pid))
                time.sleep(0.05)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
        seconds = time.perf_counter() - started
        errors.seek(0)
        lines = errors.read().decode("utf-8", "replace").strip().splitlines()
    if process.returncode != 0:
        raise RuntimeError(f"cds-cohort failed ({process.returncode}): {lines[-5:]}")
    return seconds, peak / 1024, lines[-1] if lines else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--keep", type=Path, help="build the exports here and keep them")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[int, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="cohort-bench-") as scratch:
        base = args.keep or Path(scratch)
        for size in sizes:
            folder = base / f"export-{size}"
            started = time.perf_counter()
            resources, igm = write_export(folder, size)
            built = time.perf_counter() - started
            print(
                f"export of {size} patients: {resources} resources, {igm / size:.1f} IgM "
                f"results a patient on average, built in {built:.0f} s"
            )
            seconds, peak_mb, summary = run_cohort(folder, base / f"out-{size}", [])
            results[size] = (seconds, peak_mb)
            print(f"  cds-cohort: {seconds:.1f} s, peak {peak_mb:.0f} MB of the process tree")
            print(f"  {summary}")
    print(f"\ncds-cohort on {os.cpu_count()} cores")
    failed = False
    largest = max(sizes)
    seconds, peak_mb = results[largest]
    for label, value, limit in (
        (f"{largest} patients, seconds", seconds, TARGET_SECONDS if largest >= 10000 else None),
        (f"{largest} patients, peak MB", peak_mb, TARGET_PEAK_MB),
    ):
        verdict = "" if limit is None else ("ok" if value <= limit else "MISSED")
        failed |= verdict == "MISSED"
        print(f"  {label:<28} {value:8.1f}  target <= {limit}  {verdict}")
    if len(sizes) > 1:
        smallest = min(sizes)
        ratio = results[largest][0] / results[smallest][0]
        verdict = "ok" if ratio <= TARGET_RATIO * largest / smallest / 10 else "MISSED"
        failed |= verdict == "MISSED"
        print(
            f"  time({largest}) / time({smallest}){'':<6} {ratio:8.2f}  "
            f"target <= {TARGET_RATIO * largest / smallest / 10:g}  {verdict}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
