"""clinical-rules.md §3.3, §3.5, §3.7: what the service recognises by name and code."""

from __future__ import annotations

import pytest

from cds_service.clinical.valuesets import (
    condition_kind,
    drugs_of_acronyms,
    looks_anticancer,
    looks_investigational,
    says_high_dose,
    says_mobilisation,
    transplant_kind,
)

ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"


@pytest.mark.parametrize(
    "text, ingredients",
    [
        ("DRC regimen cycle 3 of 6", {"dexamethasone", "rituximab", "cyclophosphamide"}),
        (
            "R-CHOP-21",
            {"rituximab", "cyclophosphamide", "doxorubicin", "vincristine", "prednisone"},
        ),
        ("benda-r", {"bendamustine", "rituximab"}),
        ("BEAM conditioning", {"carmustine", "etoposide", "cytarabine", "melphalan"}),
        ("BRAND name", set()),  # whole words only: not preceded or followed by a letter
        ("CBR 5", set()),
        ("VR2", set()),
    ],
)
def test_regimen_acronyms_stand_for_their_drugs(text, ingredients):
    assert {d.ingredient for d in drugs_of_acronyms(text)} == ingredients


@pytest.mark.parametrize(
    "text, atc, investigational",
    [
        ("Investigational product BGB-16673 200 mg", [], True),
        ("LOXO-305 100 mg daily", [], True),
        ("ABT199", [], True),
        ("Blinded study medication", [], True),
        ("IMP as per protocol", [], True),
        ("imp as per protocol", [], False),  # IMP only in upper case
        ("Aciclovir 400 mg per protocol (study drug prophylaxis)", [], False),  # supportive care
        ("Study drug", ["J05AB01"], False),  # ATC outside L01
        ("Study drug", ["L01XX99"], True),
        ("Ondansetron 8 mg as per trial protocol", [], False),
        ("per protocol", [], False),  # protocol and trial alone are not enough
    ],
)
def test_unrecognised_therapy(text, atc, investigational):
    assert looks_investigational([text], atc) is investigational


@pytest.mark.parametrize(
    "text, atc, anticancer",
    [
        ("lenalidomide 10 mg", [], True),
        ("cisplatin", [], True),
        ("chemo day 1", [], True),
        ("unknown", ["L01XC99"], True),
        ("aspirin 81 mg", [], False),
        ("Cyclotron", [], False),
    ],
)
def test_other_anticancer_records_are_reported(text, atc, anticancer):
    assert looks_anticancer([text], atc) is anticancer


@pytest.mark.parametrize(
    "text, high",
    [
        ("melphalan 140 mg/m2", True),
        ("melphalan 139 mg/m²", False),
        ("High-dose melphalan", True),
        ("HDM 200", True),
        ("melphalan 8 mg daily", False),
    ],
)
def test_high_dose_melphalan(text, high):
    assert says_high_dose([text]) is high


def test_mobilisation_words():
    assert says_mobilisation(["cyclophosphamide 2 g/m2 (mobilisation)"])
    assert says_mobilisation(["G-CSF priming"])
    assert not says_mobilisation(["cyclophosphamide 100 mg/m2"])


@pytest.mark.parametrize(
    "text, kind",
    [
        ("Autologous stem cell transplant", "transplant"),
        ("ASCT day 0", "transplant"),
        ("Autograft", "transplant"),
        ("Autologous peripheral blood stem cell collection (apheresis)", "collection"),
        ("PBSC harvest", "collection"),
        ("Autologous transplant: mobilisation", None),
        ("Allogeneic stem cell transplant", None),
    ],
)
def test_transplant_procedures(text, kind):
    assert transplant_kind(text) == kind


@pytest.mark.parametrize(
    "codings, texts, kind",
    [
        ([(ICD10, "C88.0")], [], "wm"),
        ([(ICD10, "C88.00")], [], "wm"),  # national extensions begin with C88.0
        ([("http://snomed.info/sct", "35601003")], [], "wm"),
        ([], ["Waldenström's macroglobulinaemia"], "wm"),
        ([], ["Lymphoplasmacytic lymphoma"], None),
        ([(ICD10, "C91.10")], ["CLL"], "other"),
        ([(ICD10, "M05.79")], [], "other"),
        ([(ICD10, "C88.4")], [], "other"),
        ([(ICD10, "E11.9")], [], None),
    ],
)
def test_condition_kinds(codings, texts, kind):
    assert condition_kind(codings, texts) == kind


def test_a_text_is_scanned_for_drugs_up_to_its_first_2000_characters():
    # contract v3: a long EHR text cannot make the scan costly; what it names early counts
    from cds_service.clinical.valuesets import MAX_SCANNED_CHARACTERS, drugs_in_text

    assert MAX_SCANNED_CHARACTERS == 2000
    early = "rituximab " + "x" * 5000
    late = "x " * 1000 + " ibrutinib"
    assert [d.ingredient for d in drugs_in_text(early)] == ["rituximab"]
    assert drugs_in_text(late) == []
