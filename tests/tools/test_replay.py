"""`cds-replay`: in process and over HTTP, checking expectations, with clear usage errors."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from cds_service.app import create_app
from cds_service.tools.replay import check, main

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
SERVICE_BASE = "http://127.0.0.1:8080"


def run(capsys, *args):
    status = main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_all_fixtures_pass_in_process(capsys):
    status, out, _ = run(capsys, FIXTURES)
    assert status == 0, out
    count = len(list(FIXTURES.glob("*.json")))
    assert out.strip().endswith(f"{count} passed, 0 failed ({count} with expectations)")
    assert (
        "[info] Partial response (PR), IWWM-6: IgM -56.2% (5100 -> 2233 mg/dL) on zanubrutinib"
        in out
    )


def test_all_fixtures_pass_under_the_strict_profile(capsys, monkeypatch):
    # Each fixture whose answer differs without the 500 mg/dL floor says so in byCriteria.
    monkeypatch.setenv("CDS_CRITERIA", "iwwm6-strict")
    status, out, _ = run(capsys, FIXTURES)
    assert status == 0, out
    count = len(list(FIXTURES.glob("*.json")))
    assert out.strip().endswith(f"{count} passed, 0 failed ({count} with expectations)")
    assert "IWWM-6-strict" in out


def test_json_output_is_one_object_per_line(capsys):
    status, out, _ = run(
        capsys, FIXTURES / "01-e1-zanubrutinib-pr.json", FIXTURES / "17-no-wm-data.json", "--json"
    )
    lines = out.strip().splitlines()
    assert status == 0 and len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["ok"] is True and first["status"] == 200
    assert first["response"]["cards"][0]["extension"]["wm-igm-assessment"]["category"] == "PR"
    assert second["response"] == {"cards": []}


def test_a_mismatch_fails_with_a_diff(capsys, tmp_path):
    fixture = json.loads((FIXTURES / "03-e3-minor-response-exactly-25.json").read_text())
    fixture["extension"]["wm-igm-expected"]["category"] = "PR"
    fixture["extension"]["wm-igm-expected"]["caveats"] = []
    path = tmp_path / "wrong.json"
    path.write_text(json.dumps(fixture))
    status, out, _ = run(capsys, path)
    assert status == 1
    assert "category: expected 'PR', got 'MR'" in out
    assert "caveats: expected [], got ['btki-discordance']" in out


def test_as_of_changes_today(capsys):
    # The ibrutinib order ran out on 2024-04-08 and was not renewed: off therapy, IgM is
    # expected every 122 days (§6), and on 2024-08-20 the latest (2024-04-14) is older.
    status, out, _ = run(
        capsys, FIXTURES / "03-e3-minor-response-exactly-25.json", "--as-of", "2024-08-20"
    )
    assert status == 0
    assert "monitoring due" in out
    assert "expected:" not in out  # expectations hold for the fixture's own day only


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.json"], "no such file or directory"),
        (
            [FIXTURES / "bundles" / "01-e1-zanubrutinib-pr.json"],
            "a FHIR Bundle, not a CDS Hooks request",
        ),
        ([FIXTURES / "01-e1-zanubrutinib-pr.json", "--as-of", "yesterday"], "is not a date"),
        ([FIXTURES / "01-e1-zanubrutinib-pr.json", "--url", "ftp://x"], "not an http(s) URL"),
        (
            [FIXTURES / "01-e1-zanubrutinib-pr.json", "--url", "http://127.0.0.1:9/x"],
            "ConnectionError",
        ),
    ],
)
def test_usage_and_file_errors_exit_2(capsys, args, message):
    status, _, err = run(capsys, *args)
    assert status == 2
    assert message in err


def test_invalid_json_and_empty_directory_exit_2(capsys, tmp_path):
    (tmp_path / "bad.json").write_text("{oops")
    status, _, err = run(capsys, tmp_path / "bad.json")
    assert status == 2 and "not valid JSON" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    status, _, err = run(capsys, empty)
    assert status == 2 and "no .json fixtures" in err


@pytest.fixture
def running_service(tmp_path):
    app = create_app(
        {
            "allow_as_of": True,
            "feedback_db": tmp_path / "feedback.sqlite3",
            "public_base_url": SERVICE_BASE,
            "log_level": "WARNING",
            "card_record_seconds": 0,
        }
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/cds-services/wm-igm-response"
    server.shutdown()


def without_uuids(value):
    if isinstance(value, dict):
        return {k: without_uuids(v) for k, v in value.items() if k != "uuid"}
    if isinstance(value, list):
        return [without_uuids(v) for v in value]
    return value


def test_in_process_and_over_http_give_the_same_answers(capsys, running_service):
    status, local, _ = run(capsys, FIXTURES, "--json")
    assert status == 0
    status, remote, _ = run(capsys, FIXTURES, "--json", "--url", running_service)
    assert status == 0
    local_lines = [without_uuids(json.loads(line)) for line in local.splitlines()]
    remote_lines = [without_uuids(json.loads(line)) for line in remote.splitlines()]
    assert len(local_lines) == len(remote_lines) == len(list(FIXTURES.glob("*.json")))
    for mine, theirs in zip(local_lines, remote_lines, strict=True):
        assert mine == theirs, mine["file"]


def test_directory_copy_replays_like_the_original(capsys, tmp_path):
    target = tmp_path / "some"
    target.mkdir()
    shutil.copy(FIXTURES / "10-e10-complete-response.json", target)
    status, out, _ = run(capsys, target)
    assert status == 0 and "Complete response (CR)" in out


def test_a_response_that_breaks_the_cds_hooks_schema_is_a_failure():
    broken = {"cards": [{"summary": "x" * 200, "indicator": "info", "source": {"label": "s"}}]}
    differences = check({"cards": 1}, 200, broken)
    assert differences and differences[0].startswith(
        "response is not valid CDS Hooks: cards[0].summary"
    )


def test_a_service_that_ignores_the_fixtures_day_is_named_as_the_cause(capsys, tmp_path):
    # `make run` does not honour the fixtures' day: say so instead of three bare mismatches.
    app = create_app(
        {"feedback_db": tmp_path / "f.sqlite3", "log_level": "WARNING", "card_record_seconds": 0}
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/cds-services/wm-igm-response"
        status, out, _ = run(capsys, FIXTURES / "19-hyperviscosity-new-start.json", "--url", url)
    finally:
        server.shutdown()
    assert status == 1
    assert "not the fixture's 2024-01-25: start it with CDS_ALLOW_AS_OF=1" in out


def test_the_fetch_path_through_the_fixture_fhir_server(capsys, fhir_base):
    status, out, _ = run(
        capsys,
        FIXTURES / "01-e1-zanubrutinib-pr.json",
        FIXTURES / "25-e12-rituximab-added-to-ibrutinib.json",
        "--fhir-server",
        fhir_base,
    )
    assert status == 0, out
    assert out.strip().endswith("2 passed, 0 failed (2 with expectations)")
