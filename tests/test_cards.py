"""Cards: wording, limits, links, suggestions and escaping (contract.md "Cards")."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest
from fhir.resources.R4B.servicerequest import ServiceRequest

from cards.build import SUMMARY_LIMIT, CardContext, build_cards, response_summary
from cds_service.clinical.criteria import IWWM6
from cds_service.clinical.models import (
    Assessment,
    Category,
    Caveat,
    ImmunofixationResult,
    LabResult,
    MonitoringDue,
    Progression,
    Series,
    TherapyLine,
    TreatmentCourse,
)
from cds_service.clinical.valuesets import WM_DRUGS
from cds_service.validation import schema_errors

from .builders import hook_request, igm, on, statement

CONTEXT = CardContext(patient_id="p1", base_url="https://cds.example.org", today=date(2026, 1, 1))


def result(value, day=date(2025, 1, 1), upper=False):
    return LabResult("Observation/x", Series.TOTAL_IGM, day, Decimal(value), upper_bound=upper)


def line(*drugs):
    courses = tuple(
        TreatmentCourse(drug.ingredient, drug.drug_class, date(2024, 1, 1), None, False, False)
        for drug in drugs
    )
    return TherapyLine(start=date(2024, 1, 1), courses=courses)


def assessment(category=Category.PR, **overrides):
    values = dict(
        criteria="IWWM-6",
        category=category,
        series=Series.TOTAL_IGM,
        percent_change=Fraction(-562, 10),
        baseline=result(5100, date(2024, 1, 1)),
        nadir=result(2233),
        latest=result(2233),
        line=line(WM_DRUGS[2]),
        uln_mg_dl=Decimal(230),
        uln_is_default=True,
    )
    values.update(overrides)
    return Assessment(**values)


def cards_for(a, due=None):
    cards = build_cards(a, due, CONTEXT, IWWM6)
    errors = schema_errors("response", {"cards": cards})
    assert not errors, errors
    return cards


@pytest.mark.parametrize(
    "category, words",
    [
        (Category.CR, "Complete response (CR)"),
        (Category.VGPR, "Very good partial response (VGPR)"),
        (Category.PR, "Partial response (PR)"),
        (Category.MR, "Minor response (MR)"),
        (Category.SD, "Stable disease (SD)"),
        (Category.PD, "Progressive disease (PD)"),
    ],
)
def test_summary_names_category_in_words_and_abbreviation(category, words):
    (card,) = cards_for(assessment(category))
    assert card["summary"].startswith(words + ", IWWM-6: IgM")


def test_not_evaluable_summary_gives_the_reason():
    a = assessment(
        Category.NE, percent_change=None, baseline=None, reason="no on-treatment result yet"
    )
    (card,) = cards_for(a)
    assert card["summary"] == "Not evaluable (NE), IWWM-6: no on-treatment result yet"


def test_longest_regimen_and_largest_numbers_stay_under_140_without_cutting_words():
    a = assessment(
        Category.VGPR,
        percent_change=Fraction(-9999999, 100000),
        baseline=result("123456789.123"),
        latest=result("0.0001", upper=True),
        change_is_bound=True,
        line=line(*WM_DRUGS),
    )
    summary = response_summary(a)
    assert len(summary) <= SUMMARY_LIMIT
    assert summary.startswith("Very good partial response (VGPR), IWWM-6: IgM -99.9% or more")
    # Degrades by dropping whole parts: it ends at a word or value boundary.
    assert re.search(r"(mg/dL\)|more|[a-z]+)$", summary)


def test_long_regimen_is_shortened_not_cut():
    a = assessment(line=line(*WM_DRUGS[:6]))
    summary = response_summary(a)
    assert len(summary) <= SUMMARY_LIMIT
    assert summary.endswith("on ibrutinib + 5 more") or summary.endswith("mg/dL)")


def test_progression_and_possible_progression_are_warnings():
    (pd,) = cards_for(assessment(Category.PD, nadir=result(900), latest=result(1250)))
    assert pd["indicator"] == "warning"
    assert "+38.8% from nadir" in pd["summary"]
    possible = assessment(
        Category.MR, progression=Progression.POSSIBLE, caveats=(Caveat.UNCONFIRMED_PROGRESSION,)
    )
    (card,) = cards_for(possible)
    assert card["indicator"] == "warning"
    (suggestion,) = card["suggestions"]
    assert card["selectionBehavior"] == "at-most-one"
    resource = ServiceRequest.model_validate(suggestion["actions"][0]["resource"])
    assert resource.code.coding[0].code == "2472-9"
    assert resource.subject.reference == "Patient/p1"
    assert (resource.status, resource.intent) == ("draft", "proposal")


def test_hyperviscosity_card_suggests_serum_viscosity():
    a = assessment(caveats=(Caveat.HYPERVISCOSITY_RISK,), latest_total_igm=result(5600))
    _response_card, card = cards_for(a)
    assert card["indicator"] == "warning"
    assert "5600 mg/dL" in card["summary"]
    resource = ServiceRequest.model_validate(card["suggestions"][0]["actions"][0]["resource"])
    assert resource.code.coding[0].code == "3128-6"
    assert resource.code.coding[0].display == "Viscosity of Serum"


def test_monitoring_card():
    due = MonitoringDue(
        last_result_day=date(2025, 1, 1),
        days_since=120,
        interval_days=92,
        line_start=date(2024, 1, 1),
    )
    cards = cards_for(assessment(), due)
    card = cards[-1]
    assert card["indicator"] == "info"
    assert "monitoring due" in card["summary"].lower()
    assert "2025-01-01" in card["detail"] and "120 days" in card["detail"]


def test_every_caveat_has_a_link_a_sentence_and_a_page(client):
    a = assessment(caveats=tuple(Caveat), latest_total_igm=result(4500))
    (card, *_) = cards_for(a)
    links = {link["url"] for link in card["links"]}
    for caveat in Caveat:
        url = f"https://cds.example.org/caveats/{caveat.value}"
        assert url in links
        assert url in card["detail"]
        page = client.get(f"/caveats/{caveat.value}")
        assert page.status_code == 200
        assert page.mimetype == "text/html"
        html = page.get_data(as_text=True)
        assert "<h1>" in html and "Sources" in html
        assert "<script" not in html and "http://" not in html.split("<body>")[0]
    assert client.get("/caveats/not-a-caveat").status_code == 404


def test_detail_has_table_duration_uln_and_what_the_service_cannot_see():
    a = assessment(response_since=date(2024, 6, 1), durable=False)
    (card,) = cards_for(a)
    detail = card["detail"]
    assert "| Baseline | 5100 | 2024-01-01 |" in detail
    assert "Upper limit of normal: 230 mg/dL (default" in detail
    assert "Response since 2024-06-01, held 7 months so far" in detail
    assert "cannot see the bone marrow, imaging or symptoms" in detail
    assert card["source"]["url"] == "https://doi.org/10.1111/bjh.12102"
    assert all(reason["display"] for reason in card["overrideReasons"])


def test_each_card_has_a_fresh_uuid():
    first = cards_for(assessment())[0]["uuid"]
    second = cards_for(assessment())[0]["uuid"]
    assert first != second


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        "[click](javascript:alert(1))",
        "<img src=x onerror=alert(1)>",
        "**bold** | table",
    ],
)
def test_text_from_the_ehr_is_escaped_in_detail(call, hostile):
    bad = igm("o3", 200, 20, hostile, ucum=False)
    request = hook_request(
        [igm("o1", -5, 5100), igm("o2", 360, 2233), bad], [statement("m1", "zanubrutinib", 0)]
    )
    detail = call(request, today=on(363))["cards"][0]["detail"]
    assert hostile not in detail
    assert "<script" not in detail and "<img" not in detail and "](javascript" not in detail
    assert "Observation/o3" in detail


def test_cr_card_names_the_immunofixation_it_rests_on():
    ife = ImmunofixationResult("Observation/ife", date(2025, 1, 2), negative=True)
    a = assessment(Category.CR, latest_immunofixation=ife, caveats=(Caveat.CR_NEEDS_MARROW,))
    (card,) = cards_for(a)
    assert "Serum immunofixation after therapy start: **negative (2025-01-02)**" in card["detail"]
