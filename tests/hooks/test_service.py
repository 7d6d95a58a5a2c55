"""Whole-pipeline cases through the HTTP endpoint: the ways real EHR data goes wrong."""

from __future__ import annotations

import pytest

from ..builders import (
    bundle,
    condition,
    hook_request,
    igm,
    on,
    plasmapheresis,
    request_for,
    statement,
)

SERVICE = "/cds-services/wm-igm-response"


def assessment(response):
    (card,) = [c for c in response["cards"] if "wm-igm-assessment" in c.get("extension", {})]
    return card["extension"]["wm-igm-assessment"]


def test_medication_request_only_history(call):
    # Monthly ibrutinib orders, completed, carrying only authoredOn; the latest active.
    orders = [
        request_for(f"r{i}", "IMBRUVICA (ibrutinib) 420 mg", 30 * i, status="completed")
        for i in range(6)
    ]
    orders.append(request_for("r6", "IMBRUVICA (ibrutinib) 420 mg", 180))
    request = hook_request([igm("o1", -5, 4000), igm("o2", 200, 1800)], requests=orders)
    result = assessment(call(request, today=on(203)))
    assert result["category"] == "PR"
    assert result["therapyStart"] == on(0).isoformat()
    assert "btki-interruption" not in result["caveats"]


def test_duplicate_resources_across_prefetch_keys_count_once(call):
    request = hook_request(
        [igm("o1", -5, 5100), igm("o2", 360, 2233)], [statement("m1", "zanubrutinib", 0)]
    )
    request["prefetch"]["procedures"] = bundle(
        igm("o2", 360, 2233), statement("m1", "zanubrutinib", 0)
    )
    result = assessment(call(request, today=on(363)))
    assert result["category"] == "PR"
    assert "excluded" not in result


def test_two_lines_of_therapy_assess_the_current_one(call):
    statements = [
        statement("m1", "bendamustine", -500, -360, status="completed"),
        statement("m2", "rituximab", -500, -360, status="completed"),
        statement("m3", "zanubrutinib", 0),
    ]
    observations = [
        igm("o0", -505, 6000),
        igm("o1", -300, 1500),
        igm("o2", -10, 3200),
        igm("o3", 180, 1500),
    ]
    result = assessment(call(hook_request(observations, statements), today=on(183)))
    assert result["regimen"] == ["zanubrutinib"]
    assert result["baseline"] == {"valueMgDl": 3200, "date": on(-10).isoformat()}
    assert result["category"] == "PR"
    assert result["caveats"] == ["btki-discordance"]


def test_hold_by_a_gap_between_two_statements(call):
    statements = [
        statement("m1", "ibrutinib", 0, 200, status="completed"),
        statement("m2", "ibrutinib", 240),
    ]
    observations = [
        igm("o1", -5, 4000),
        igm("o2", 150, 1000),
        igm("o3", 220, 1800),
        igm("o4", 250, 1900),
    ]
    result = assessment(call(hook_request(observations, statements), today=on(253)))
    assert result["category"] == "PR"
    assert result["caveats"] == ["btki-discordance", "btki-interruption"]


def test_plasmapheresis_before_the_latest_value_withholds_the_category(call):
    request = hook_request(
        [igm("o1", -5, 5000), igm("o2", 100, 1500)],
        [statement("m1", "rituximab", 0, 30)],
        procedures=[plasmapheresis("pp1", 80)],
    )
    response = call(request, today=on(103))
    result = assessment(response)
    assert result["category"] == "NE"
    assert "plasmapheresis" in result["caveats"]
    assert "percentChange" not in result
    assert "plasmapheresis" in result["reason"]


def test_other_patients_resources_in_prefetch_never_change_the_answer(call):
    own = [igm("o1", -5, 5100), igm("o2", 360, 2233)]
    foreign = [igm("x1", 362, 9000, patient="p2"), igm("x2", -4, 100, patient="p2")]
    request = hook_request(own + foreign, [statement("m1", "zanubrutinib", 0)])
    result = assessment(call(request, today=on(363)))
    assert result["category"] == "PR"
    assert result["latest"]["valueMgDl"] == 2233
    assert {e["reference"] for e in result["excluded"]} == {"Observation/x1", "Observation/x2"}
    assert "hyperviscosity-risk" not in result["caveats"]


