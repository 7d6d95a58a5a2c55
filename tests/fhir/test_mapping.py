"""FHIR R4 -> internal models (clinical-rules.md §3): units, statuses, dates, bounds,
medications in every shape EHRs send, plasmapheresis. Left-out resources are reported."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cds_service.clinical.models import DrugClass, Series
from cds_service.fhir.mapping import to_patient_record
from cds_service.fhir.parsing import parse_resources

from ..builders import (
    ATC,
    RXNORM,
    UCUM,
    administration,
    ife,
    igm,
    iso,
    lab,
    m_spike,
    on,
    plasmapheresis,
    request_for,
    statement,
)


def mapped(*resources, key="observations"):
    return to_patient_record(parse_resources({key: list(resources)}, "p1", None))


def reasons(record):
    return {e.reference: e.reason for e in record.excluded}


# Units ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, unit, mg_dl",
    [
        (5100, "mg/dL", "5100"),
        (51, "g/L", "5100"),
        (51000, "mg/L", "5100"),
        ("5.1", "g/dL", "5100"),
        ("22.33", "g/L", "2233"),
    ],
)
def test_units_convert_to_mg_dl(value, unit, mg_dl):
    (result,) = mapped(igm("o1", 0, Decimal(value), unit)).lab_results
    assert result.value_mg_dl == Decimal(mg_dl)


def test_unit_string_without_ucum_code_any_case():
    (result,) = mapped(igm("o1", 0, 51, "G/L", ucum=False)).lab_results
    assert result.value_mg_dl == 5100


@pytest.mark.parametrize(
    "resource, reason",
    [
        (igm("o1", 0, 20, "umol/L"), "unit 'umol/L' cannot be converted to mg/dL"),
        (igm("o1", 0, 20, "[IU]/mL"), "unit '[IU]/mL' cannot be converted to mg/dL"),
        (lab("o1", 0, 2000, None), "the result has no unit"),
        (
            lab("o1", 0, 2000, "mg per decilitre", ucum=False),
            "unit 'mg per decilitre' cannot be converted to mg/dL",
        ),
    ],
)
def test_unknown_units_are_never_guessed(resource, reason):
    record = mapped(resource)
    assert record.lab_results == []
    assert reasons(record) == {"Observation/o1": reason}


def test_code_and_unit_string_that_disagree_are_left_out():
    resource = igm("o1", 0, 51, "g/L")
    resource["valueQuantity"]["unit"] = "mg/dL"
    assert "disagree" in reasons(mapped(resource))["Observation/o1"]


# Statuses, dates, values ----------------------------------------------------------------


@pytest.mark.parametrize("status", ["final", "amended", "corrected"])
def test_counted_statuses(status):
    assert len(mapped(igm("o1", 0, 1000, status=status)).lab_results) == 1


@pytest.mark.parametrize(
    "status", ["preliminary", "registered", "cancelled", "entered-in-error", "unknown"]
)
def test_other_statuses_are_left_out_and_reported(status):
    record = mapped(igm("o1", 0, 1000, status=status))
    assert record.lab_results == []
    assert reasons(record) == {"Observation/o1": f"status '{status}' is not a final result"}


def test_date_falls_back_to_period_start_then_issued():
    period = igm("o1", 0, 1000)
    del period["effectiveDateTime"]
    period["effectivePeriod"] = {"start": iso(5), "end": iso(6)}
    issued = igm("o2", 0, 1000)
    del issued["effectiveDateTime"]
    issued["issued"] = f"{iso(7)}T09:30:00+01:00"
    nodate = igm("o3", 0, 1000)
    del nodate["effectiveDateTime"]
    record = mapped(period, issued, nodate)
    assert sorted(r.day for r in record.lab_results) == [on(5), on(7)]
    assert "no date" in reasons(record)["Observation/o3"]


def test_local_date_of_a_timestamp_is_kept():
    resource = igm("o1", 0, 1000)
    resource["effectiveDateTime"] = f"{iso(3)}T23:30:00-05:00"
    (result,) = mapped(resource).lab_results
    assert result.day == on(3)


def test_month_precision_date_is_left_out():
    resource = igm("o1", 0, 1000)
    resource["effectiveDateTime"] = "2024-03"
    assert reasons(mapped(resource)) == {
        "Observation/o1": "date '2024-03' is not precise to the day"
    }


def test_data_absent_and_missing_values_are_reported():
    absent = igm("o1", 0, 1000)
    del absent["valueQuantity"]
    absent["dataAbsentReason"] = {"text": "Specimen haemolysed"}
    empty = igm("o2", 0, 1000)
    del empty["valueQuantity"]
    text = igm("o3", 0, 1000)
    del text["valueQuantity"]
    text["valueString"] = "about 1000"
    record = mapped(absent, empty, text)
    assert reasons(record) == {
        "Observation/o1": "no value (data absent: Specimen haemolysed)",
        "Observation/o2": "no value",
        "Observation/o3": "the result is not a quantity",
    }


@pytest.mark.parametrize(
    "comparator, upper, lower",
    [("<", True, False), ("<=", True, False), (">", False, True), (">=", False, True)],
)
def test_comparators_are_kept_as_bounds(comparator, upper, lower):
    (result,) = mapped(igm("o1", 0, 25, comparator=comparator)).lab_results
    assert (result.upper_bound, result.lower_bound) == (upper, lower)


@pytest.mark.parametrize("comparator", ["<", "<=", ">", ">="])
def test_bounds_stay_in_the_series_with_their_comparator(comparator):
    # v2 §3.1: v1 dropped ">7000" and showed a stale PR.
    record = mapped(igm("o1", 0, 7000, comparator=comparator))
    (result,) = record.lab_results
    assert result.comparator == comparator and record.excluded == []
    assert result.lower_bound is (comparator in (">", ">="))
    assert result.upper_bound is (comparator in ("<", "<="))


def test_reference_range_high_is_the_uln_converted():
    (result,) = mapped(igm("o1", 0, 1000, uln=260)).lab_results
    assert result.uln_mg_dl == Decimal(260)
    resource = igm("o2", 0, 10, "g/L")
    resource["referenceRange"] = [
        {"low": {"value": 0.4, "unit": "g/L"}, "high": {"value": 2.3, "unit": "g/L"}}
    ]
    (result,) = mapped(resource).lab_results
    assert result.uln_mg_dl == 230


def test_a_reference_range_without_a_unit_is_read_in_the_values_unit():
    resource = igm("o1", 0, 10, "g/L")
    resource["referenceRange"] = [{"high": {"value": 2.3}}]
    (result,) = mapped(resource).lab_results
    assert result.uln_mg_dl == 230


@pytest.mark.parametrize(
    "uln, usable", [("99.9", False), (100, True), (1000, True), ("1000.1", False), ("2.3", False)]
)
def test_a_reference_range_implying_another_unit_leaves_the_result_out(uln, usable):
    # §3.1 [design]: "16 mg/dL, ULN 2.3 mg/dL" is 16 g/L mislabelled.
    record = mapped(igm("o1", 0, 16, uln=Decimal(str(uln))))
    assert bool(record.lab_results) is usable
    if not usable:
        assert reasons(record) == {"Observation/o1": "reference range implies a different unit"}
        (unusable,) = record.unusable
        assert (unusable.reference, unusable.day) == ("Observation/o1", on(0))


@pytest.mark.parametrize("code, mg_dl", [("mg/dl", "3400"), ("g/l", "340000"), ("g/dl", "3400000")])
def test_ucum_litre_may_be_written_lower_case(code, mg_dl):
    # UCUM: `l` and `L` are both the litre; "mg/dl" is a valid code, not an unknown unit.
    (result,) = mapped(igm("o1", 0, 3400, code)).lab_results
    assert result.value_mg_dl == Decimal(mg_dl)


def test_a_ucum_unit_other_than_the_litre_stays_case_sensitive():
    record = mapped(igm("o1", 0, 3400, "MG/DL"))
    assert not record.lab_results
    assert "cannot be converted" in reasons(record)["Observation/o1"]


@pytest.mark.parametrize(
    "status, unusable",
    [
        ("preliminary", True),
        ("registered", True),
        ("entered-in-error", False),
        ("cancelled", False),
    ],
)
def test_results_left_out_for_status_are_unusable_unless_never_measured(status, unusable):
    record = mapped(igm("o1", 0, 3400, status=status), m_spike("s1", 5, "1.2", unit="IU/mL"))
    assert not record.lab_results
    series = {u.reference: u.series.value for u in record.unusable}
    assert series.pop("Observation/s1") == "m-spike"  # a unit nobody can convert
    assert ("Observation/o1" in series) is unusable


def test_serum_viscosity_is_read_for_the_hyperviscosity_card():
    viscosity = lab("v1", 0, 3.2, "cP", code="3128-6")
    (result,) = mapped(viscosity).viscosities
    assert (result.day, result.text) == (on(0), "3.2 cP")


def test_m_spike_codes_and_unrelated_labs():
    unrelated = lab("o9", 0, 13, "g/dL", code="718-7")  # haemoglobin: not ours, not reported
    record = mapped(m_spike("o1", 0, "1.2"), lab("o2", 0, 0.8, "g/dL", code="51435-6"), unrelated)
    assert sorted(r.series for r in record.lab_results) == [Series.M_SPIKE, Series.M_SPIKE]
    assert record.excluded == []


def test_negative_value_is_left_out():
    assert reasons(mapped(igm("o1", 0, -5))) == {"Observation/o1": "negative value"}


# Immunofixation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, negative",
    [
        ("Negative", True),
        ("No monoclonal protein detected", True),
        ("Not detected", True),
        ("IgM kappa monoclonal protein detected", False),
        ("Positive", False),
    ],
)
def test_immunofixation_text(text, negative):
    (result,) = mapped(ife("i1", 0, text)).immunofixations
    assert result.negative is negative


def test_immunofixation_from_coding_interpretation_and_string():
    coded = ife("i1", 0, "x")
    coded["valueCodeableConcept"] = {
        "coding": [{"system": "http://snomed.info/sct", "code": "260385009"}]
    }
    interpreted = ife("i2", 0, "x")
    del interpreted["valueCodeableConcept"]
    interpreted["interpretation"] = [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                    "code": "POS",
                }
            ]
        }
    ]
    string = ife("i3", 0, "x")
    del string["valueCodeableConcept"]
    string["valueString"] = "negative"
    unreadable = ife("i4", 0, "see report")
    record = mapped(coded, interpreted, string, unreadable)
    assert {i.reference: i.reading.value for i in record.immunofixations} == {
        "Observation/i1": "negative",
        "Observation/i2": "positive",
        "Observation/i3": "negative",
        # kept, so that it can withhold CR (§3.2), and reported
        "Observation/i4": "unreadable",
    }
    assert reasons(record) == {"Observation/i4": "immunofixation result could not be read"}


@pytest.mark.parametrize(
    "text, reading",
    [
        ("No evidence of a monoclonal protein", "negative"),
        ("IFE: negative", "negative"),
        ("IgM kappa band not identified", "negative"),
        ("Serum IFE negative", "negative"),
        ("Faint IgM kappa band present with no other bands", "positive"),
        ("No change in the IgM kappa band", "positive"),
        ("Negative for IgG and IgA. IgM kappa monoclonal band present.", "positive"),
        ("Negative for IgG and IgA; IgM lambda detected", "positive"),
        ("Test not performed: insufficient sample", "unreadable"),
        ("Polyclonal increase in IgM", "unreadable"),
        ("Negative. See comment", "unreadable"),
        ("IgM kappa band present. Quantitation pending", "positive"),
        ("monoclonal", "positive"),  # "monoclonal" does not contain the word "no"
        ("", "unreadable"),
    ],
)
def test_immunofixation_text_is_read_clause_by_clause(text, reading):
    resource = ife("i1", 0, "x")
    del resource["valueCodeableConcept"]
    if text:
        resource["valueString"] = text
    (result,) = mapped(resource).immunofixations
    assert result.reading.value == reading


def test_a_positive_clause_outweighs_a_negative_code():
    resource = ife("i1", 0, "IgM kappa band present")
    resource["valueCodeableConcept"]["coding"] = [
        {"system": "http://snomed.info/sct", "code": "260385009", "display": "Negative"}
    ]
    (result,) = mapped(resource).immunofixations
    assert result.reading.value == "positive"


# Medications -----------------------------------------------------------------------------------


def episodes(*resources):
    record = mapped(*resources, key="medicationStatements")
    return record.drug_episodes, reasons(record)


@pytest.mark.parametrize(
    "coding, ingredient",
    [
        ([{"system": RXNORM, "code": "1442981"}], "ibrutinib"),
        ([{"system": ATC, "code": "L01EL03"}], "zanubrutinib"),
        ([{"system": RXNORM, "code": "121191"}], "rituximab"),
        (
            [{"system": RXNORM, "code": "999999", "display": "Acalabrutinib 100 MG Oral Tablet"}],
            "acalabrutinib",
        ),
    ],
)
def test_code_only_medications(coding, ingredient):
    (episode,), _ = episodes(statement("m1", "", 0, coding=coding))
    assert episode.ingredient == ingredient


@pytest.mark.parametrize(
    "text, ingredient, drug_class",
    [
        ("Rituximab-abbs 375 mg/m2 IV", "rituximab", DrugClass.ANTI_CD20),
        ("ZANUBRUTINIB 160MG CAPS", "zanubrutinib", DrugClass.BTKI),
        ("everolimus 10 mg", "everolimus", DrugClass.MTOR_INHIBITOR),
        ("Velcade (bortezomib) SC", "bortezomib", DrugClass.PROTEASOME_INHIBITOR),
    ],
)
def test_text_only_medications(text, ingredient, drug_class):
    (episode,), _ = episodes(statement("m1", text, 0))
    assert (episode.ingredient, episode.drug_class) == (ingredient, drug_class)


def test_names_match_whole_words_only():
    assert episodes(statement("m1", "Ibrutinibium placebo", 0)) == ([], {})


def test_unrelated_drugs_are_not_reported():
    assert episodes(statement("m1", "Aspirin 81 mg", 0)) == ([], {})


def test_one_record_with_two_ingredients():
    found, _ = episodes(statement("m1", "bendamustine + rituximab (BR)", 0, 150))
    assert sorted(e.ingredient for e in found) == ["bendamustine", "rituximab"]


def test_contained_and_referenced_medication():
    contained = statement("m1", "", 0)
    del contained["medicationCodeableConcept"]
    contained["medicationReference"] = {"reference": "#med"}
    contained["contained"] = [
        {"resourceType": "Medication", "id": "med", "code": {"text": "Imbruvica (ibrutinib)"}}
    ]
    referenced = statement("m2", "", 10)
    del referenced["medicationCodeableConcept"]
    referenced["medicationReference"] = {"reference": "Medication/zanu"}
    medication = {
        "resourceType": "Medication",
        "id": "zanu",
        "ingredient": [{"itemCodeableConcept": {"coding": [{"system": ATC, "code": "L01EL03"}]}}],
    }
    unresolved = statement("m3", "", 20)
    del unresolved["medicationCodeableConcept"]
    unresolved["medicationReference"] = {"reference": "Medication/missing"}
    found, why = episodes(contained, referenced, medication, unresolved)
    assert sorted(e.ingredient for e in found) == ["ibrutinib", "zanubrutinib"]
    assert why == {"MedicationStatement/m3": "medication Medication/missing could not be resolved"}


@pytest.mark.parametrize("status", ["entered-in-error", "not-taken", "intended"])
def test_left_out_statement_statuses(status):
    found, why = episodes(statement("m1", "ibrutinib", 0, status=status))
    assert found == []
    reason = (
        "status 'intended': planned, not yet taken"
        if status == "intended"
        else f"status '{status}': not treatment taken"
    )
    assert why == {"MedicationStatement/m1": reason}


def test_statement_dates():
    period, _ = episodes(statement("m1", "ibrutinib", 0, 100, status="completed"))
    assert (period[0].start, period[0].end) == (on(0), on(100))
    single = statement("m2", "ibrutinib", None)
    single["effectiveDateTime"] = iso(5)
    (episode,), _ = episodes(single)
    assert (episode.start, episode.end) == (on(5), None)
    # §3.3: a completed statement with only effectiveDateTime ends that day.
    done = statement("m4", "ibrutinib", None, status="completed")
    done["effectiveDateTime"] = iso(7)
    (episode,), _ = episodes(done)
    assert (episode.start, episode.end) == (on(7), on(7))
    undated = statement("m3", "ibrutinib", None)
    found, why = episodes(undated)
    assert found == [] and "no start date" in why["MedicationStatement/m3"]


def test_on_hold_statement():
    (episode,), _ = episodes(statement("m1", "zanubrutinib", 0, 200, status="on-hold"))
    assert episode.on_hold and episode.end == on(200)


def requests_(*resources):
    record = mapped(*resources, key="medicationRequests")
    return record.drug_episodes, reasons(record)


def test_request_dates_prefer_validity_then_timing_then_authored():
    validity = request_for("r1", "ibrutinib", 10, validity=(12, 100), status="completed")
    timing = request_for("r2", "rituximab", 20, status="stopped")
    timing["dosageInstruction"] = [
        {"timing": {"repeat": {"boundsPeriod": {"start": iso(22), "end": iso(150)}}}}
    ]
    authored = request_for("r3", "bendamustine", 30)
    found, _ = requests_(validity, timing, authored)
    by_drug = {e.ingredient: e for e in found}
    assert (by_drug["ibrutinib"].start, by_drug["ibrutinib"].end) == (on(12), on(100))
    assert (by_drug["rituximab"].start, by_drug["rituximab"].end) == (on(22), on(150))
    assert (by_drug["bendamustine"].start, by_drug["bendamustine"].end) == (on(30), None)


def test_an_active_request_is_ongoing_and_records_how_far_it_runs():
    (episode,), _ = requests_(request_for("r1", "ibrutinib", 0, validity=(0, 30)))
    assert episode.end is None and episode.order_runs_to == on(30)


def test_supply_end_is_start_plus_supply_times_one_plus_repeats():
    supplied = request_for("r1", "ibrutinib", 0, status="completed")
    supplied["dispenseRequest"] = {
        "numberOfRepeatsAllowed": 2,
        "expectedSupplyDuration": {"value": 28, "unit": "days", "system": UCUM, "code": "d"},
    }
    weeks = request_for("r2", "rituximab", 0, status="completed")
    weeks["dispenseRequest"] = {
        "expectedSupplyDuration": {"value": 4, "unit": "weeks", "system": UCUM, "code": "wk"},
    }
    months = request_for("r3", "bortezomib", 0, status="completed")
    months["dispenseRequest"] = {
        "expectedSupplyDuration": {"value": 1, "unit": "month", "system": UCUM, "code": "mo"},
    }
    found, _ = requests_(supplied, weeks, months)
    ends = {e.ingredient: e.end for e in found}
    # a month is not a fixed number of days: not guessed, the order ends on its start
    assert ends == {"ibrutinib": on(84), "rituximab": on(28), "bortezomib": on(0)}


@pytest.mark.parametrize("intent", ["proposal", "plan", "directive", "option"])
def test_a_suggestion_is_not_an_order(intent):
    found, why = requests_(request_for("r1", "ibrutinib", 0, intent=intent))
    assert found == []
    assert why == {"MedicationRequest/r1": f"intent '{intent}': a suggestion, not an order"}


@pytest.mark.parametrize(
    "intent", ["order", "original-order", "reflex-order", "filler-order", "instance-order"]
)
def test_orders_count(intent):
    found, _ = requests_(request_for("r1", "ibrutinib", 0, intent=intent))
    assert [e.ingredient for e in found] == ["ibrutinib"]


def test_administrations_are_doses_on_their_day():
    record = mapped(
        administration("a1", "Rituxan", 10),
        administration("a2", "rituximab", 38, status="not-done"),
        administration("a3", "rituximab", 66, status="entered-in-error"),
        key="medicationAdministrations",
    )
    (dose,) = record.drug_episodes
    assert (dose.ingredient, dose.start, dose.end) == ("rituximab", on(10), on(10))
    assert dose.source.value == "MedicationAdministration"
    assert set(reasons(record)) == {"MedicationAdministration/a2", "MedicationAdministration/a3"}


@pytest.mark.parametrize(
    "text, ingredient",
    [
        ("Brukinsa 160 mg capsule", "zanubrutinib"),
        ("IMBRUVICA 420 MG TABLET", "ibrutinib"),
        ("Rituxan Hycela 1400 mg", "rituximab"),
        ("Gazyvaro", "obinutuzumab"),
        ("Velcade 3.5 mg", "bortezomib"),
        ("Hemady 20 mg", "dexamethasone"),
        ("tirabrutinib", "tirabrutinib"),
    ],
)
def test_brand_names_are_recognised(text, ingredient):
    found, _ = episodes(statement("m1", text, 0))
    assert [e.ingredient for e in found] == [ingredient]


@pytest.mark.parametrize("status", ["cancelled", "draft", "entered-in-error"])
def test_left_out_request_statuses(status):
    found, why = requests_(request_for("r1", "ibrutinib", 0, status=status))
    assert found == [] and status in why["MedicationRequest/r1"]


# Procedures -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, counted",
    [
        ("TPE", True),
        ("Apheresis", True),
        ("Apheresis for hyperviscosity", True),
        ("Apheresis, peripheral blood stem cell collection", False),
        ("Plateletpheresis donor apheresis", False),
        ("LDL apheresis", False),
        ("Extracorporeal photopheresis (apheresis)", False),
        ("Plasma exchange after PBSC harvest", True),  # a plasma exchange whatever else it says
        ("Leukapheresis", False),
    ],
)
def test_plasmapheresis_words(text, counted):
    record = mapped(plasmapheresis("p1", 5, text=text), key="procedures")
    assert bool(record.plasmaphereses) is counted


def test_plasmapheresis_procedures():
    record = mapped(
        plasmapheresis("p1", 5),
        plasmapheresis("p2", 6, text="Therapeutic plasma exchange"),
        plasmapheresis("p3", 7, status="in-progress"),
        plasmapheresis("p4", 8, text="Appendectomy"),
        key="procedures",
    )
    assert sorted(p.day for p in record.plasmaphereses) == [on(5), on(6)]
    assert reasons(record) == {"Procedure/p3": "status 'in-progress': not a completed procedure"}


# Parsing ---------------------------------------------------------------------------------------


def test_malformed_resource_is_left_out_alone():
    bad = igm("o2", 0, 1000)
    bad["valueQuantity"]["value"] = "lots"
    record = mapped(igm("o1", 0, 1000), bad)
    assert [r.reference for r in record.lab_results] == ["Observation/o1"]
    assert reasons(record)["Observation/o2"].startswith("not valid FHIR R4: valueQuantity.value")


def test_same_id_across_keys_counts_once():
    parsed = parse_resources(
        {"observations": [igm("o1", 0, 1000)], "other": [igm("o1", 0, 1000)]}, "p1", None
    )
    assert len(to_patient_record(parsed).lab_results) == 1


def test_resource_without_subject_is_left_out():
    resource = igm("o1", 0, 1000)
    del resource["subject"]
    assert reasons(mapped(resource)) == {"Observation/o1": "its patient cannot be identified"}


def test_history_and_absolute_references_to_the_patient():
    versioned = igm("o1", 0, 1000)
    versioned["subject"] = {"reference": "Patient/p1/_history/3"}
    absolute = igm("o2", 1, 1000)
    absolute["subject"] = {"reference": "https://ehr.example/fhir/Patient/p1"}
    parsed = parse_resources(
        {"observations": [versioned, absolute]}, "p1", "https://ehr.example/fhir/"
    )
    assert len(to_patient_record(parsed).lab_results) == 2
