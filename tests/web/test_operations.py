"""Operations (contract v2): /healthz with the version, /readyz, /metrics, request ids, log
lines with time and pid, quiet favicon, and start-up validation in the master."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil

import requests

from .. import servers
from ..builders import founding_request

SERVICE = "/cds-services/wm-igm-response"


def test_request_id_is_kept_when_plain_and_made_otherwise(client, caplog):
    with caplog.at_level(logging.INFO, logger="cds_service"):
        kept = client.get("/healthz", headers={"X-Request-ID": "abc-123.x"})
        made = client.get("/healthz", headers={"X-Request-ID": "bad id <with> spaces"})
    assert kept.headers["X-Request-ID"] == "abc-123.x"
    assert made.headers["X-Request-ID"] != "bad id <with> spaces"
    assert len(made.headers["X-Request-ID"]) == 32
    logged = [r.fields["requestId"] for r in caplog.records if hasattr(r, "fields")]
    assert logged == ["abc-123.x", made.headers["X-Request-ID"]]


def test_log_lines_carry_time_and_pid(client, capsys):
    client.get("/healthz")
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["time"].endswith("+00:00") and line["pid"] == os.getpid()
    assert line["event"] == "request" and line["requestId"]


def test_favicon_is_204_and_not_logged(client, caplog):
    with caplog.at_level(logging.INFO, logger="cds_service"):
        assert client.get("/favicon.ico").status_code == 204
    assert not [r for r in caplog.records if hasattr(r, "fields")]


def test_caveat_pages_ask_for_no_favicon(client):
    assert 'rel="icon"' in client.get("/caveats/no-baseline").get_data(as_text=True)


def test_readyz_follows_the_store_and_recovers_without_restart(make_app, tmp_path):
    db = tmp_path / "store" / "feedback.sqlite3"
    client = make_app(feedback_db=db).test_client()
    assert client.get("/readyz").status_code == 200
    moved = tmp_path / "moved"
    db.parent.rename(moved)  # the store's folder is gone
    db.parent.mkdir()
    db.mkdir()  # and a directory stands where the file was
    lost = client.get("/readyz")
    assert lost.status_code == 503
    assert "store" in lost.get_json()["reason"]
    shutil.rmtree(db.parent)
    moved.rename(db.parent)
    assert client.get("/readyz").status_code == 200


def test_metrics_count_requests_cards_and_412_without_patient_data(client):
    assert client.post(SERVICE, json=founding_request()).status_code == 200
    incomplete = founding_request(missing=("observations",))
    assert client.post(SERVICE, json=incomplete).status_code == 412
    text = client.get("/metrics").get_data(as_text=True)
    assert (
        'cds_requests_total{endpoint="/cds-services/<service_id>",method="POST",status="200"}'
        in text
    )
    assert 'cds_cards_total{category="PR",kind="wm-igm-response"}' in text
    assert "cds_412_total" in text and "cds_request_duration_seconds_bucket" in text
    # no patient data, no ids: not in a label, and no sample is a laboratory value
    labels = " ".join(re.findall(r"\{([^}]*)\}", text))
    for private in ("p1", "5100", "2233", "zanubrutinib", "Patient/"):
        assert private not in labels
    samples = {line.rsplit(" ", 1)[-1] for line in text.splitlines() if not line.startswith("#")}
    assert not samples & {"5100", "5100.0", "2233", "2233.0"}


def test_feedback_about_issued_cards_is_linked_to_their_kind(client, make_app, tmp_path):
    response = client.post(SERVICE, json=founding_request()).get_json()
    card = response["cards"][0]
    store = client.application.extensions["wm_igm_store"]
    feedback = {
        "feedback": [
            {
                "card": card["uuid"],
                "outcome": "overridden",
                "overrideReason": {"reason": card["overrideReasons"][0]},
                "outcomeTimestamp": "2025-01-12T10:00:00Z",
            }
        ]
    }
    assert client.post(SERVICE + "/feedback", json=feedback).status_code == 200
    (row,) = store.outcomes()
    assert (row["kind"], row["category"], row["outcome"]) == (
        "wm-igm-response",
        "PR",
        "overridden",
    )


# Against the real gunicorn server ------------------------------------------------------------


def test_metrics_readiness_and_request_ids_under_gunicorn(tmp_path):
    server = servers.Server(tmp_path)
    try:
        for _ in range(6):  # spread over both workers
            answer = requests.post(server.url + SERVICE, json=founding_request(), timeout=30)
            assert answer.status_code == 200
        assert requests.get(server.url + "/readyz", timeout=10).status_code == 200
        tagged = requests.get(
            server.url + "/healthz", headers={"X-Request-ID": "probe-7"}, timeout=10
        )
        assert tagged.headers["X-Request-ID"] == "probe-7"
        assert tagged.json()["version"] == tagged.headers["X-Service-Version"]
        text = requests.get(server.url + "/metrics", timeout=10).text
        # summed over every worker (multiprocess mode)
        line = next(
            row
            for row in text.splitlines()
            if row.startswith('cds_requests_total{endpoint="/cds-services/<service_id>"')
        )
        assert float(line.rsplit(" ", 1)[1]) == 6.0
    finally:
        server.close()
    records = [json.loads(row) for row in server.log.splitlines() if row.startswith("{")]
    assert {r["logger"] for r in records} >= {"gunicorn.error", "cds_service.requests"}
    assert all("time" in r and "pid" in r for r in records)
    assert any(r.get("requestId") == "probe-7" for r in records)


def test_a_bad_log_level_or_an_unwritable_store_stop_the_master_with_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    for env, word in (
        ({"CDS_LOG_LEVEL": "LOUD"}, "CDS_LOG_LEVEL"),
        ({"CDS_FEEDBACK_DB": str(tmp_path / "file" / "below-a-file.sqlite3")}, "CDS_FEEDBACK_DB"),
    ):
        result = servers.run_gunicorn(tmp_path, f"127.0.0.1:{servers.free_port()}", **env)
        assert result.returncode == 2, result.stderr
        lines = [row for row in result.stderr.splitlines() if row.startswith("cds-service:")]
        assert len(lines) == 1 and word in lines[0]
        assert "Traceback" not in result.stderr
