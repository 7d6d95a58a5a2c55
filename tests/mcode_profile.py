"""The mCODE CancerDiseaseStatus profile's constraints (mCODE STU3/STU4,
StructureDefinition `mcode-cancer-disease-status`), as a check on an Observation we write.

From the profile: `subject` 1..1 and `code` fixed to LOINC 97509-4; `effective[x]` only
dateTime; `value[x]` only CodeableConcept, bound (required) to ConditionStatusTrendVS;
`focus` only a cancer Condition; `specimen`, `device`, `referenceRange`, `hasMember` and
`component` not used; must support: `status`, `code`, `subject`, `effective[x]`, `value[x]`,
`focus`, `dataAbsentReason` and the evidence-type extension.
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.observation import Observation

PROFILE = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-cancer-disease-status"
EVIDENCE_TYPE = (
    "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-cancer-disease-status-evidence-type"
)
SNOMED = "http://snomed.info/sct"
# ConditionStatusTrendVS: improved, stable, worsened, undetermined, and (since STU2) full and
# partial remission, which an IgM-based assessment never claims
REMISSION_CODES = {"550991000124107", "551001000124108"}
CONDITION_STATUS_TREND = {"268910001", "359746009", "271299001", "709137006", *REMISSION_CODES}
# CancerDiseaseStatusEvidenceTypeVS (SNOMED CT), the codes listed by its published versions
EVIDENCE_TYPES = {
    "363679005",  # imaging
    "252416005",  # histopathology test
    "108257001",  # anatomic pathology procedure
    "711015009",  # assessment of symptom control
    "5880005",  # physical (clinical) examination
    "250724005",  # tumour marker measurement
    "386344002",  # laboratory data interpretation
}
NOT_USED = ("specimen", "device", "referenceRange", "hasMember", "component")


def check_cancer_disease_status(observation: dict[str, Any], patient_id: str) -> None:
    Observation.model_validate(observation)  # a valid FHIR R4 Observation first
    assert PROFILE in observation["meta"]["profile"]
    assert observation["status"] in {"final", "amended", "corrected", "preliminary"}
    (loinc,) = [c for c in observation["code"]["coding"] if c["system"] == "http://loinc.org"]
    assert loinc["code"] == "97509-4"
    assert observation["subject"] == {"reference": f"Patient/{patient_id}"}
    assert "effectiveDateTime" in observation and "effectivePeriod" not in observation
    value = observation["valueCodeableConcept"]["coding"]
    assert {c["system"] for c in value} == {SNOMED}
    assert {c["code"] for c in value} <= CONDITION_STATUS_TREND
    assert not {c["code"] for c in value} & REMISSION_CODES
    assert "dataAbsentReason" not in observation  # a value is always given (obs-6)
    for focus in observation.get("focus", []):
        assert focus["reference"].startswith("Condition/")
    for element in NOT_USED:
        assert element not in observation, element
    evidence = [e for e in observation.get("extension", []) if e["url"] == EVIDENCE_TYPE]
    assert evidence, "the evidence-type extension (must support) is given"
    for extension in evidence:
        codes = extension["valueCodeableConcept"]["coding"]
        assert {c["code"] for c in codes} <= EVIDENCE_TYPES
