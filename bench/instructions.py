"""`make bench-instructions`: CPU instructions per typical request, step by step.

Wall-clock and CPU time on a shared 2-core virtual machine move by half between machines
and by a tenth between runs, so a change of a few per cent to the request path cannot be
seen in them. The number of instructions a step executes can: under valgrind (callgrind)
it is the same from run to run to within about one per cent, on any machine. It is not
time (a cache miss costs more than an instruction), but a change that removes instructions
from a step makes it faster, and one that adds them makes it slower.

Each step runs in its own process, once `BASE` times and once `BASE + --iterations` times;
the difference, divided by `--iterations`, is what one request costs in that step (start-up
and the first, cold call cancel out). The steps are those of `README.md`'s data flow, on the
benchmark's typical patient (`payloads.patient(40)`, as in `make bench`):

- body: the request body parsed down to each prefetch resource's text (fhir/documents);
- sort: each resource's envelope read and sorted out (fhir/parsing);
- read and map: the read elements checked and mapped to the clinical models (fhir/elements,
  fhir/mapping);
- assess: the rules (clinical/), monitoring included;
- cards: the cards (cards/);
- the whole request through the app (WSGI, as gunicorn calls it); what the steps above do
  not account for is the web layer (Flask, authentication, logging, metrics, the JSON
  answer, the record of issued cards).
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))
import payloads  # noqa: E402  (bench/ is not a package)

TYPICAL = 40
BASE = 5
STEPS = ("body", "sort", "sort+read", "assess", "cards", "request")
_COLLECTED = re.compile(r"Collected : (\d+)")


def _steps(workdir: str) -> dict[str, Callable[[], Any]]:
    """Each step as a call on the previous step's result (computed once, outside the
    count)."""
    os.environ.update(
        {
            "CDS_FEEDBACK_DB": os.path.join(workdir, "feedback.sqlite3"),
            "CDS_MAX_BODY_BYTES": str(16 * 1024 * 1024),
            "CDS_LOG_LEVEL": "INFO",  # as in `make bench`: one log line per request
        }
    )
    from concurrent.futures import ThreadPoolExecutor
    from datetime import date

    from cards import CardContext, build_cards
    from cards.text import DISPLAY_UNITS
    from cds_service.app import create_app
    from cds_service.clinical.assessment import assess_response
    from cds_service.clinical.criteria import profile_named
    from cds_service.clinical.monitoring import monitoring_due
    from cds_service.config import settings_from_env
    from cds_service.fhir.documents import loads_request
    from cds_service.fhir.mapping import to_patient_record
    from cds_service.fhir.parsing import parse_resources
    from cds_service.fhir.prefetch import complete_prefetch
    from cds_service.hooks.discovery import SERVICES

    body = payloads.body(TYPICAL)
    settings = settings_from_env()
    profile = profile_named(settings.criteria)
    today = date.today()
    request = loads_request(body)
    patient_id = request["context"]["patientId"]
    templates = SERVICES["wm-igm-response"].prefetch
    prefetch = complete_prefetch(request, templates, None, ThreadPoolExecutor(1))
    record = to_patient_record(parse_resources(prefetch.resources, patient_id, None))
    assessment = assess_response(record, profile, today)
    due = monitoring_due(assessment, profile, today)
    unit = DISPLAY_UNITS[settings.display_unit]
    context = CardContext(patient_id, "http://127.0.0.1:8080", today, unit=unit)

    app = create_app()
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/cds-services/wm-igm-response",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8080",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    statuses: list[str] = []

    def whole_request() -> None:
        call = {**environ, "wsgi.input": io.BytesIO(body)}
        b"".join(app(call, lambda status, headers, *_: statuses.append(status)))
        if not statuses.pop().startswith("200"):
            raise SystemExit("instructions: the typical request did not answer 200")

    return {
        "body": lambda: loads_request(body),
        "sort": lambda: parse_resources(prefetch.resources, patient_id, None),
        "sort+read": lambda: to_patient_record(
            parse_resources(prefetch.resources, patient_id, None)
        ),
        "assess": lambda: monitoring_due(assess_response(record, profile, today), profile, today),
        "cards": lambda: build_cards(assessment, due, context, profile),
        "request": whole_request,
    }


def _child(step: str, times: int) -> None:
    with tempfile.TemporaryDirectory(prefix="wm-igm-instructions-") as workdir:
        run = _steps(workdir)[step]
        for _ in range(times):
            run()


def _count(step: str, times: int, log: Path) -> subprocess.Popen[str]:
    """A counted run; valgrind's summary goes to `log` (the request's log lines, on
    stderr, are not kept)."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        f"--log-file={log}",
        sys.executable,
        __file__,
        "--child",
        step,
        str(times),
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}  # the same hashes, the same dict probes
    return subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True
    )


def _collected(process: subprocess.Popen[str], log: Path) -> int:
    process.wait()
    summary = log.read_text(errors="replace") if log.exists() else ""
    match = _COLLECTED.search(summary)
    if process.returncode != 0 or match is None:
        raise SystemExit(f"instructions: a counted run failed:\n{summary[-2000:]}")
    return int(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=50, help="counted calls per step")
    parser.add_argument("--child", nargs=2, metavar=("STEP", "TIMES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], int(args.child[1]))
        return 0
    if args.iterations < 1:
        parser.error("--iterations must be at least 1")
    if shutil.which("valgrind") is None:
        print("bench: valgrind is not installed (make bench-instructions installs it)")
        return 2
    per_request = {}
    with tempfile.TemporaryDirectory(prefix="wm-igm-instructions-") as logs:
        for step in STEPS:
            # The two runs of a step at once: one per core.
            base_log, counted_log = Path(logs, f"{step}-base"), Path(logs, f"{step}-counted")
            base = _count(step, BASE, base_log)
            counted = _count(step, BASE + args.iterations, counted_log)
            difference = _collected(counted, counted_log) - _collected(base, base_log)
            per_request[step] = difference / args.iterations
    whole = per_request["request"]
    read_and_map = per_request["sort+read"] - per_request["sort"]
    rows = [
        ("body (fhir/documents)", per_request["body"]),
        ("sort (fhir/parsing)", per_request["sort"]),
        ("read and map (fhir/elements, fhir/mapping)", read_and_map),
        ("assess (clinical/)", per_request["assess"]),
        ("cards (cards/)", per_request["cards"]),
    ]
    rows.append(("web layer and the rest", whole - sum(count for _, count in rows)))
    print(f"\ninstructions per typical request ({TYPICAL} IgM), {args.iterations} counted calls\n")
    print(f"| {'step':<44} | {'instructions':>12} | share |")
    print(f"|{'-' * 46}|{'-' * 13}:|------:|")
    for label, count in rows:
        print(f"| {label:<44} | {count:>12,.0f} | {100 * count / whole:4.1f} % |")
    print(f"| {'the whole request':<44} | {whole:>12,.0f} | 100 % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
