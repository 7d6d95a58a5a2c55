"""Scale-out: several instances on one PostgreSQL store (CDS_DATABASE_URL), against a real
PostgreSQL server and real gunicorn processes on loopback."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import jwt
import psycopg
import pytest
import requests

from .. import servers
from ..builders import founding_request, record_issued
from ..postgres import Postgres, binaries
from ..web.test_security import EC_KEY, ISS, public_jwk

if binaries() is None:
    if os.environ.get("REQUIRE_POSTGRES"):
        raise RuntimeError("PostgreSQL is required (REQUIRE_POSTGRES is set) but not installed")
    pytest.skip(
        "PostgreSQL is not installed (`make postgres` installs it)", allow_module_level=True
    )

from cds_service.store.postgres import PostgresStore
from cds_service.store.sql import StoreUnavailable

SERVICE = "/cds-services/wm-igm-response"
PUBLIC = "https://cds.example.org"  # both instances sit behind one load balancer


@pytest.fixture(scope="module")
def postgres():
    server = Postgres()
    try:
        yield server
    finally:
        server.close()


def _count(url, table):
    with psycopg.connect(url) as connection:
        return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


# The store itself ------------------------------------------------------------------------------


def test_a_jti_is_inserted_once_and_expired_ones_are_purged(postgres):
    store = PostgresStore(postgres.url)
    now = int(time.time())
    assert store.first_use(ISS, "j-1", now + 300) is True
    assert store.first_use(ISS, "j-1", now + 300) is False
    assert store.first_use("https://other.example", "j-1", now + 300) is True
    store._last_purge = 0.0  # the next call may purge
    store.first_use(ISS, "j-old", now - 3600)  # expired long ago: kept only until a purge
    store._last_purge = 0.0
    store.first_use(ISS, "j-2", now + 300)
    with psycopg.connect(postgres.url) as connection:
        rows = connection.execute("SELECT jti FROM seen_jti WHERE jti = 'j-old'").fetchall()
    assert rows == []
    store.close()


def test_every_instance_reads_the_same_shared_secret(postgres):
    """The SMART app's launch cookie is signed with it: a launch begun on one instance is
    finished on another."""
    first, second = PostgresStore(postgres.url), PostgresStore(postgres.url)
    try:
        secret = first.shared_secret("smart")
        assert len(secret) >= 32
        assert second.shared_secret("smart") == secret == first.shared_secret("smart")
        assert first.shared_secret("other") != secret
    finally:
        first.close()
        second.close()


def _prepare(url, barrier, failures):
    barrier.wait()
    try:
        PostgresStore(url).close()
    except Exception as error:  # reported to the test, which names it
        failures.put(f"{type(error).__name__}: {error}")


def test_many_instances_starting_at_once_create_the_schema_once(postgres):
    with psycopg.connect(postgres.url, autocommit=True) as connection:
        connection.execute("DROP TABLE IF EXISTS feedback, issued_card, seen_jti")
    context = multiprocessing.get_context("fork")
    barrier, failures = context.Barrier(6), context.Queue()
    processes = [
        context.Process(target=_prepare, args=(postgres.url, barrier, failures)) for _ in range(6)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    assert failures.empty(), failures.get()
    assert _count(postgres.url, "feedback") == 0


def test_an_unreachable_database_is_store_unavailable():
    with pytest.raises(StoreUnavailable):
        PostgresStore(f"postgresql://postgres@127.0.0.1:{servers.free_port()}/postgres")


# Two instances ----------------------------------------------------------------------------------


class Instances:
    def __init__(self, tmp_path, url):
        issuers = tmp_path / "issuers.json"
        issuers.write_text(
            json.dumps(
                {"issuers": [{"iss": ISS, "jwks": {"keys": [public_jwk(EC_KEY, "ec-1", "ES384")]}}]}
            )
        )
        env = {
            "CDS_DATABASE_URL": url,
            "CDS_TRUSTED_ISSUERS": str(issuers),
            "CDS_PUBLIC_BASE_URL": PUBLIC,
        }
        self.dirs, self.urls, self.processes = [], [], []
        try:
            for name in ("a", "b"):
                folder = tmp_path / name
                folder.mkdir()
                port = servers.free_port()
                self.processes.append(servers.start(folder, port, **env))
                self.dirs.append(folder)
                self.urls.append(f"http://127.0.0.1:{port}")
        except BaseException:
            self.close()
            raise

    def log(self, index):
        return (self.dirs[index] / "server.log").read_text(errors="replace")

    def close(self):
        for process in self.processes:
            servers.stop(process)


@pytest.fixture
def instances(tmp_path, postgres):
    handle = Instances(tmp_path, postgres.url)
    try:
        yield handle
    finally:
        handle.close()


def token(path=SERVICE):
    now = int(time.time())
    claims = {
        "iss": ISS,
        "aud": PUBLIC + path,
        "exp": now + 300,
        "iat": now,
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(claims, EC_KEY, algorithm="ES384", headers={"kid": "ec-1"})


def call(base, bearer, body=None, path=SERVICE):
    return requests.post(
        base + path,
        json=body if body is not None else founding_request(),
        headers={"Authorization": f"Bearer {bearer}"},
        timeout=30,
    )


def _issued_in(postgres, count):
    """Cards recorded as issued to ISS (feedback is accepted only for those)."""
    store = PostgresStore(postgres.url, prepare=False)
    try:
        return record_issued(store, count, issuer=ISS)
    finally:
        store.close()


def _feedback(n, card=None):
    return {
        "card": card or str(uuid.uuid4()),
        "outcome": "overridden",
        "overrideReason": {"userComment": f"comment {n}"},
        "outcomeTimestamp": "2026-11-24T10:00:00Z",
    }


def test_a_token_used_on_one_instance_is_refused_on_the_other(instances):
    bearer = token()
    assert call(instances.urls[0], bearer).status_code == 200
    assert call(instances.urls[1], bearer).status_code == 401
    assert "replay" in instances.log(1)


def test_concurrent_feedback_to_both_instances_is_stored_exactly_once(instances, postgres):
    before = _count(postgres.url, "feedback")
    cards = _issued_in(postgres, 60)
    items = [_feedback(n, cards[n]) for n in range(60)]
    path = SERVICE + "/feedback"
    jobs = [(base, items[i : i + 3]) for i in range(0, len(items), 3) for base in instances.urls]

    def send(job):
        base, batch = job
        return call(base, token(path), {"feedback": batch}, path).json()

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, jobs))
    assert sum(a["stored"] for a in answers) == len(items)
    assert sum(a["duplicates"] for a in answers) == len(items)
    assert _count(postgres.url, "feedback") - before == len(items)


def _wait(condition, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return condition()


def _status(url):
    try:
        return requests.get(url, timeout=10).status_code
    except requests.RequestException:
        return None


def test_losing_the_database_is_503_never_500_and_recovers_without_restart(instances, postgres):
    used = token()
    assert call(instances.urls[0], used).status_code == 200
    cards = _issued_in(postgres, 3)
    with psycopg.connect(postgres.url, autocommit=True) as connection:
        connection.execute("CHECKPOINT")  # issued cards are written without waiting for disk
    pending = [_feedback(n, cards[n]) for n in range(3)]
    path = SERVICE + "/feedback"
    postgres.stop("immediate")
    try:
        assert _wait(lambda: _status(instances.urls[0] + "/readyz") == 503, 30)
        during = token()
        # the replay check cannot run: never let a token through unchecked
        assert call(instances.urls[1], during).status_code == 503
        assert call(instances.urls[1], used).status_code == 503
        refused = call(instances.urls[0], token(path), {"feedback": pending}, path)
        assert refused.status_code == 503 and refused.headers["Retry-After"]
    finally:
        postgres.start()
    for url in instances.urls:
        assert _wait(lambda url=url: _status(url + "/readyz") == 200), "no recovery"
    # nothing was half-written: the retried feedback is stored in full, once
    retried = call(instances.urls[1], token(path), {"feedback": pending}, path).json()
    assert retried == {"stored": 3, "duplicates": 0}
    # a token used before the outage is still a replay, on either instance
    assert call(instances.urls[1], used).status_code == 401
    # the one refused with 503 was never recorded as used: it works once, then it is a replay
    assert call(instances.urls[0], during).status_code == 200
    assert call(instances.urls[1], during).status_code == 401
    for index in (0, 1):
        assert "Traceback" not in instances.log(index)
        assert servers.statuses(instances.log(index))
        assert 500 not in servers.statuses(instances.log(index))


def test_the_database_down_at_start_up_is_one_line_and_exit_2(tmp_path):
    closed = f"postgresql://postgres@127.0.0.1:{servers.free_port()}/postgres"
    result = servers.run_gunicorn(
        tmp_path, f"127.0.0.1:{servers.free_port()}", CDS_DATABASE_URL=closed
    )
    assert result.returncode == 2
    lines = [row for row in result.stderr.splitlines() if row.startswith("cds-service:")]
    assert len(lines) == 1 and "CDS_DATABASE_URL" in lines[0]
    assert "Traceback" not in result.stderr


def test_a_locked_table_ends_the_request_with_503_inside_the_clients_10_s(instances, postgres):
    """contract v3: a statement or lock timeout, not a request that outlives the EHR's
    patience and then records the token's jti (so that the EHR's retry is a "replay")."""
    with psycopg.connect(postgres.url) as holder:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE seen_jti IN ACCESS EXCLUSIVE MODE")
        bearer = token()
        started = time.monotonic()
        response = call(instances.urls[0], bearer)
        took = time.monotonic() - started
        started = time.monotonic()
        ready = requests.get(instances.urls[0] + "/readyz", timeout=30).status_code
        ready_took = time.monotonic() - started
        health = requests.get(instances.urls[0] + "/healthz", timeout=30)
        holder.execute("ROLLBACK")
    assert response.status_code == 503 and took < 8
    assert health.status_code == 200
    assert ready in (200, 503) and ready_took < 4  # within about 3 s, whatever the store does
    # nothing was recorded: the same token, retried once the lock is gone, is accepted
    assert call(instances.urls[0], bearer).status_code == 200
