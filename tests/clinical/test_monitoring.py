"""§6 monitoring reminder: the interval by state, from the newest usable result."""

from __future__ import annotations

import pytest

from cds_service.clinical.assessment import assess_response
from cds_service.clinical.criteria import IWWM6
from cds_service.clinical.models import (
    MonitoringReason,
    MonitoringState,
    Series,
    UnusableResult,
)
from cds_service.clinical.monitoring import monitoring_due

from .helpers import episode, lab, m_spike, on, record


def due(labs, episodes, today, unusable=()):
    rec = record(labs, episodes)
    rec.unusable = list(unusable)
    return monitoring_due(assess_response(rec, IWWM6, on(today)), IWWM6, on(today))


@pytest.mark.parametrize("age, is_due", [(92, False), (93, True)])
def test_on_therapy_every_3_months_in_the_first_2_years(age, is_due):
    result = due([lab(-5, 3000), lab(300 - age, 1000)], [episode("ibrutinib", 0)], 300)
    assert (result is not None) is is_due
    if is_due:
        assert (result.state, result.interval_days) == (MonitoringState.ON_THERAPY, 92)
        assert result.days_since == age


@pytest.mark.parametrize("line_age, interval", [(730, 92), (731, 183)])
def test_the_first_two_years_are_730_days_of_the_line(line_age, interval):
    result = due([lab(-5, 3000)], [episode("ibrutinib", 0)], line_age)
    assert result.interval_days == interval


def test_no_result_since_the_line_started_counts_from_the_start():
    result = due([lab(-5, 3000)], [episode("ibrutinib", 0)], 100)
    assert result.days_since == 100
    assert result.last_result_day == on(-5)


@pytest.mark.parametrize("off_days, interval", [(730, 122), (731, 183), (1825, 183), (1826, 365)])
def test_off_therapy_the_interval_relaxes(off_days, interval):
    # E41: bendamustine + rituximab ended; reminders relax to yearly after 5 years.
    today = 150 + off_days
    result = due([lab(-5, 3300), lab(120, 300)], [episode("bendamustine", 0, 150)], today)
    assert (result.state, result.interval_days) == (MonitoringState.OFF_THERAPY, interval)


def test_e41_no_card_274_days_after_the_last_result_when_yearly():
    labs = [lab(-7, 3300), lab(175, 700), lab(4564, 310)]
    line = [episode("bendamustine", 0, 141), episode("rituximab", 0, 141)]
    assert due(labs, line, 4838) is None
    later = due(labs, line, 4930)
    assert later is not None and later.interval_days == 365 and later.days_since == 366


def test_progression_after_the_line_ended_is_watched_every_3_months():
    labs = [lab(-7, 2500), lab(85, 1000), lab(300, 1600), lab(400, 1700)]
    result = due(labs, [episode("venetoclax", 0, 200)], 500)
    assert result.state == MonitoringState.PROGRESSION_OFF_THERAPY
    assert result.interval_days == 92


@pytest.mark.parametrize("latest, interval", [(3999, 183), (4000, 92)])
def test_untreated_every_6_months_or_3_when_igm_is_high(latest, interval):
    result = due([lab(-400, 3900), lab(-300, latest)], [], 0)
    assert (result.state, result.interval_days) == (MonitoringState.UNTREATED, interval)


def test_untreated_every_3_months_after_a_25_percent_rise_over_12_months():
    # E40(a)-like: 3900 -> 5600 within 365 days is +43.5 %
    result = due([lab(0, 2600), lab(364, 3900), lab(651, 3100)], [], 900)
    assert result.interval_days == 183
    result = due([lab(0, 2600), lab(364, 3000), lab(651, 3900)], [], 900)
    assert result.interval_days == 92


def test_on_hold_is_still_on_therapy():
    result = due([lab(-5, 3000)], [episode("ibrutinib", 0, 200, on_hold=True)], 400)
    assert result.state == MonitoringState.ON_THERAPY


def test_m_spike_counts_as_a_measurement():
    assert due([m_spike(-5, "3.0"), m_spike(250, "0.9")], [episode("ibrutinib", 0)], 300) is None


def test_total_igm_due_when_only_m_spikes_came_since_six_months():
    labs = [lab(-5, 4000), lab(90, 1500), m_spike(-5, "3.0"), m_spike(270, "1.0")]
    result = due(labs, [episode("ibrutinib", 0)], 280)
    assert result.reason == MonitoringReason.TOTAL_IGM_DUE
    assert result.last_result_day == on(90)
    # Only while a line is ongoing: off therapy the plain interval decides.
    assert due(labs, [episode("ibrutinib", 0, 100)], 280) is None


def test_unusable_results_never_reset_the_interval_and_are_counted():
    unusable = [
        UnusableResult("Observation/x", Series.TOTAL_IGM, on(182), "no value"),
        UnusableResult("Observation/y", Series.TOTAL_IGM, on(20), "no value"),
    ]
    result = due([lab(-7, 3600), lab(84, 2100)], [episode("ibrutinib", 0)], 185, unusable)
    assert result.days_since == 101
    assert (result.unusable_count, result.unusable_since) == (1, on(84))
    assert result.unusable_reason == "no value"
