"""The FHIR fixtures: complete, valid, up to date, and covering what they promise."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle

from cds_service.clinical.models import Caveat
from cds_service.hooks.validation import schema_errors

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = sorted((ROOT / "fixtures").glob("*.json"))
sys.path.insert(0, str(ROOT / "fixtures"))
import generate  # noqa: E402  (fixtures/ is not a package)


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_at_least_twenty_request_fixtures_each_a_valid_request():
    assert len(FIXTURES) >= 20
    for path in FIXTURES:
        request = load(path)
        assert schema_errors("request", request) == [], path.name
        assert request["extension"]["wm-igm-as-of"]
        assert "wm-igm-expected" in request["extension"]


def test_committed_fixtures_are_what_the_generator_writes():
    for patient in generate.patients():
        request_file = ROOT / "fixtures" / f"{patient.key}.json"
        bundle_file = ROOT / "fixtures" / "bundles" / f"{patient.key}.json"
        assert load(request_file) == json.loads(json.dumps(patient.request())), request_file.name
        assert load(bundle_file) == json.loads(json.dumps(patient.transaction())), bundle_file.name


def test_committed_bulk_export_is_what_the_generator_writes(tmp_path, monkeypatch):
    monkeypatch.setattr(generate, "BULK_EXPORT", tmp_path)
    written = generate.write_bulk_export(generate.patients())
    committed = ROOT / "fixtures" / "bulk-export"
    assert sorted(p.name for p in committed.iterdir()) == sorted(p.name for p in written)
    for path in written:
        assert (committed / path.name).read_bytes() == path.read_bytes(), path.name


def test_every_caveat_and_worked_example_is_covered():
    expected = [load(p)["extension"]["wm-igm-expected"] for p in FIXTURES]
    caveats = {c for e in expected for c in e.get("caveats", [])}
    assert caveats == {c.value for c in Caveat}
    titles = " ".join(e["title"] for e in expected)
    for example in ("E1", "E2", "E3", "E4", "E5", "E6", "E7", "E8", "E9", "E10"):
        assert f"{example}:" in titles or f"{example}/" in titles or f"/{example}" in titles, (
            example
        )
    assert any(e.get("cards") == 0 for e in expected)  # no WM data
    assert any(e.get("reason") == "no WM treatment found" for e in expected)  # untreated


@pytest.mark.parametrize(
    "path", sorted((ROOT / "fixtures" / "bundles").glob("*.json")), ids=lambda p: p.name
)
def test_bundles_are_valid_fhir_r4_transactions(path):
    bundle = Bundle.model_validate(load(path))
    assert bundle.type == "transaction"
    assert all(entry.request.method == "PUT" for entry in bundle.entry)
    assert bundle.entry[0].resource.get_resource_type() == "Patient"


def test_worked_examples_page_is_current():
    import render_examples

    committed = (ROOT / "docs" / "worked-examples.md").read_text(encoding="utf-8")
    assert render_examples.render() == committed, "run: python fixtures/render_examples.py"
