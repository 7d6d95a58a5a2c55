"""`make bench`: the service against its floors, on loopback, in one run, as one table.

The floors and the service run under the same gunicorn settings (2 sync workers; only the
slow FHIR server, which sleeps, is threaded); the load comes from wrk in a separate process.
Ratios from one run are what count: absolute times on a shared 2-core machine drift.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))
import payloads  # noqa: E402  (bench/ is not a package)

from tests.postgres import Postgres, binaries  # noqa: E402  (the tests' throwaway cluster)

# Sync workers: each takes a connection only when idle, so load spreads over both workers.
# (With keep-alive workers, wrk's 8 connections may all land on one worker and halve the
# throughput of whichever server it happens to: noise, not a property of the app.)
GUNICORN_SETTINGS = ["--workers", "2", "--worker-class", "sync"]
SIZES = (10, 100, 1000, 5000)
TYPICAL, LARGE, HUGE = 40, 1000, 5000
ROUNDS = 5


@dataclass
class Result:
    label: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_ms: float = 0.0  # worker CPU time per request: steadier than wall time here


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


READY_SECONDS = 120


class Server:
    def __init__(
        self,
        app: str,
        workdir: Path,
        env: dict[str, str] | None = None,
        settings: list[str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        gunicorn = Path(sys.executable).parent / "gunicorn"
        self.log = (workdir / f"{app.split(':')[0]}-{self.port}.log").open("ab")
        self.process = subprocess.Popen(
            [
                str(gunicorn),
                *(settings or GUNICORN_SETTINGS),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--pythonpath",
                str(HERE),
                app,
            ],
            env={**os.environ, **(env or {})},
            stdout=self.log,
            stderr=self.log,
            start_new_session=True,  # its own process group: stop() ends it and its workers
        )
        # A loaded machine can take long to import a worker: retry on any error, generously.
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                requests.get(self.url, timeout=5)
                return
            except requests.RequestException:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{app} did not start; its log is in {workdir}")

    def worker_peak_mb(self) -> float:
        peaks = []
        for pid in self._workers():
            status = Path(f"/proc/{pid}/status").read_text()
            match = re.search(r"VmHWM:\s+(\d+) kB", status)
            if match:
                peaks.append(int(match.group(1)) / 1024)
        return max(peaks, default=0.0)

    def workers_cpu_seconds(self) -> float:
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in self._workers():
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
        return total

    def _workers(self) -> list[str]:
        return subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True
        ).stdout.split()

    def stop(self) -> None:
        """SIGTERM to the whole group; SIGKILL if it has not ended in 30 s."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        self.log.close()


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


def wrk(url: str, body: Path | None, connections: int, seconds: int, label: str) -> Result:
    threads = min(connections, 2)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    env = dict(os.environ)
    if body is not None:
        command[1:1] = ["-s", str(HERE / "post.lua")]
        env["BODY"] = str(body)
    finished = subprocess.run(command, capture_output=True, text=True, env=env)
    if finished.returncode != 0:
        raise RuntimeError(f"wrk failed on {url}: {finished.stderr.strip() or finished.stdout}")
    output = finished.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p50 = _ms(re.search(r"\s50%\s+(\S+)", output).group(1))
    p99 = _ms(re.search(r"\s99%\s+(\S+)", output).group(1))
    errors_match = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    errors = int(errors_match.group(1)) if errors_match else 0
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return Result(label, connections, rps, p50, p99, errors)


def median(results: list[Result]) -> Result:
    first = results[0]
    return Result(
        first.label,
        first.connections,
        statistics.median(r.rps for r in results),
        statistics.median(r.p50_ms for r in results),
        statistics.median(r.p99_ms for r in results),
        sum(r.errors for r in results),
        statistics.median(r.cpu_ms for r in results),
    )


