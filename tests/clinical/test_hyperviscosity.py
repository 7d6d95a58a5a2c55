"""clinical-rules.md §7: hyperviscosity reference values, the caveat and the warning card."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cds_service.clinical.assessment import assess_response
from cds_service.clinical.criteria import IWWM6
from cds_service.clinical.models import (
    Caveat,
    LabResult,
    Plasmapheresis,
    Series,
    ViscosityResult,
)

from .helpers import episode, lab, m_spike, on, record

ZANUBRUTINIB = [episode("zanubrutinib", 0)]
UTC = UTC


def assess(rec, today):
    return assess_response(rec, IWWM6, on(today))


@pytest.mark.parametrize("age, raised", [(91, True), (92, True), (93, False)])
def test_the_reference_value_is_at_most_92_days_old(age, raised):
    # v1 warned on a three-year-old value.
    result = assess(record([lab(-5, 5000), lab(100, 4500)], ZANUBRUTINIB), today=100 + age)
    assert (Caveat.HYPERVISCOSITY_RISK in result.caveats) is raised
    if not raised:
        assert result.old_high_igm is not None and result.old_high_igm.day == on(100)


@pytest.mark.parametrize("value, raised", [(3999, False), (4000, True)])
def test_total_igm_threshold_4000(value, raised):
    result = assess(record([lab(-5, 5000), lab(100, value)], ZANUBRUTINIB), today=103)
    assert (Caveat.HYPERVISCOSITY_RISK in result.caveats) is raised


@pytest.mark.parametrize("grams, raised", [("2.99", False), ("3.0", True)])
def test_m_spike_threshold_3000(grams, raised):
    # v1 missed a high M-spike.
    result = assess(record([m_spike(-5, "6.0"), m_spike(100, grams)], ZANUBRUTINIB), today=103)
    assert (Caveat.HYPERVISCOSITY_RISK in result.caveats) is raised
    if raised:
        assert result.hyperviscosity.reference_value.series == Series.M_SPIKE


def test_an_upper_bound_never_counts_so_an_older_value_is_the_reference():
    labs = [lab(-5, 5000), lab(60, 4500), lab(100, 5000, upper=True)]
    result = assess(record(labs, ZANUBRUTINIB), today=103)
    assert result.hyperviscosity.reference_value.day == on(60)


def test_the_reference_exists_without_a_line_of_therapy():
    result = assess(record([lab(0, 4200)]), today=3)
    assert Caveat.HYPERVISCOSITY_RISK in result.caveats
    assert result.line is None


def test_values_after_an_exchange_do_not_count():
    # v1 missed a high IgM lowered by an exchange the day before rituximab.
    labs = [lab(-10, 6500), lab(-1, 3100)]
    result = assess(record(labs, [episode("rituximab", 0)], plasmaphereses=[-1]), today=2)
    assert result.hyperviscosity.reference_value.value_mg_dl == 6500
    assert result.hyperviscosity.warning_card is True
    assert result.hyperviscosity.recent_plasmapheresis == on(-1)


@pytest.mark.parametrize("drawn_hour, counts", [(7, True), (9, False)])
def test_a_value_drawn_before_the_exchange_on_its_day_counts(drawn_hour, counts):
    day = on(-1)
    drawn = LabResult(
        "Observation/same-day",
        Series.TOTAL_IGM,
        day,
        lab(0, 5200).value_mg_dl,
        drawn_at=datetime(day.year, day.month, day.day, drawn_hour, tzinfo=UTC),
    )
    exchange = Plasmapheresis(
        "Procedure/pp", day, started_at=datetime(day.year, day.month, day.day, 8, tzinfo=UTC)
    )
    rec = record([lab(-30, 4000), drawn])
    rec.plasmaphereses.append(exchange)
    result = assess(rec, today=2)
    reference = result.hyperviscosity.reference_value
    assert (reference.reference == "Observation/same-day") is counts


@pytest.mark.parametrize("value, card", [(5999, False), (6000, True)])
def test_a_warning_card_at_6000(value, card):
    result = assess(record([lab(-200, value), lab(100, value)], ZANUBRUTINIB), today=103)
    assert result.hyperviscosity.warning_card is card


@pytest.mark.parametrize("earlier, card", [(4000, True), (4001, False)])
def test_a_warning_card_when_4000_or_more_rose_25_percent_within_92_days(earlier, card):
    # 5000 >= 1.25 x 4000, not >= 1.25 x 4001
    labs = [lab(-5, 6000), lab(20, earlier), lab(100, 5000)]
    result = assess(record(labs, ZANUBRUTINIB), today=103)
    assert result.hyperviscosity.warning_card is card


@pytest.mark.parametrize("since_start, card", [(112, True), (113, False)])
def test_a_warning_card_within_112_days_of_an_anti_cd20_start(since_start, card):
    labs = [lab(-5, 5000), lab(since_start - 2, 4500)]
    result = assess(record(labs, [episode("rituximab", 0, 0)]), today=since_start)
    assert result.hyperviscosity.warning_card is card


def test_no_caveat_from_an_old_value_but_the_old_high_igm_is_named():
    result = assess(record([lab(0, 4500)]), today=1100)
    assert Caveat.HYPERVISCOSITY_RISK not in result.caveats
    assert result.old_high_igm.value_mg_dl == 4500


def test_a_recent_viscosity_means_no_new_order():
    rec = record([lab(-5, 5000), lab(100, 6500)], ZANUBRUTINIB)
    rec.viscosities.append(ViscosityResult("Observation/v", on(100 - 183), "3.1 cP"))
    assert assess(rec, today=103).hyperviscosity.viscosity_order_due is True
    rec.viscosities.append(ViscosityResult("Observation/v2", on(103 - 183), "3.4 cP"))
    finding = assess(rec, today=103).hyperviscosity
    assert finding.viscosity_order_due is False
    assert finding.latest_viscosity.text == "3.4 cP"
    assert finding.latest_viscosity.day == on(0) - timedelta(days=80)
