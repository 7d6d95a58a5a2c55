"""clinical-rules.md §4.1-4.3: which series, which baseline, and the latest value."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cds_service.clinical.assessment import assess_response
from cds_service.clinical.change import displayed_percent
from cds_service.clinical.criteria import IWWM6_STRICT
from cds_service.clinical.models import Category, Caveat, Series

from .helpers import episode, lab, m_spike, on, record

IBRUTINIB = [episode("ibrutinib", 0)]


def assess(rec, today_offset=None):
    if today_offset is None:
        today = max(r.day for r in rec.lab_results) + timedelta(days=3)
    else:
        today = on(today_offset)
    # IWWM-6 arithmetic as published: the floor has tests of its own.
    return assess_response(rec, IWWM6_STRICT, today)


@pytest.mark.parametrize("m_spike_day, series", [(182, Series.TOTAL_IGM), (183, Series.M_SPIKE)])
def test_total_igm_more_than_92_days_older_than_the_m_spike_is_stale(m_spike_day, series):
    labs = [
        lab(-5, 4000),
        lab(90, 1500),
        m_spike(-5, "3.0"),
        m_spike(90, "1.0"),
        m_spike(m_spike_day, "0.9"),
    ]
    result = assess(record(labs, IBRUTINIB))
    assert result.series == series
    # v3 §4.1: either way the other method has something to say: as the series used, or as
    # newer results listed beside it.
    assert Caveat.METHOD_CHANGE in result.caveats
    listed = result.other_series.values if result.other_series else ()
    assert [v.day for v in listed] == ([on(m_spike_day)] if series == Series.TOTAL_IGM else [])


def test_newer_rising_values_of_the_other_series_are_a_possible_progression():
    # E35: total IgM stale at day 84; the M-spike from another laboratory rises 16 -> 23 g/L.
    labs = [lab(-7, 4200), lab(84, 2100)]
    labs += [m_spike(d, g) for d, g in ((182, "1.6"), (273, "1.9"), (364, "2.3"))]
    result = assess(record(labs, IBRUTINIB))
    assert result.series == Series.TOTAL_IGM and result.category == Category.PR
    assert result.other_series.rising
    assert Caveat.UNCONFIRMED_PROGRESSION in result.caveats


def test_progression_seen_by_one_method_is_not_erased_by_the_other():
    labs = [
        lab(-5, 4000),
        lab(90, 1000),
        lab(180, 900),
        m_spike(-5, "3.0"),
        m_spike(90, "1.0"),
        m_spike(120, "1.3"),
        m_spike(150, "1.4"),
    ]
    result = assess(record(labs, IBRUTINIB))
    assert result.series == Series.M_SPIKE
    assert result.category == Category.PD
    assert Caveat.METHOD_CHANGE in result.caveats


def test_without_a_baseline_progression_is_judged_from_the_on_treatment_nadir():
    # A patient who started treatment elsewhere.
    labs = [lab(30, 2000), lab(90, 1000), lab(180, 1300), lab(270, 1400)]
    result = assess(record(labs, IBRUTINIB))
    assert result.category == Category.PD
    assert result.baseline is None and result.percent_change is None
    assert result.reason == (
        "no pre-treatment baseline: progression judged from the on-treatment nadir"
    )


def test_without_a_baseline_one_rise_is_ne_with_unconfirmed_progression():
    labs = [lab(30, 2000), lab(90, 1000), lab(180, 1300)]
    result = assess(record(labs, IBRUTINIB))
    assert result.category == Category.NE
    assert {Caveat.UNCONFIRMED_PROGRESSION, Caveat.NO_BASELINE} <= set(result.caveats)


def test_without_a_baseline_the_cr_conditions_still_give_cr():
    labs = [lab(30, 2000), lab(300, 100)]
    result = assess(record(labs, IBRUTINIB, ifes=[(300, True)]))
    assert result.category == Category.CR
    assert Caveat.NO_BASELINE not in result.caveats


def test_values_after_start_all_after_plasmapheresis():
    labs = [lab(-5, 4000), lab(20, 2000)]
    result = assess(record(labs, IBRUTINIB, plasmaphereses=[5]))
    assert result.category == Category.NE
    assert Caveat.PLASMAPHERESIS in result.caveats
    assert "after plasmapheresis" in result.reason


# §4.2 a lower bound as the baseline ---------------------------------------------------------


def test_a_lower_bound_baseline_proves_at_least_its_reduction():
    labs = [lab(-5, 7000, lower=True), lab(90, 3400)]
    result = assess(record(labs, IBRUTINIB))
    # (3400 - 7000) / 7000 = -51.4 %: at least a PR, since the true baseline is higher
    assert result.category == Category.PR
    assert result.change_is_bound is True
    assert str(displayed_percent(result.percent_change)) == "-51.4"


@pytest.mark.parametrize("latest, category", [(6999, Category.SD), (7000, Category.NE)])
def test_a_latest_value_not_below_the_bound_baseline_proves_nothing(latest, category):
    result = assess(record([lab(-5, 7000, lower=True), lab(90, latest)], IBRUTINIB))
    assert result.category == category
    if category == Category.NE:
        assert result.reason == "baseline above the reporting range"


def test_a_lower_bound_baseline_is_never_a_nadir():
    labs = [lab(-5, 7000, lower=True), lab(90, 3000), lab(180, 3100)]
    result = assess(record(labs, IBRUTINIB))
    assert result.nadir.value_mg_dl == 3000


# §4.3 the latest value -------------------------------------------------------------------


@pytest.mark.parametrize("after_exchange, ne", [(42, True), (43, False)])
def test_a_latest_value_within_42_days_of_an_exchange_is_ne(after_exchange, ne):
    labs = [lab(-5, 4000), lab(100, 1500), lab(100 + after_exchange, 1400)]
    result = assess(record(labs, IBRUTINIB, plasmaphereses=[100]))
    assert (result.category == Category.NE) is ne
    assert Caveat.PLASMAPHERESIS in result.caveats