def measure(
    server: Server, path: str, body: Path | None, connections: int, seconds: int, label: str
) -> Result:
    url = server.url + path
    wrk(url, body, connections, 1, label)  # warm up: imports, caches, connections
    before = server.workers_cpu_seconds()
    result = wrk(url, body, connections, seconds, label)
    spent = server.workers_cpu_seconds() - before
    result.cpu_ms = spent * 1000 / max(result.rps * seconds, 1)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8, help="measuring time per scenario")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed (make bench installs it)", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="wm-igm-bench-"))
    bodies = {}
    for size in {*SIZES, TYPICAL}:
        bodies[size] = workdir / f"patient-{size}.json"
        bodies[size].write_bytes(payloads.body(size))
    service_env = {
        "CDS_FEEDBACK_DB": str(workdir / "feedback.sqlite3"),
        "CDS_MAX_BODY_BYTES": str(16 * 1024 * 1024),
        "CDS_LOG_LEVEL": "INFO",
    }
    servers: list[Server] = []
    postgres = Postgres(durable=True) if binaries() else None  # fsync on, as in production
    if postgres is None:
        print("bench: PostgreSQL is not installed (make postgres): no PostgreSQL store row")

    def launch(*args: Any, **kwargs: Any) -> Server:
        servers.append(Server(*args, **kwargs))  # stopped in `finally`, whatever happens next
        return servers[-1]

    try:
        floor_a = launch("floors:floor_a()", workdir)
        floor_b = launch("floors:floor_b()", workdir)
        service = launch("cds_service.app:create_app()", workdir, service_env)
        contenders = [("floor A", floor_a), ("floor B", floor_b), ("service", service)]
        if postgres is not None:
            # The same service on the shared store (CDS_DATABASE_URL) instead of SQLite.
            pg_env = {**service_env, "CDS_DATABASE_URL": postgres.url}
            contenders.append(
                ("service, PostgreSQL", launch("cds_service.app:create_app()", workdir, pg_env))
            )
        fhir = launch(
            "slow_fhir:create_app()",
            workdir,
            settings=["--workers", "1", "--worker-class", "gthread", "--threads", "16"],
        )
        path = "/cds-services/wm-igm-response"
        fetch_body = workdir / "fetch.json"
        fetch_body.write_bytes(
            payloads.body(TYPICAL, prefetch=False, fhir_server=f"{fhir.url}/fhir")
        )

        seconds = args.seconds
        rows: list[Result] = []
        # Interleaved rounds, medians: a noisy neighbour then hurts every contender alike.
        rounds: dict[str, list[Result]] = {name: [] for name, _ in contenders}
        for _ in range(ROUNDS):
            for name, server in contenders:
                label = f"{name}, typical ({TYPICAL} IgM)"
                rounds[name].append(measure(server, path, bodies[TYPICAL], 8, seconds, label))
        typical = {name: median(results) for name, results in rounds.items()}
        rows += typical.values()
        sizes_b, sizes_s = {}, {}
        for size in SIZES:
            sizes_b[size] = measure(floor_b, path, bodies[size], 1, seconds, f"floor B, {size} IgM")
            sizes_s[size] = measure(service, path, bodies[size], 1, seconds, f"service, {size} IgM")
            rows += [sizes_b[size], sizes_s[size]]
            if size == LARGE:
                peak_large = service.worker_peak_mb()
        peak_all = service.worker_peak_mb()
        typical_single = measure(
            service, path, bodies[TYPICAL], 1, seconds, "service, typical, 1 conn"
        )
        one_query = measure(
            fhir, "/fhir/Observation", None, 1, seconds, "one FHIR query (50 ms added)"
        )
        fetch = measure(service, path, fetch_body, 1, seconds, "service, fetch (no prefetch)")
        rows += [typical_single, one_query, fetch]
    finally:
        for server in servers:
            server.stop()
        if postgres is not None:
            postgres.close()

    print(
        f"\nmachine: {platform.node()} | {platform.processor() or platform.machine()} | "
        f"{os.cpu_count()} cores | Python {platform.python_version()} | {time.strftime('%Y-%m-%d')}"
    )
    print(
        f"gunicorn {' '.join(GUNICORN_SETTINGS)}; load: wrk; {seconds}s per scenario; "
        f"typical rows: median of {ROUNDS} interleaved rounds\n"
    )
    print(f"| {'scenario':<38} | conns | req/s   | p50 ms  | p99 ms  | CPU ms/req | errors |")
    print(f"|{'-' * 40}|------:|--------:|--------:|--------:|-----------:|-------:|")
    for row in rows:
        print(
            f"| {row.label:<38} | {row.connections:>5} | {row.rps:>7.1f} | {row.p50_ms:>7.1f} | "
            f"{row.p99_ms:>7.1f} | {row.cpu_ms:>10.2f} | {row.errors:>6} |"
        )
    print(
        f"\npeak memory per service worker: {peak_large:.0f} MB after {LARGE} IgM, "
        f"{peak_all:.0f} MB after {max(SIZES)}"
    )

    fetch_budget = 1.5 * one_query.p50_ms + typical_single.p50_ms

    def growth(rows: dict[int, Result]) -> float:
        return (rows[5000].p50_ms - rows[10].p50_ms) / (rows[1000].p50_ms - rows[10].p50_ms)

    checks = [
        (
            "typical: throughput >= 3 x floor B",
            typical["service"].rps / typical["floor B"].rps,
            ">=",
            3.0,
        ),
        (
            "typical: worker CPU per request <= 3 x floor A",
            typical["service"].cpu_ms / typical["floor A"].cpu_ms,
            "<=",
            3.0,
        ),
        (
            "typical: p99 <= 1.5 x floor B p99",
            typical["service"].p99_ms / typical["floor B"].p99_ms,
            "<=",
            1.5,
        ),
        (
            f"large ({LARGE}): p50 <= 0.3 x floor B p50",
            sizes_s[LARGE].p50_ms / sizes_b[LARGE].p50_ms,
            "<=",
            0.3,
        ),
        (
            f"largest ({HUGE}): p99 <= 0.3 x floor B p99",
            sizes_s[HUGE].p99_ms / sizes_b[HUGE].p99_ms,
            "<=",
            0.3,
        ),
        (f"largest ({HUGE}): p99 (ms)", sizes_s[HUGE].p99_ms, "<=", 500),
        ("cost growth 1000 -> 5000 IgM (linear: 5.0)", growth(sizes_s), "<=", 5.5),
        ("fetch: p50 <= 1.5 x query + typical (ms)", fetch.p50_ms, "<=", fetch_budget),
        # Memory: no higher than before the lean reader (76 and 108 MB, whole-resource models).
        (f"peak memory per worker, {LARGE} IgM (MB)", peak_large, "<=", 76),
        (f"peak memory per worker, {HUGE} IgM (MB)", peak_all, "<=", 108),
        ("errors in all scenarios", sum(r.errors for r in rows), "<=", 0),
    ]
    if "service, PostgreSQL" in typical:
        checks.append(
            (
                "typical: PostgreSQL store throughput >= 95% of SQLite",
                typical["service, PostgreSQL"].rps / typical["service"].rps,
                ">=",
                0.95,
            )
        )
    print("\n| target | measured | limit | |\n|---|---:|---:|---|")
    failed = 0
    for name, value, op, limit in checks:
        ok = value >= limit if op == ">=" else value <= limit
        failed += not ok
        print(f"| {name} | {value:.2f} | {op} {limit:.2f} | {'ok' if ok else 'MISSED'} |")
    service_rps = typical["service"].rps
    print(
        f"\nratios: typical throughput {service_rps / typical['floor B'].rps:.2f} of floor B, "
        f"{service_rps / typical['floor A'].rps:.2f} of floor A; worker CPU per request "
        f"{typical['service'].cpu_ms / typical['floor A'].cpu_ms:.2f} x floor A and "
        f"{typical['service'].cpu_ms / typical['floor B'].cpu_ms:.2f} x floor B (typical), "
        f"{sizes_s[LARGE].cpu_ms / sizes_b[LARGE].cpu_ms:.2f} x floor B ({LARGE} IgM); "
        f"cost growth 1000 -> 5000 IgM of floor B itself {growth(sizes_b):.2f}"
    )
    (workdir / "result.json").write_text(json.dumps([r.__dict__ for r in rows], indent=2))
    print(f"\nserver logs, payloads and result.json: {workdir}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
