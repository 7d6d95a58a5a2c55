"""The strict reader of the elements the rules read (`fhir_elements`, via parsing and mapping).

Each element the rules read is still checked to FHIR R4: a malformed one leaves its resource
out with a reason naming the element. Elements the rules never read are not looked at, so
noise in them no longer makes a usable result vanish (under whole-resource validation, each
resource in `test_noise_in_unread_elements_does_not_leave_a_result_out` was left out).
"""

from __future__ import annotations

import copy
import re
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.fhir import elements as fhir_elements
from cds_service.fhir.elements import parse_datetime
from cds_service.fhir.mapping import to_patient_record
from cds_service.fhir.parsing import parse_resources

from ..builders import (
    administration,
    igm,
    plasmapheresis,
    request_for,
    statement,
)


def record_of(*resources, key="observations"):
    return to_patient_record(parse_resources({key: list(resources)}, "p1", None))


def reason_for(resource, key="observations"):
    record = record_of(resource, key=key)
    reasons = {e.reference: e.reason for e in record.excluded}
    assert len(reasons) == 1, reasons
    return next(iter(reasons.values()))


def changed(resource, path, value):
    """A copy of `resource` with the element at `path` (keys and indexes) set to `value`."""
    resource = copy.deepcopy(resource)
    target = resource
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return resource


def without(resource, *names):
    resource = copy.deepcopy(resource)
    for name in names:
        del resource[name]
    return resource


IGM = igm("o1", 0, 5100, uln=230)
IGM["code"]["coding"].append({"system": "http://example.org/local", "code": "IGM"})


@pytest.mark.parametrize(
    "path, value, where",
    [
        # dates: the dateTime regex, and the calendar
        (("effectiveDateTime",), "15/01/2024", "effectiveDateTime"),
        (("effectiveDateTime",), "2024-01-15T10:00:00", "effectiveDateTime"),  # time, no zone
        (("effectiveDateTime",), "2024-01-15\n", "effectiveDateTime"),
        (("effectiveDateTime",), 20240115, "effectiveDateTime"),
        (("effectiveDateTime",), "2024-02-30", "date"),
        (("issued",), "2024-01-15", "issued"),  # an instant needs a time and a zone
        # the value, its comparator and its unit
        (("valueQuantity", "value"), "lots", "valueQuantity.value"),
        (("valueQuantity", "value"), True, "valueQuantity.value"),
        (("valueQuantity", "value"), "1" * 130, "valueQuantity.value"),
        (("valueQuantity", "value"), 10**130, "valueQuantity.value"),
        (("valueQuantity", "value"), {"value": 5100}, "valueQuantity.value"),
        (("valueQuantity", "comparator"), "< ", "valueQuantity.comparator"),
        (("valueQuantity", "unit"), 5, "valueQuantity.unit"),
        (("valueQuantity", "unit"), "", "valueQuantity.unit"),
        (("valueQuantity", "code"), "mg/dL\n", "valueQuantity.code"),
        (("valueQuantity", "system"), "http://unitsofmeasure.org x", "valueQuantity.system"),
        (("valueQuantity",), [5100], "valueQuantity"),
        # the status and the code
        (("status",), "final ", "status"),
        (("status",), 1, "status"),
        (("code", "coding"), {"system": "http://loinc.org", "code": "2472-9"}, "code.coding"),
        (("code", "coding", 1), {"system": 5, "code": "x"}, "code.coding[1].system"),
        # the reference range and interpretation
        (("referenceRange", 0, "high", "value"), "high", "referenceRange[0].high.value"),
        (("referenceRange",), {"high": {"value": 230}}, "referenceRange"),
        (("interpretation",), {"text": "H"}, "interpretation"),
        # id and meta.lastUpdated
        (("id",), "o 1", "id"),
        (("meta",), {"lastUpdated": "yesterday"}, "meta.lastUpdated"),
    ],
)
def test_a_malformed_read_element_leaves_the_result_out_with_its_reason(path, value, where):
    reason = reason_for(changed(IGM, path, value))
    assert reason.startswith("not valid FHIR R4: "), reason
    assert where in reason


@pytest.mark.parametrize(
    "resource, key, where",
    [
        # Well-formed FHIR codes, outside the required value sets the rules act on.
        (
            changed(IGM, ("valueQuantity", "comparator"), "< ="),
            "observations",
            "valueQuantity.comparator",
        ),
        (changed(IGM, ("status",), "finalised"), "observations", "status"),
        (
            changed(statement("m1", "zanubrutinib", 0), ("status",), "taking"),
            "medicationStatements",
            "status",
        ),
        (
            changed(request_for("r1", "rituximab", 0), ("intent",), "wish"),
            "medicationRequests",
            "intent",
        ),
        (
            changed(administration("a1", "rituximab", 0), ("status",), "given"),
            "medicationAdministrations",
            "status",
        ),
        (changed(plasmapheresis("p1", 0), ("status",), "done"), "procedures", "status"),
    ],
)
def test_a_code_outside_its_required_value_set_is_left_out(resource, key, where):
    """Before, an unknown medication status such as 'taking' counted as treatment taken."""
    reason = reason_for(resource, key=key)
    assert reason == f"not valid FHIR R4: {where}: not a code of its required value set"


