"""The order check's rule (contract "Order check", clinical-rules.md §7 reference values)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cds_service.clinical.criteria import IWWM6
from cds_service.clinical.models import LabResult, Plasmapheresis, Series
from cds_service.clinical.order_check import OrderRule, check_anti_cd20_order

from .helpers import lab, m_spike, on, record

RITUXIMAB = ("rituximab",)


def check(rec, today=100, ordered=RITUXIMAB):
    return check_anti_cd20_order(rec, ordered, IWWM6, on(today))


def test_nothing_without_an_anti_cd20_order():
    assert check(record([lab(90, 9000)]), ordered=()) is None


@pytest.mark.parametrize("value, rule", [(3999, None), (4000, OrderRule.IGM_HIGH)])
def test_total_igm_of_4000_or_more_within_92_days(value, rule):
    result = check(record([lab(90, value)]))
    assert (result.rule if result else None) == rule
    if result:
        assert result.reference_value.value_mg_dl == value


@pytest.mark.parametrize("grams, high", [("2.99", False), ("3.0", True)])
def test_an_m_spike_of_3000_or_more(grams, high):
    result = check(record([m_spike(90, grams)]))
    assert (result is not None and result.rule == OrderRule.IGM_HIGH) is high


@pytest.mark.parametrize("age, rule", [(92, None), (93, OrderRule.IGM_MISSING)])
def test_no_result_within_92_days_is_missing(age, rule):
    result = check(record([lab(100 - age, 1500)]))
    assert (result.rule if result else None) == rule


def test_an_old_high_value_never_passes_for_a_recent_low_one():
    # 5000 mg/dL four months ago: no reference value now, and the card says IgM is missing.
    result = check(record([lab(-30, 5000)]))
    assert result.rule == OrderRule.IGM_MISSING and result.reference_value is None


def test_after_an_exchange_the_pre_exchange_level_is_what_matters():
    rec = record([lab(80, 6500), lab(95, 2000)], plasmaphereses=[90])
    result = check(rec)
    assert result.rule == OrderRule.IGM_HIGH
    assert result.reference_value.value_mg_dl == 6500
    assert result.recent_plasmapheresis == on(90)


def test_only_post_exchange_values_are_missing_and_say_so():
    rec = record([lab(-30, 6500), lab(95, 2000)], plasmaphereses=[90])
    result = check(rec)
    assert result.rule == OrderRule.IGM_MISSING and result.only_after_exchange


def test_a_value_drawn_before_the_exchange_on_its_day_counts():
    day = on(95)
    drawn = LabResult(
        "Observation/x",
        Series.TOTAL_IGM,
        day,
        lab(0, 5200).value_mg_dl,
        drawn_at=datetime(day.year, day.month, day.day, 7, tzinfo=UTC),
    )
    rec = record([drawn])
    rec.plasmaphereses.append(
        Plasmapheresis(
            "Procedure/p",
            day,
            started_at=datetime(day.year, day.month, day.day, 9, tzinfo=UTC),
        )
    )
    assert check(rec).rule == OrderRule.IGM_HIGH


def test_a_recent_upper_bound_is_a_measurement_not_missing():
    assert check(record([lab(90, 25, upper=True)])) is None
