"""clinical-rules.md §3.1: values held back as an implausible change, and released."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cds_service.clinical.assessment import assess_response
from cds_service.clinical.criteria import IWWM6
from cds_service.clinical.laboratory import hold_back_implausible
from cds_service.clinical.models import Category, Series, UnusableResult
from cds_service.clinical.reasons import unusable_reason

from .helpers import episode, igm_series, lab, on, record

IBRUTINIB = [episode("ibrutinib", 0)]


def held(points, exchanges=(), affected=()):
    values = igm_series(*points)
    _, held_back = hold_back_implausible(
        values, [on(d) for d in exchanges], lambda v: v.day in {on(d) for d in affected}, IWWM6
    )
    return [(v.day, int(v.value_mg_dl)) for v in held_back]


@pytest.mark.parametrize(
    "value, is_held", [(210, True), (211, False), (20999, False), (21000, True)]
)
def test_tenfold_either_way_is_held_back(value, is_held):
    # at most a tenth of 2100, or at least 10 times it (both inclusive)
    assert bool(held([(0, 2100), (90, value)])) is is_held


@pytest.mark.parametrize("days, is_held", [(183, True), (184, False)])
def test_only_within_183_days_of_the_previous_value(days, is_held):
    assert bool(held([(0, 2100), (days, 16)])) is is_held


def test_an_exchange_between_the_two_values_explains_the_change():
    assert held([(0, 2100), (30, 16)], exchanges=[0]) == []
    assert held([(0, 2100), (30, 16)], exchanges=[30]) == []
    assert held([(0, 2100), (30, 16)], exchanges=[31]) == [(on(30), 16)]


def test_a_value_within_twice_or_half_of_a_held_one_releases_it_and_both_count():
    # The rule's own example: 16 held against 2100, 15 held against 2100 too, releases 16.
    assert held([(0, 2100), (30, 16), (60, 15)]) == []
    assert held([(0, 2100), (30, 16), (60, 32)]) == []  # twice: inclusive
    assert held([(0, 2100), (30, 16), (60, 8)]) == []  # half: inclusive


def test_a_next_value_beyond_a_factor_of_two_keeps_it_held_for_good():
    # 33 is not within twice 16: 16 stays held; 33 (held against 2100) is released by 34.
    assert held([(0, 2100), (30, 16), (60, 33), (90, 34)]) == [(on(30), 16)]
    assert held([(0, 2100), (30, 16), (60, 33), (90, 2000)]) == [(on(30), 16), (on(60), 33)]
    # E25: 16 against 2100, then 1550: 16 stays held back; 1550 counts.
    assert held([(-7, 3600), (84, 2100), (182, 16), (273, 1550), (364, 1500)]) == [(on(182), 16)]


def test_the_previous_value_is_never_held_back_or_affected_by_an_exchange():
    # 2100 is plasmapheresis-affected: 16 is compared with nothing earlier.
    assert held([(0, 2100), (30, 16)], affected=[0]) == []


def test_bounds_are_never_held_and_never_the_previous_value():
    values = [lab(0, 2100), lab(30, 25, upper=True), lab(60, 16)]
    kept, held_back = hold_back_implausible(values, [], lambda v: False, IWWM6)
    assert [v.day for v in held_back] == [on(60)]  # against 2100, not against "<25"
    assert values[1] in kept


def test_e25_a_held_back_value_is_no_latest_value_and_no_progression():
    labs = igm_series((-7, 3600), (84, 2100), (182, 16))
    early = assess_response(record(labs, IBRUTINIB), IWWM6, on(185))
    assert early.category == Category.MR and early.latest.day == on(84)
    assert [v.day for v in early.held_back] == [on(182)]
    labs += igm_series((273, 1550), (364, 1500))
    later = assess_response(record(labs, IBRUTINIB), IWWM6, on(367))
    assert later.category == Category.PR
    assert later.progression_confirmed is None


def unusable(reference, reason, offset, series=Series.TOTAL_IGM):
    return UnusableResult(reference, series, on(offset), reason)


def test_the_unusable_reason_counts_and_names_the_commonest_reason():
    items = [
        unusable("Observation/a", "unit 'IU/mL' cannot be converted to mg/dL", 0),
        unusable("Observation/b", "status 'preliminary' is not a final result", 10),
        unusable("Observation/c", "unit 'IU/mL' cannot be converted to mg/dL", 20),
    ]
    assert unusable_reason(items) == (
        "3 IgM results could not be used (unit 'IU/mL' cannot be converted to mg/dL)"
    )
    # a tie: the earliest result's reason; one result: "result"
    assert unusable_reason(items[:2]) == (
        "2 IgM results could not be used (unit 'IU/mL' cannot be converted to mg/dL)"
    )
    assert unusable_reason(items[1:2]).startswith("1 IgM result could not be used")
    mixed = [*items[:1], unusable("Observation/s", "no value", 5, Series.M_SPIKE)]
    assert unusable_reason(mixed).startswith("2 IgM or M-spike results")
    assert unusable_reason(mixed[1:]).startswith("1 M-spike result")
    assert unusable_reason([]) is None


def test_results_that_exist_never_read_as_no_results():
    rec = record([], IBRUTINIB)
    rec.unusable = [unusable("Observation/a", "no value", -7)]
    result = assess_response(rec, IWWM6, on(30) + timedelta(days=0))
    assert result.category == Category.NE
    assert result.reason == "1 IgM result could not be used (no value)"
