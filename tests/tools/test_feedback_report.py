"""`cds-feedback-report` on a real store written by the real server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import requests

from cds_service.store.feedback import SqliteStore
from cds_service.tools.feedback_report import as_text, summarise

from .. import servers
from ..builders import founding_request

SERVICE = "/cds-services/wm-igm-response"


def _report(tmp_path, *args):
    executable = shutil.which("cds-feedback-report", path=str(Path(sys.executable).parent))
    env = dict(os.environ, CDS_FEEDBACK_DB=str(tmp_path / "feedback.sqlite3"))
    return subprocess.run([executable, *args], env=env, capture_output=True, text=True, timeout=60)


def _feedback(card, outcome, when, reason=None):
    item = {"card": card["uuid"], "outcome": outcome, "outcomeTimestamp": when}
    if outcome == "accepted":
        item["acceptedSuggestions"] = [{"id": s["uuid"]} for s in card.get("suggestions", [])]
    else:
        item["overrideReason"] = {"reason": reason}
    return item


def test_rates_by_kind_category_and_reason_from_the_real_server(tmp_path):
    # issued cards recorded with each answer: the feedback below may reach the other worker
    server = servers.Server(tmp_path, CDS_CARD_RECORD_SECONDS="0")
    try:
        answers = [
            requests.post(server.url + SERVICE, json=founding_request(), timeout=30).json()
            for _ in range(3)
        ]
        # the founding example's data are from 2025: each answer today is a PR card and a
        # monitoring-due card that offers a serum IgM order
        response_cards = [answer["cards"][0] for answer in answers]
        monitoring = answers[0]["cards"][1]
        assert monitoring["source"]["topic"]["code"] == "monitoring-due"
        marrow = response_cards[0]["overrideReasons"][0]
        judgement = response_cards[0]["overrideReasons"][2]
        items = [
            _feedback(monitoring, "accepted", "2025-01-10T09:00:00Z"),
            _feedback(response_cards[1], "overridden", "2025-02-10T09:00:00Z", marrow),
            _feedback(response_cards[2], "overridden", "2025-03-10T09:00:00+01:00", judgement),
            _feedback(response_cards[0], "overridden", "2025-03-10T10:00:00Z", judgement),
        ]
        stored = requests.post(
            server.url + SERVICE + "/feedback", json={"feedback": items}, timeout=30
        )
        assert stored.status_code == 200
        # a card this store never issued is refused (contract v3)...
        unknown = {
            "card": str(uuid.uuid4()),
            "outcome": "overridden",
            "overrideReason": {"userComment": "x"},
            "outcomeTimestamp": "2025-03-11T09:00:00Z",
        }
        refused = requests.post(
            server.url + SERVICE + "/feedback", json={"feedback": [unknown]}, timeout=30
        )
        assert refused.status_code == 400
    finally:
        server.close()
    # ...but a store written before that rule may hold such feedback: the report counts it
    SqliteStore(tmp_path / "feedback.sqlite3").store("wm-igm-response", [unknown])
    result = _report(tmp_path, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["feedback"] == 5
    groups = {(g["kind"], g["category"]): g for g in report["groups"]}
    monitoring_row = groups[("monitoring-due", "-")]
    assert (monitoring_row["accepted"], monitoring_row["acceptanceRate"]) == (1, 100.0)
    pr = groups[("wm-igm-response", "PR")]
    assert (pr["feedback"], pr["accepted"], pr["overridden"], pr["overrideRate"]) == (
        3,
        0,
        3,
        100.0,
    )
    assert groups[("unknown", "-")]["overridden"] == 1
    reasons = {(r["kind"], r["reason"]): r for r in report["overrideReasons"]}
    # 1 of the 3 PR overrides: marrow already assessed; 2 of 3: clinical judgement
    assert reasons[("wm-igm-response", "marrow-assessed")]["shareOfOverrides"] == 33.3
    assert reasons[("wm-igm-response", "clinical-judgement")]["count"] == 2
    assert reasons[("wm-igm-response", "clinical-judgement")]["shareOfOverrides"] == 66.7
    assert reasons[("unknown", "(none given)")]["count"] == 1
    # 2025-03-10T09:00+01:00 is 08:00 UTC on the 10th; three items on or after 2025-03-10
    since = json.loads(_report(tmp_path, "--json", "--since", "2025-03-10").stdout)
    assert since["feedback"] == 3 and since["since"] == "2025-03-10"
    text = _report(tmp_path).stdout
    assert "Override reasons" in text and "marrow-assessed" in text and "66.7" in text


def test_bad_arguments_and_a_missing_store_exit_2(tmp_path):
    assert _report(tmp_path, "--since", "yesterday").returncode == 2
    missing = _report(tmp_path)
    assert missing.returncode == 2 and "no store" in missing.stderr


def test_no_feedback_says_so():
    assert summarise([]) == {"feedback": 0, "groups": [], "overrideReasons": []}


def test_client_text_cannot_forge_or_recolour_a_line_of_the_report():
    item = {
        "service": "wm-igm-response",
        "kind": "wm-igm-response",
        "category": "PR",
        "outcome": "overridden",
        "overrideReason": {
            "reason": {"code": "x\nFeedback items: 0\x1b[31m", "display": "ok\u202eevil\r"}
        },
    }
    report = summarise([item])
    text = as_text(report)
    (reason,) = report["overrideReasons"]
    assert reason["reason"] == "x?Feedback items: 0?[31m" and reason["display"] == "ok?evil?"
    assert "\x1b" not in text and "\u202e" not in text
    assert text.count("Feedback items") == 2  # the header, and the client's text on its line
    assert "\nFeedback items: 0" not in text
