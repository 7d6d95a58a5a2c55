"""§3.1 one value per day: same-day results are one measurement."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.clinical.criteria import IWWM6
from cds_service.clinical.laboratory import one_value_per_day
from cds_service.clinical.models import Series

from .helpers import lab


def kept(*results):
    by_day = one_value_per_day(list(results), IWWM6)
    return [v for series in Series for v in by_day.values[series]], by_day


def test_a_diluted_rerun_replaces_the_bound_it_satisfies():
    (value,), by_day = kept(lab(10, 7000, lower=True, ref="O/a"), lab(10, 9200, ref="O/b"))
    assert value.reference == "O/b"
    assert [e.reference for e in by_day.replaced] == ["O/a"]


def test_a_plain_value_the_bound_does_not_allow_does_not_replace_it():
    # ">7000" and "6500" on one day contradict each other: the lowest stands (6500).
    (value,), _ = kept(lab(10, 7000, lower=True, ref="O/a"), lab(10, 6500, ref="O/b"))
    assert value.value_mg_dl == 6500


def test_otherwise_the_lowest_and_a_plain_value_wins_a_tie():
    (value,), _ = kept(lab(10, 25, upper=True, ref="O/a"), lab(10, 30, ref="O/b"))
    assert value.reference == "O/a"  # "<25" is lower than 30, and 30 does not satisfy it
    (value,), _ = kept(lab(10, 25, upper=True, ref="O/a"), lab(10, 25, ref="O/b"))
    assert value.reference == "O/b"


def test_33358_3_replaces_51435_6_in_the_m_spike_series():
    (value,), _ = kept(
        lab(10, 900, Series.M_SPIKE, code="51435-6", ref="O/a"),
        lab(10, 1000, Series.M_SPIKE, code="33358-3", ref="O/b"),
    )
    assert value.reference == "O/b"


@pytest.mark.parametrize("high, discordant", [(1200, False), (1201, True)])
def test_same_day_values_more_than_20_percent_apart_are_discordant(high, discordant):
    (value,), by_day = kept(lab(10, 1000, ref="O/a"), lab(10, high, ref="O/b"))
    assert value.value_mg_dl == 1000
    assert bool(by_day.discordances) is discordant
    if discordant:
        assert (by_day.discordances[0].low, by_day.discordances[0].high) == (1000, high)


def test_series_are_kept_apart():
    values, _ = kept(lab(10, 1000), lab(10, 800, Series.M_SPIKE))
    assert sorted(v.series for v in values) == [Series.M_SPIKE, Series.TOTAL_IGM]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(1, 9000)), min_size=1, max_size=12))
def test_one_value_per_day_and_every_other_result_reported(points):
    results = [lab(day, value, ref=f"O/{i}") for i, (day, value) in enumerate(points)]
    values, by_day = kept(*results)
    days = [v.day for v in values]
    assert len(days) == len(set(days))
    assert len(values) + len(by_day.replaced) == len(results)
    for value in values:
        same_day = [r.value_mg_dl for r in results if r.day == value.day]
        assert value.value_mg_dl == min(same_day)
        assert isinstance(value.value_mg_dl, Decimal)