def test_excluded_resources_are_on_the_card(call):
    bad_unit = igm("o3", 200, 20, "umol/L")
    preliminary = igm("o4", 300, 100, status="preliminary")
    request = hook_request(
        [igm("o1", -5, 5100), igm("o2", 360, 2233), bad_unit, preliminary],
        [statement("m1", "zanubrutinib", 0)],
    )
    response = call(request, today=on(363))
    result = assessment(response)
    assert result["excluded"] == [
        {"reference": "Observation/o3", "reason": "unit 'umol/L' cannot be converted to mg/dL"},
        {"reference": "Observation/o4", "reason": "status 'preliminary' is not a final result"},
    ]
    detail = response["cards"][0]["detail"]
    assert "Observation/o3" in detail and "umol/L" in detail


def test_a_wm_drug_without_igm_gets_a_card(call):
    response = call(hook_request([], [statement("m1", "ibrutinib", 0)]), today=on(30))
    result = assessment(response)
    assert result["category"] == "NE"
    assert result["caveats"] == ["btki-discordance", "no-baseline"]


def test_igm_without_treatment_reports_the_trend(call):
    response = call(hook_request([igm("o1", 0, 3000), igm("o2", 100, 2000)]), today=on(103))
    result = assessment(response)
    assert result["category"] == "NE"
    assert result["reason"] == "no WM treatment found"
    assert "regimen" not in result
    # contract v2: "IgM trend, no WM treatment found", never "Not evaluable" for the untreated.
    # v3 §4.10: the change over the last 12 months (from 3000, 100 days before) is given.
    assert response["cards"][0]["summary"] == (
        "IgM trend, no WM treatment found: latest IgM 2000 mg/dL (2024-04-24), -33.3% over "
        "12 months"
    )
    assert "nadir" not in result and "Nadir" not in response["cards"][0]["detail"]


# clinical-rules.md §3.7: evidence of WM ------------------------------------------------------


def test_no_evidence_of_wm_no_card(call):
    # Two normal IgM results: an IgM test is ordered for many diseases.
    request = hook_request([igm("o1", 0, 150), igm("o2", 200, 160)])
    assert call(request, today=on(203)) == {"cards": []}


@pytest.mark.parametrize(
    "conditions, cards",
    [
        ([condition("c1")], 2),  # WM on the problem list: trend card and a reminder
        ([condition("c1", "35601003", "WM", system="http://snomed.info/sct")], 2),
        ([condition("c1", "C88.00", "Waldenstrom macroglobulinemia, not in remission")], 2),
        ([condition("c1", clinical="resolved")], 0),
        ([condition("c1", verification="refuted")], 0),
        ([condition("c1", "E11.9", "Type 2 diabetes")], 0),
    ],
)
def test_a_wm_condition_is_evidence(call, conditions, cards):
    request = hook_request([igm("o1", 0, 150), igm("o2", 200, 160)], conditions=conditions)
    assert len(call(request, today=on(400))["cards"]) == cards


def test_a_wm_drug_is_evidence_unless_only_another_disease_is_listed(call):
    labs = [igm("o1", -5, 150), igm("o2", 200, 160)]
    ibrutinib = [statement("m1", "ibrutinib", 0)]
    assert call(hook_request(labs, ibrutinib), today=on(203))["cards"]
    cll = [condition("c1", "C91.10", "Chronic lymphocytic leukaemia")]
    assert call(hook_request(labs, ibrutinib, conditions=cll), today=on(203)) == {"cards": []}


def test_unreadable_conditions_still_answer_for_a_patient_with_results(call):
    request = hook_request([igm("o1", 0, 150), igm("o2", 200, 160)])
    del request["prefetch"]["conditions"]  # no fhirServer to fetch it from
    cards = call(request, today=on(203))["cards"]
    card = cards[0]
    assert card["extension"]["wm-igm-assessment"]["unavailable"] == ["conditions"]
    assert "Conditions could not be read: the WM diagnosis was not checked." in card["detail"]
    no_results = hook_request([])
    del no_results["prefetch"]["conditions"]
    assert call(no_results, today=on(203)) == {"cards": []}


def test_a_wm_diagnosis_without_results_gets_the_monitoring_card_alone(call):
    (card,) = call(hook_request([], conditions=[condition("c1")]), today=on(30))["cards"]
    assert card["summary"] == (
        "WM monitoring due: serum IgM expected every 183 days; none recorded"
    )
    assert card["detail"].startswith("No WM treatment recorded; IgM expected every 6 months")
