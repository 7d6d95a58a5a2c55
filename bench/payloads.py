"""Benchmark payloads: CDS Hooks requests for synthetic patients of a given size.

The resources come from the fixture builder (`fixtures/generate.py`), so the benchmark
patient is shaped like the fixtures: like real EHR data.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fixtures"))
from generate import DAY0, Patient  # fixtures/ is not a package: imported from its folder

SPAN_DAYS = 3650  # ten years, up to the latest result a week ago


def patient(igm_results: int) -> Patient:
    """`igm_results` IgM values over the last ten years, an IFE, other labs, three drug
    episodes: a patient followed as the guidelines ask, so the latest IgM is recent.

    IgM falls from 4000 towards 1000 mg/dL; BR in the first year, zanubrutinib from year 4.
    """
    bench = Patient("bench", "benchmark patient", expected={})
    last = (date.today() - DAY0).days - 7  # the builder counts days from its DAY0
    first = last - SPAN_DAYS
    for n in range(igm_results):
        bench.igm(first + (n + 1) * SPAN_DAYS // igm_results, 4000 - (n * 3000) // igm_results)
    bench.ife(last, negative=True)
    for n in range(10):
        bench.other_labs(first + n * 300)
    bench.statement("bendamustine", first + 10, first + 180)
    bench.statement("rituximab", first + 10, first + 180)
    bench.statement("zanubrutinib", first + 1500)
    return bench


def request(
    igm_results: int, prefetch: bool = True, fhir_server: str | None = None
) -> dict[str, Any]:
    document = patient(igm_results).request()
    del document["extension"]  # the fixtures' expected answer and "today": not for the bench
    if not prefetch:
        del document["prefetch"]
    if fhir_server:
        document["fhirServer"] = fhir_server
    return document


def body(igm_results: int, **kwargs: Any) -> bytes:
    return json.dumps(request(igm_results, **kwargs)).encode()