@pytest.mark.parametrize("missing, where", [("status", "status"), ("code", "code")])
def test_a_missing_required_element_leaves_the_result_out(missing, where):
    reason = reason_for(without(IGM, missing))
    assert reason.startswith("not valid FHIR R4") and f"`{where}`" in reason


def test_a_choice_element_given_twice_leaves_the_result_out():
    both = changed(IGM, ("effectivePeriod",), {"start": "2024-01-15"})
    assert "effective[x]" in reason_for(both)
    two_values = changed(IGM, ("valueString",), "5100 mg/dL")
    assert "value[x]" in reason_for(two_values)
    # A type the rules never read still counts: the result has two values.
    unread_type = changed(IGM, ("valueBoolean",), True)
    assert "value[x]" in reason_for(unread_type) and "valueBoolean" in reason_for(unread_type)


def test_texts_repeated_across_results_are_judged_for_each_result():
    """The reader reads a repeated code or reference range text once per request: a
    malformed one leaves out every result that carries it, and only those."""
    bad_range = {"high": {"value": "high", "unit": "mg/dL"}}
    first = changed(IGM, ("referenceRange",), [bad_range])
    second = changed(changed(IGM, ("id",), "o2"), ("referenceRange",), [bad_range])
    good = changed(IGM, ("id",), "o3")
    record = record_of(first, second, good)
    reasons = {e.reference: e.reason for e in record.excluded}
    assert set(reasons) == {"Observation/o1", "Observation/o2"}
    assert all("referenceRange[0].high.value" in r for r in reasons.values())
    assert [r.reference for r in record.lab_results] == ["Observation/o3"]


def test_a_malformed_subject_reference_cannot_name_the_patient():
    resource = changed(IGM, ("subject", "reference"), "Patient/p1\n")
    assert reason_for(resource) == "its patient cannot be identified"


@pytest.mark.parametrize(
    "resource, key, where",
    [
        (
            changed(statement("m1", "zanubrutinib", 0), ("effectivePeriod", "start"), "2024-1-5"),
            "medicationStatements",
            "effectivePeriod.start",
        ),
        (
            changed(statement("m1", "zanubrutinib", 0), ("status",), ["active"]),
            "medicationStatements",
            "status",
        ),
        (
            without(statement("m1", "zanubrutinib", 0), "medicationCodeableConcept"),
            "medicationStatements",
            "medication[x]",
        ),
        (
            changed(
                statement("m1", "", 0, coding=[{"system": "x", "code": "1"}]),
                ("medicationCodeableConcept", "coding", 0, "system"),
                7,
            ),
            "medicationStatements",
            "medicationCodeableConcept.coding[0].system",
        ),
        (
            changed(
                request_for("r1", "rituximab", 0, validity=(0, 30)),
                ("dispenseRequest", "numberOfRepeatsAllowed"),
                -1,
            ),
            "medicationRequests",
            "dispenseRequest.numberOfRepeatsAllowed",
        ),
        (
            changed(request_for("r1", "rituximab", 0), ("intent",), "or der"),
            "medicationRequests",
            "intent",
        ),
        (
            without(request_for("r1", "rituximab", 0), "intent"),
            "medicationRequests",
            "intent",
        ),
        (
            changed(request_for("r1", "rituximab", 0), ("authoredOn",), "tomorrow"),
            "medicationRequests",
            "authoredOn",
        ),
        (
            changed(
                request_for("r1", "rituximab", 0),
                ("dosageInstruction",),
                [{"timing": {"repeat": {"boundsPeriod": {"end": "2024-13-01"}}}}],
            ),
            "medicationRequests",
            "dosageInstruction[0].timing.repeat.boundsPeriod.end",
        ),
        (
            changed(administration("a1", "rituximab", 0), ("effectiveDateTime",), "2024"),
            "medicationAdministrations",
            "not precise to the day",
        ),
        (
            changed(plasmapheresis("p1", 0), ("performedDateTime",), "2024-01-15T25:00:00Z"),
            "procedures",
            "performedDateTime",
        ),
        (
            changed(plasmapheresis("p1", 0), ("code", "text"), 42),
            "procedures",
            "code.text",
        ),
    ],
)
def test_each_read_element_of_treatment_and_procedures_is_checked(resource, key, where):
    assert where in reason_for(resource, key=key)


def test_a_contained_medication_is_checked_when_it_is_read():
    resource = statement("m1", "", 0)
    del resource["medicationCodeableConcept"]
    resource["medicationReference"] = {"reference": "#med"}
    resource["contained"] = [
        {"resourceType": "Medication", "id": "med", "code": {"coding": {"code": "x"}}}
    ]
    reason = reason_for(resource, key="medicationStatements")
    assert reason.startswith("contained #med: not valid FHIR R4") and "code.coding" in reason


