"""Cards: wording, limits, links, suggestions and escaping (contract.md "Cards")."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from fhir.resources.R4B.servicerequest import ServiceRequest

from cards.build import CardContext, build_cards
from cards.summary import SUMMARY_LIMIT, response_summary
from cds_service.clinical.criteria import IWWM6
from cds_service.clinical.models import (
    Assessment,
    Category,
    Caveat,
    Hyperviscosity,
    IfeReading,
    ImmunofixationResult,
    LabResult,
    MonitoringDue,
    MonitoringReason,
    MonitoringState,
    Progression,
    Series,
    TherapyLine,
    TreatmentCourse,
)
from cds_service.clinical.valuesets import WM_DRUGS
from cds_service.config import ConfigError, settings_from_env
from cds_service.hooks.validation import schema_errors

from ..builders import hook_request, igm, on, statement

CONTEXT = CardContext(patient_id="p1", base_url="https://cds.example.org", today=date(2026, 1, 1))


def result(value, day=date(2025, 1, 1), upper=False, series=Series.TOTAL_IGM):
    comparator = "<" if upper else None
    return LabResult("Observation/x", series, day, Decimal(value), comparator=comparator)


def line(*drugs, end=None):
    courses = tuple(
        TreatmentCourse(drug.ingredient, drug.drug_class, date(2024, 1, 1), end, False)
        for drug in drugs
    )
    return TherapyLine(start=date(2024, 1, 1), courses=courses)


def finding(value=5600, warning=True, order_due=True):
    return Hyperviscosity(
        reference_value=result(value),
        warning_card=warning,
        latest_viscosity=None,
        viscosity_order_due=order_due,
    )


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
    # the latest value (2025-01-01) is more than 92 days before today: the summary says so
    assert card["summary"] == (
        "Not evaluable (NE), IWWM-6: no on-treatment result yet, latest 2025-01-01"
    )


def test_longest_regimen_and_largest_numbers_stay_under_140_without_cutting_words():
    a = assessment(
        Category.VGPR,
        percent_change=Fraction(-9999999, 100000),
        baseline=result("123456789.123"),
        latest=result("0.0001", upper=True),
        change_is_bound=True,
        line=line(*WM_DRUGS),
    )
    summary = response_summary(a, CONTEXT.today)
    assert len(summary) <= SUMMARY_LIMIT
    assert summary.startswith("Very good partial response (VGPR), IWWM-6: IgM -99.9% or more")
    # Degrades by dropping whole parts: it ends at a word or value boundary.
    assert re.search(r"(mg/dL\)|more|[a-z]+)$", summary)


def test_long_regimen_is_shortened_not_cut():
    a = assessment(line=line(*WM_DRUGS[:6]))
    summary = response_summary(a, CONTEXT.today)
    assert len(summary) <= SUMMARY_LIMIT
    assert summary.endswith("on ibrutinib + 5 more") or summary.endswith("mg/dL)")


def test_progression_and_possible_progression_are_warnings():
    pd_assessment = assessment(
        Category.PD,
        nadir=result(900),
        latest=result(1250),
        percent_change_from_nadir=Fraction(1250 - 900, 900) * 100,
        progression_confirmed=date(2025, 1, 1),
    )
    (pd,) = cards_for(pd_assessment)
    assert pd["indicator"] == "warning"
    assert "+38.8% from nadir (900 -> 1250 mg/dL), confirmed 2025-01-01" in pd["summary"]
    assert pd["extension"]["wm-igm-assessment"]["progressionConfirmed"] == "2025-01-01"
    assert "does not by itself mean that therapy must change" in pd["detail"]
    possible = assessment(
        Category.MR, progression=Progression.POSSIBLE, caveats=(Caveat.UNCONFIRMED_PROGRESSION,)
    )
    (card,) = cards_for(possible)
    assert card["indicator"] == "warning"
    # the repeat IgM, and (contract v3) the disease status to record, chosen independently
    repeat, record = card["suggestions"]
    assert card["selectionBehavior"] == "any"
    assert record["label"] == "Record disease status: improved (IgM-based)"
    resource = ServiceRequest.model_validate(repeat["actions"][0]["resource"])
    assert resource.code.coding[0].code == "2472-9"
    assert resource.subject.reference == "Patient/p1"
    assert (resource.status, resource.intent) == ("draft", "proposal")


def test_hyperviscosity_card_suggests_serum_viscosity():
    a = assessment(caveats=(Caveat.HYPERVISCOSITY_RISK,), hyperviscosity=finding())
    _response_card, card = cards_for(a)
    assert card["indicator"] == "warning"
    assert card["summary"] == "Hyperviscosity risk: IgM 5600 mg/dL on 2025-01-01 (>= 4000 mg/dL)"
    resource = ServiceRequest.model_validate(card["suggestions"][0]["actions"][0]["resource"])
    assert resource.code.coding[0].code == "3128-6"
    assert resource.code.coding[0].display == "Viscosity of Serum"
    assert card["source"]["url"] == "https://pubmed.ncbi.nlm.nih.gov/28485115/"
    assert "marrow" not in " ".join(r["display"] for r in card["overrideReasons"])


def test_no_viscosity_order_when_one_was_measured_in_the_last_6_months():
    a = assessment(caveats=(Caveat.HYPERVISCOSITY_RISK,), hyperviscosity=finding(order_due=False))
    _response_card, card = cards_for(a)
    assert "suggestions" not in card and "selectionBehavior" not in card


def test_without_a_warning_the_caveat_is_a_sentence_on_the_response_card():
    # §7: a separate card only when the risk is near.
    a = assessment(caveats=(Caveat.HYPERVISCOSITY_RISK,), hyperviscosity=finding(warning=False))
    (card,) = cards_for(a)
    assert "Hyperviscosity reference: IgM 5600 mg/dL on 2025-01-01." in card["detail"]


def test_an_old_high_igm_is_named_as_not_re_measured():
    a = assessment(old_high_igm=result(4500, date(2022, 3, 1)))
    (card,) = cards_for(a)
    assert (
        "Last IgM >= 4000 mg/dL: 4500 mg/dL on 2022-03-01, not re-measured since." in card["detail"]
    )


def test_m_spike_cards_show_no_upper_limit_of_normal():
    a = assessment(
        series=Series.M_SPIKE,
        baseline=result(3000, date(2024, 1, 1), series=Series.M_SPIKE),
        latest=result(1300, series=Series.M_SPIKE),
        uln_mg_dl=None,
    )
    (card,) = cards_for(a)
    assert "Upper limit of normal" not in card["detail"]
    assert "M-spike" in card["summary"] and "m-spike" not in card["summary"]


def test_an_ended_line_shows_its_dates_never_current():
    a = assessment(line=line(WM_DRUGS[0], end=date(2024, 6, 30)), line_ended=date(2024, 6, 30))
    (card,) = cards_for(a)
    assert "Last line: **ibrutinib**, 2024-01-01 to 2024-06-30, ended." in card["detail"]
    assert "Current line" not in card["detail"]
    assert card["extension"]["wm-igm-assessment"]["lineEnded"] == "2024-06-30"


def test_untreated_patients_read_igm_trend_not_not_evaluable():
    a = assessment(
        Category.NE, line=None, percent_change=None, baseline=None, reason="no WM treatment found"
    )
    (card,) = cards_for(a)
    assert card["summary"].startswith("IgM trend, no WM treatment found")
    assert "Not evaluable" not in card["summary"] + card["detail"]


@pytest.mark.parametrize("days_old, named", [(92, False), (93, True)])
def test_the_summary_names_the_latest_date_when_it_is_old(days_old, named):
    latest = result(2233, CONTEXT.today - timedelta(days=days_old))
    (card, *_) = cards_for(assessment(latest=latest, nadir=latest))
    assert (f"latest {latest.day.isoformat()}" in card["summary"]) is named


def test_a_warning_summary_says_why():
    possible = assessment(
        Category.MR, progression=Progression.POSSIBLE, caveats=(Caveat.UNCONFIRMED_PROGRESSION,)
    )
    (card,) = cards_for(possible)
    assert card["summary"].endswith("; IgM rising, repeat to confirm")
    after_cr = assessment(
        Category.CR, caveats=(Caveat.UNCONFIRMED_PROGRESSION,), rise_after_cr=True
    )
    (card,) = cards_for(after_cr)
    assert card["summary"].endswith("; IgM rising after CR, repeat immunofixation")


def test_the_same_order_is_never_suggested_twice_in_one_response():
    possible = assessment(
        Category.MR, progression=Progression.POSSIBLE, caveats=(Caveat.UNCONFIRMED_PROGRESSION,)
    )
    due = MonitoringDue(
        MonitoringState.ON_THERAPY, 92, MonitoringReason.OVERDUE, date(2025, 1, 1), 120
    )
    response, monitoring = cards_for(possible, due)
    orders = [
        suggestion
        for suggestion in response["suggestions"]
        if suggestion["actions"][0]["resource"]["resourceType"] == "ServiceRequest"
    ]
    assert len(orders) == 1 and "suggestions" not in monitoring
    (_, monitoring) = cards_for(assessment(), due)
    (suggestion,) = monitoring["suggestions"]
    assert "routine monitoring" in suggestion["actions"][0]["description"]
    assert "progression" not in suggestion["actions"][0]["description"]


def test_internal_codes_never_reach_the_summary():
    a = assessment(Category.NE, percent_change=None, reason="no usable IgM result in the 90 days")
    (card,) = cards_for(a)
    assert "total-igm" not in card["summary"] and "m-spike" not in card["summary"]


def test_monitoring_card_says_the_state_and_the_newest_usable_result():
    a = assessment()
    due = MonitoringDue(
        MonitoringState.ON_THERAPY,
        92,
        MonitoringReason.OVERDUE,
        last_result_day=date(2025, 1, 1),
        days_since=120,
        line=a.line,
    )
    card = cards_for(a, due)[-1]
    assert card["indicator"] == "info"
    assert card["summary"] == (
        "WM monitoring due: serum IgM expected every 92 days; last result 120 days ago"
    )
    assert card["detail"].startswith("On therapy since ")
    assert "IgM expected every 3 months" in card["detail"] and "2025-01-01" in card["detail"]
    assert card["extension"]["wm-igm-monitoring"] == {
        "state": "on-therapy",
        "intervalDays": 92,
        "reason": "overdue",
        "lastResult": "2025-01-01",
        "daysSince": 120,
    }


def test_monitoring_card_off_therapy_never_says_on_therapy():
    a = assessment()
    due = MonitoringDue(
        MonitoringState.OFF_THERAPY,
        365,
        MonitoringReason.OVERDUE,
        last_result_day=date(2025, 1, 1),
        days_since=400,
        line=a.line,
        line_ended=date(2020, 6, 1),
    )
    card = cards_for(a, due)[-1]
    assert card["detail"].startswith("Off therapy since 2020-06-01 (")
    assert "every 12 months" in card["detail"] and "On therapy" not in card["detail"]


def test_monitoring_card_with_only_unusable_results_never_says_none():
    a = assessment()
    due = MonitoringDue(
        MonitoringState.ON_THERAPY,
        92,
        MonitoringReason.OVERDUE,
        last_result_day=None,
        days_since=100,
        line=a.line,
        unusable_count=2,
        unusable_reason="unit 'IU/mL' cannot be converted to mg/dL",
    )
    card = cards_for(a, due)[-1]
    assert card["summary"].endswith("2 since line start could not be used")
    assert "none" not in card["summary"]
    assert "2 results could not be used (unit" in card["detail"]
    assert card["extension"]["wm-igm-monitoring"]["unusableResults"] == 2


def test_every_caveat_has_a_link_a_sentence_and_a_page(client):
    a = assessment(caveats=tuple(Caveat), hyperviscosity=finding(4500, warning=False))
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


def test_detail_has_values_duration_uln_and_what_the_service_cannot_see():
    a = assessment(response_since=date(2024, 6, 1), durable=False)
    (card,) = cards_for(a)
    detail = card["detail"]
    # contract v2: no tables (narrow EHR panels, basic markdown)
    assert "|" not in detail
    assert "- Baseline 2024-01-01: **5100 mg/dL**" in detail
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
    ife = ImmunofixationResult("Observation/ife", date(2025, 1, 2), IfeReading.NEGATIVE)
    a = assessment(Category.CR, latest_immunofixation=ife, caveats=(Caveat.CR_NEEDS_MARROW,))
    (card,) = cards_for(a)
    assert "Serum immunofixation after therapy start: **negative (2025-01-02)**" in card["detail"]


def test_cards_in_grams_per_litre_keep_the_extension_in_mg_dl(make_app):
    # UK and European haematologists read IgM in g/L (CDS_DISPLAY_UNIT=g/L).
    client = make_app(display_unit="g/L").test_client()
    request = hook_request(
        [igm("o1", -5, 5100), igm("o2", 360, 2233)], [statement("m1", "zanubrutinib", 0)]
    )
    card = client.post("/cds-services/wm-igm-response", json=request).get_json()["cards"][0]
    assert "IgM -56.2% (51 -> 22.33 g/L)" in card["summary"]
    assert "- Baseline 2024-01-10: **51 g/L**" in card["detail"]
    assert "Upper limit of normal: 2.3 g/L" in card["detail"]
    assert "mg/dL" not in card["summary"] + card["detail"].split("**Keep in mind**")[0]
    extension = card["extension"]["wm-igm-assessment"]
    assert extension["baseline"]["valueMgDl"] == 5100


def test_a_display_unit_other_than_the_two_is_refused():
    assert settings_from_env({"CDS_DISPLAY_UNIT": "G/L"}).display_unit == "g/L"
    with pytest.raises(ConfigError, match="CDS_DISPLAY_UNIT"):
        settings_from_env({"CDS_DISPLAY_UNIT": "mmol/L"})


def test_a_pd_whose_igm_fell_since_gives_the_confirmed_rise_and_says_so(call):
    request = hook_request(
        [
            igm("o1", -5, 5000),
            igm("o2", 90, 1000),
            igm("o3", 180, 1600),
            igm("o4", 270, 1700),
            igm("o5", 360, 1000),
        ],
        [statement("m1", "zanubrutinib", 0)],
    )
    card = call(request, today=on(363))["cards"][0]
    # (1700 - 1000) / 1000: the rise that confirmed PD, never "0.0%" from the fall since
    assert card["summary"].startswith(
        "Progressive disease (PD), IWWM-6: IgM +70.0% from nadir (1000 -> 1700 mg/dL), "
        "confirmed 2024-10-11, since fallen"
    )
    assert card["extension"]["wm-igm-assessment"]["percentChangeFromNadir"] == 70.0
    assert "has since fallen to 1000 mg/dL (2025-01-09)" in card["detail"]
