"""cards/disease_status.py: the assessment as an mCODE CancerDiseaseStatus Observation
(contract v3), and the response card's suggestion to record it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from cards.build import CardContext, build_cards
from cards.disease_status import disease_status_observation, record_status_suggestion
from cds_service.clinical.criteria import IWWM6
from cds_service.clinical.models import Category, LabResult, Series

from ..mcode_profile import check_cancer_disease_status
from .test_build import assessment

# mCODE ConditionStatusTrendVS: the only codes the service writes; never a remission code
IMPROVED, STABLE, WORSENED, UNDETERMINED = "268910001", "359746009", "271299001", "709137006"


def _lab(reference, value, day):
    return LabResult(reference, Series.TOTAL_IGM, day, Decimal(value))


@pytest.mark.parametrize(
    "category, code",
    [
        (Category.CR, IMPROVED),
        (Category.VGPR, IMPROVED),
        (Category.PR, IMPROVED),
        (Category.MR, IMPROVED),
        (Category.SD, STABLE),
        (Category.PD, WORSENED),
        (Category.NE, UNDETERMINED),
    ],
)
def test_each_category_maps_to_its_trend_and_never_to_remission(category, code):
    observation = disease_status_observation(assessment(category), "p1")
    assert observation["valueCodeableConcept"]["coding"][0]["code"] == code
    check_cancer_disease_status(observation, "p1")


def test_the_observation_says_what_it_is_and_where_it_comes_from():
    baseline = _lab("Observation/b", 5100, date(2024, 1, 1))
    latest = _lab("Observation/l", 2233, date(2025, 1, 9))
    observation = disease_status_observation(
        assessment(baseline=baseline, nadir=latest, latest=latest, wm_condition="Condition/wm"),
        "p1",
    )
    assert observation["meta"]["profile"] == [
        "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-cancer-disease-status"
    ]
    assert observation["status"] == "final"
    assert observation["code"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "97509-4",
        "display": "Cancer disease progression",
    }
    assert observation["subject"] == {"reference": "Patient/p1"}
    assert observation["effectiveDateTime"] == "2025-01-09"
    assert observation["focus"] == [{"reference": "Condition/wm"}]
    check_cancer_disease_status(observation, "p1")
    # baseline, nadir and latest, each once
    assert observation["derivedFrom"] == [
        {"reference": "Observation/b"},
        {"reference": "Observation/l"},
    ]
    (evidence,) = observation["extension"]
    assert evidence["valueCodeableConcept"]["coding"][0]["code"] == "386344002"
    note = observation["note"][0]["text"]
    assert "IWWM-6" in note and "serum IgM only" in note


def test_no_line_of_therapy_no_status_to_record():
    untreated = assessment(Category.NE, line=None)
    assert disease_status_observation(untreated, "p1") is None
    assert record_status_suggestion(untreated, "p1") is None


def test_the_card_offers_it_as_a_choice_and_not_when_results_are_missing():
    context = CardContext(patient_id="p1", base_url="https://x", today=date(2026, 1, 1))
    (card,) = build_cards(assessment(), None, context, IWWM6)
    (suggestion,) = card["suggestions"]
    assert suggestion["label"] == "Record disease status: improved (IgM-based)"
    assert suggestion["isRecommended"] is False
    assert suggestion["actions"][0]["type"] == "create"
    incomplete = CardContext(
        patient_id="p1",
        base_url="https://x",
        today=date(2026, 1, 1),
        unavailable=("observations",),
        incomplete=("observations",),
    )
    (card,) = build_cards(assessment(), None, incomplete, IWWM6)
    assert "suggestions" not in card
