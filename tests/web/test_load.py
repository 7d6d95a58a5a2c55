"""A bounded load test on loopback: the real gunicorn server with several workers, many
concurrent clients, a fixed number of requests. Zero errors; feedback never lost or doubled."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from cds_service.hooks.discovery import SERVICE_BY_HOOK
from cds_service.store.feedback import SqliteStore

from ..builders import record_issued
from ..servers import Server, log_records

FIXTURES = sorted((Path(__file__).resolve().parents[2] / "fixtures").glob("*.json"))
REQUESTS = 300
CLIENTS = 12


@pytest.fixture
def server(tmp_path):
    handle = Server(tmp_path, workers=3)
    yield handle
    handle.close()


def test_concurrent_calls_all_succeed(server):
    bodies = [path.read_bytes() for path in FIXTURES]
    # every hook of the service, each to its own service
    urls = [
        f"{server.url}/cds-services/{SERVICE_BY_HOOK[json.loads(body)['hook']].id}"
        for body in bodies
    ]

    def call(index: int) -> tuple[int, int]:
        with requests.Session() as session:
            response = session.post(
                urls[index % len(bodies)],
                data=bodies[index % len(bodies)],
                headers={"Content-Type": "application/json"},
                timeout=30,
            )
            return response.status_code, len(response.json()["cards"])

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(call, range(REQUESTS)))
    assert [status for status, _ in results] == [200] * REQUESTS
    # Same fixture, same number of cards, whichever worker answered.
    by_fixture: dict[int, set[int]] = {}
    for index, (_, cards) in enumerate(results):
        by_fixture.setdefault(index % len(bodies), set()).add(cards)
    assert all(len(counts) == 1 for counts in by_fixture.values())
    # One line per request, and none of them carries patient data.
    log = (server.tmp_path / "server.log").read_text()
    requests_logged = [
        r for r in log_records(log) if str(r.get("path", "")).startswith("/cds-services/")
    ]
    assert len(requests_logged) == REQUESTS
    # Random ids (the request id, hookInstance) may hold any digits: the check reads the rest.
    texts = []
    for line in log.splitlines():
        if line.startswith("{"):
            fields = json.loads(line)
            texts += [str(v) for k, v in fields.items() if k not in ("requestId", "hookInstance")]
        else:
            texts.append(line)
    for private in ("wm-01-e1", "zanubrutinib", "Fixture", "1955-06-01", "5100"):
        assert not any(private in text for text in texts), private


def test_concurrent_feedback_is_stored_exactly_once_and_survives_restart(server):
    # cards the service issued (as it records them when it answers)
    cards = record_issued(SqliteStore(server.tmp_path / "feedback.sqlite3"), 240)
    items = [
        {
            "card": cards[n],
            "outcome": "overridden",
            "overrideReason": {"userComment": f"comment {n}"},
            "outcomeTimestamp": "2026-11-24T10:00:00Z",
        }
        for n in range(240)
    ]
    url = f"{server.url}/cds-services/wm-igm-response/feedback"
    # Every item is sent twice, by different clients, in batches of 4.
    batches = [items[i : i + 4] for i in range(0, len(items), 4)] * 2

    def send(batch):
        response = requests.post(url, json={"feedback": batch}, timeout=30)
        return response.status_code, response.json()

    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = list(pool.map(send, batches))
    assert {status for status, _ in answers} == {200}
    assert sum(body["stored"] for _, body in answers) == len(items)
    assert sum(body["duplicates"] for _, body in answers) == len(items)

    server.restart()
    rows = SqliteStore(server.tmp_path / "feedback.sqlite3").all()
    assert sorted(row["card"] for row in rows) == sorted(item["card"] for item in items)
    again = requests.post(
        url,
        data=json.dumps({"feedback": items[:4]}),
        headers={"Content-Type": "application/json"},
        timeout=30,
    ).json()
    assert again == {"stored": 0, "duplicates": 4}