NOISE = [
    ("extension", "not an array"),
    ("modifierExtension", [{"url": 5}]),
    ("meta", {"lastUpdated": "2024-01-15T00:00:00Z", "tag": "not an array", "versionId": 7}),
    ("text", {"status": "generated", "div": 42}),
    ("category", {"coding": "laboratory"}),
    ("note", "not an array"),
    ("performer", {"reference": 5}),
    ("specimen", []),
    ("identifier", [{"system": 5, "value": ["x"]}]),
    ("implicitRules", 12),
    ("language", "not a code with spaces"),
    ("basedOn", "MedicationRequest/1"),
]


@pytest.mark.parametrize("name, noise", NOISE, ids=[name for name, _ in NOISE])
def test_noise_in_unread_elements_does_not_leave_a_result_out(name, noise):
    """Each of these was left out whole under whole-resource validation: a valid IgM result
    vanished because of an element the rules never read. It is now used."""
    record = record_of(changed(IGM, (name,), noise))
    assert record.excluded == []
    (result,) = record.lab_results
    assert result.value_mg_dl == Decimal(5100)


def test_unread_parts_of_read_elements_are_not_judged():
    # A laboratory result's code is read for its LOINC codings only; the subject is checked
    # (strictly) by the patient filter, its display never read.
    noisy = changed(IGM, ("code", "text"), ["IgM"])
    noisy = changed(noisy, ("code", "coding", 0, "display"), 42)
    noisy = changed(noisy, ("subject", "display"), {"a": 1})
    record = record_of(noisy)
    assert record.excluded == [] and len(record.lab_results) == 1


def test_noise_in_unread_elements_of_treatment_is_ignored():
    noisy = statement("m1", "zanubrutinib", 0, dosage="twice daily", reasonCode={"text": 5})
    record = record_of(noisy, key="medicationStatements")
    assert record.excluded == [] and [e.ingredient for e in record.drug_episodes] == [
        "zanubrutinib"
    ]


def test_numbers_are_exact_and_decimal_strings_are_read_as_decimals():
    record = record_of(igm("o1", 0, Decimal("22.33"), "g/L"), igm("o2", 1, "51.10", "g/L"))
    assert sorted(r.value_mg_dl for r in record.lab_results) == [Decimal("2233"), Decimal("5110")]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2024", None),
        ("2024-03", None),
        ("2024-03-05", "2024-03-05"),
        ("2024-03-05T23:30:00+14:00", "2024-03-05T23:30:00+14:00"),
        ("2016-12-31T23:59:60Z", "2016-12-31"),  # a leap second keeps its day
    ],
)
def test_parse_datetime_keeps_the_day_as_written(text, expected):
    value = parse_datetime(text)
    assert (value.isoformat() if value is not None else None) == expected


def test_parse_datetime_refuses_a_day_the_calendar_lacks():
    with pytest.raises(ValueError):
        parse_datetime("2023-02-29")


# The date regexes: the reader's faster forms accept exactly the specification's language --


def _mutations(valid: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Valid values, and values one edit away from valid (where the two could differ)."""
    alphabet = "0123456789-:.TZ+ \n"

    @st.composite
    def edited(draw: st.DrawFn) -> str:
        text = draw(valid)
        at = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["replace", "insert", "delete"]))
        char = draw(st.sampled_from(alphabet))
        if kind == "insert":
            return text[:at] + char + text[at:]
        if kind == "delete" or at == len(text):
            return text[:at] + text[at + 1 :]
        return text[:at] + char + text[at + 1 :]

    return st.one_of(valid, edited(), st.text(alphabet, max_size=30))


@settings(max_examples=3000, deadline=None)
@given(_mutations(st.from_regex(fhir_elements.DATE_TIME_PATTERN)))
def test_the_fast_date_time_regex_accepts_what_the_specification_does(text):
    spec = re.search(fhir_elements.DATE_TIME_PATTERN, text) is not None
    assert (re.search(fhir_elements.DATE_TIME_FAST, text) is not None) == spec


@settings(max_examples=3000, deadline=None)
@given(_mutations(st.from_regex(fhir_elements.INSTANT_PATTERN)))
def test_the_fast_instant_regex_accepts_what_the_specification_does(text):
    spec = re.search(fhir_elements.INSTANT_PATTERN, text) is not None
    assert (re.search(fhir_elements.INSTANT_FAST, text) is not None) == spec


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("0000", False),
        ("0001", True),
        ("1000-01-01", True),
        ("2024-02-30", True),  # the regex allows it; the calendar is checked when read
        ("2024-01-01T10:00:00Z", True),
        ("2024-01-01T10:00Z", False),
        ("2024-01-01T24:00:00Z", False),
        ("2024-01-01T10:00:60+14:00", True),
        ("2024-01-01T10:00:00+14:01", False),
        ("2024-01-01\n", False),
    ],
)
def test_date_time_examples_both_ways(text, valid):
    for pattern in (fhir_elements.DATE_TIME_PATTERN, fhir_elements.DATE_TIME_FAST):
        assert (re.search(pattern, text) is not None) == valid
