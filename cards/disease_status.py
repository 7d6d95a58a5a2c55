"""The assessment recorded as mCODE disease status (contract v3, "Population worklist",
"mCODE"): one CancerDiseaseStatus Observation, offered on the response card as a `create`
the clinician accepts (never a system action), and written by `cds-cohort --mcode`.

The mapping is deliberately coarse: the IgM category says whether the disease is better,
the same or worse on the current line, never that it is in remission (that needs marrow and
imaging); a patient with no line of therapy has no response to record.
"""

from __future__ import annotations

from typing import Any

from cds_service.clinical.models import Assessment, Category

from .card_ids import new_card_uuid

MCODE_PROFILE = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-cancer-disease-status"
EVIDENCE_TYPE = (
    "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-cancer-disease-status-evidence-type"
)
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
# LOINC's own display for 97509-4 (the code mCODE fixes; the profile is named "status")
CANCER_DISEASE_STATUS = ("97509-4", "Cancer disease progression")
LABORATORY_DATA_INTERPRETATION = ("386344002", "Laboratory data interpretation")
# mCODE ConditionStatusTrendVS (SNOMED CT): PD worse, SD same, any response better, NE unknown
IMPROVED = ("268910001", "Patient's condition improved")
STABLE = ("359746009", "Patient's condition stable")
WORSENED = ("271299001", "Patient's condition worsened")
UNDETERMINED = ("709137006", "Patient condition undetermined")
TREND = {
    Category.CR: IMPROVED,
    Category.VGPR: IMPROVED,
    Category.PR: IMPROVED,
    Category.MR: IMPROVED,
    Category.SD: STABLE,
    Category.PD: WORSENED,
    Category.NE: UNDETERMINED,
}
# The word the suggestion's label uses.
TREND_WORDS = {
    IMPROVED: "improved",
    STABLE: "stable",
    WORSENED: "worsened",
    UNDETERMINED: "undetermined",
}


def _coding(system: str, code_display: tuple[str, str]) -> dict[str, str]:
    code, display = code_display
    return {"system": system, "code": code, "display": display}


def disease_status_observation(assessment: Assessment, patient_id: str) -> dict[str, Any] | None:
    """The CancerDiseaseStatus Observation for this assessment, or None when there is no
    response to record (no line of therapy, no category, no dated result)."""
    if assessment.line is None or assessment.category is None or assessment.latest is None:
        return None
    trend = TREND[assessment.category]
    derived = [
        {"reference": point.reference}
        for point in dict.fromkeys(
            p for p in (assessment.baseline, assessment.nadir, assessment.latest) if p is not None
        )
        if point.reference.startswith("Observation/")
    ]
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "meta": {"profile": [MCODE_PROFILE]},
        "extension": [
            {
                "url": EVIDENCE_TYPE,
                "valueCodeableConcept": {
                    "coding": [_coding(SNOMED, LABORATORY_DATA_INTERPRETATION)]
                },
            }
        ],
        "status": "final",
        "code": {"coding": [_coding(LOINC, CANCER_DISEASE_STATUS)]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": assessment.latest.day.isoformat(),
        "valueCodeableConcept": {"coding": [_coding(SNOMED, trend)]},
        "note": [
            {
                "text": (
                    f"Waldenström macroglobulinemia response by serum IgM only "
                    f"({assessment.criteria}, category {assessment.category.value}); not a "
                    "remission assessment: bone marrow and imaging were not considered."
                )
            }
        ],
    }
    if assessment.wm_condition is not None:
        observation["focus"] = [{"reference": assessment.wm_condition}]
    if derived:
        observation["derivedFrom"] = derived
    return observation


def record_status_suggestion(assessment: Assessment, patient_id: str) -> dict[str, Any] | None:
    """The response card's suggestion to record the disease status: a `create` the clinician
    chooses to accept (accepting it is their judgement; it is never recommended by itself)."""
    observation = disease_status_observation(assessment, patient_id)
    if observation is None:
        return None
    word = TREND_WORDS[TREND[assessment.category]]  # type: ignore[index]
    return {
        "label": f"Record disease status: {word} (IgM-based)",
        "uuid": new_card_uuid(),
        "isRecommended": False,
        "actions": [
            {
                "type": "create",
                "description": "Record the cancer disease status (mCODE) from this IgM assessment",
                "resource": observation,
            }
        ],
    }
