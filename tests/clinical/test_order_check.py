"""The order check's rule (contract "Order check", clinical-rules.md §7 reference values)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from cds_service.clinical.criteria import IWWM6
from cds_service.clinical.models import LabResult, Plasmapheresis, Series, ViscosityResult
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
    rec = record([lab(-30, 3500), lab(95, 2000)], plasmaphereses=[90])
    result = check(rec)
    assert result.rule == OrderRule.IGM_MISSING and result.only_after_exchange


@pytest.mark.parametrize("before, rule", [(3999, OrderRule.IGM_MISSING), (4000, None)])
def test_exchanges_going_on_the_pre_exchange_value_shows_the_risk(before, rule):
    # v3 (E42c): all recent values are lowered by exchanges; the newest one that is not
    # decides, at any date.
    rec = record([lab(-30, before), lab(95, 2000)], plasmaphereses=[90])
    result = check(rec)
    expected = rule or OrderRule.PRE_EXCHANGE_IGM_HIGH
    assert result.rule == expected
    if expected == OrderRule.PRE_EXCHANGE_IGM_HIGH:
        assert result.reference_value.day == on(-30)
        assert (result.exchanges.count, result.exchanges.first) == (1, on(90))


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


# contract v3 rules --------------------------------------------------------------------------


def viscosity(offset, value, unit="cP", high=None):
    return ViscosityResult(
        f"Observation/v{offset}",
        on(offset),
        f"{value} {unit}",
        value=Decimal(str(value)),
        unit=unit,
        centipoise=unit in ("cP", "mPa.s"),
        reference_high=Decimal(str(high)) if high is not None else None,
    )


@pytest.mark.parametrize(
    "measured, rule",
    [
        (viscosity(93, "4.0"), None),
        (viscosity(93, "4.1"), OrderRule.VISCOSITY_HIGH),
        (viscosity(93, "4.1", "mPa.s"), OrderRule.VISCOSITY_HIGH),
        (viscosity(93, "3.7", "s", high="1.8"), OrderRule.VISCOSITY_HIGH),  # twice its range
        (viscosity(93, "3.6", "s", high="1.8"), None),
        (viscosity(7, "5.0"), None),  # 93 days old
    ],
)
def test_a_high_serum_viscosity_is_a_warning(measured, rule):
    # E42(a): total IgM 3700 (under 4000) but the viscosity is high
    rec = record([lab(93, 3700)])
    rec.viscosities = [measured]
    result = check(rec)
    assert (result.rule if result else None) == rule


def test_m_spike_only_asks_for_total_igm():
    # E42(b): the M-spike under-reads high IgM
    result = check(record([m_spike(93, "2.6")]))
    assert result.rule == OrderRule.TOTAL_IGM_MISSING
    assert result.reference_value.value_mg_dl == 2600
    assert check(record([m_spike(93, "3.0")])).rule == OrderRule.IGM_HIGH


def test_info_cards_need_evidence_of_wm():
    # E42(d): no IgM for an anti-CD20 antibody given for another disease: nothing to say
    assert check_anti_cd20_order(record([]), RITUXIMAB, IWWM6, on(100), evidence=False) is None
    unknown = check_anti_cd20_order(record([]), RITUXIMAB, IWWM6, on(100), evidence=None)
    assert unknown.rule == OrderRule.IGM_MISSING and unknown.diagnosis_unchecked
    # warnings do not wait for evidence: IgM 5000 is a risk whatever the diagnosis
    high = check_anti_cd20_order(record([lab(95, 5000)]), RITUXIMAB, IWWM6, on(100), False)
    assert high.rule == OrderRule.IGM_HIGH


def test_a_drug_that_cannot_be_identified_with_evidence_of_wm():
    # E42(e)
    result = check_anti_cd20_order(record([]), (), IWWM6, on(100), True, unidentified=True)
    assert result.rule == OrderRule.DRUG_UNIDENTIFIED
    assert check_anti_cd20_order(record([]), (), IWWM6, on(100), False, unidentified=True) is None
