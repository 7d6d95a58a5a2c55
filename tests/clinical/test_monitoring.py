"""§6 monitoring reminder."""

from __future__ import annotations

import pytest

from cds_service.clinical.criteria import IWWM6
from cds_service.clinical.models import Series
from cds_service.clinical.monitoring import monitoring_due

from .helpers import episode, history, lab, on


def line_of(*episodes, today):
    return history(*episodes, today=(today - on(0)).days).current_line(today)


@pytest.mark.parametrize("age, due", [(92, False), (93, True)])
def test_every_3_months_in_the_first_2_years(age, due):
    today = on(300)
    line = line_of(episode("ibrutinib", 0), today=today)
    result = monitoring_due(line, [lab(-5, 3000), lab(300 - age, 1000)], IWWM6, today)
    assert (result is not None) is due
    if due:
        assert result.interval_days == 92
        assert result.days_since == age


@pytest.mark.parametrize("age, due", [(183, False), (184, True)])
def test_every_6_months_after_2_years(age, due):
    today = on(1000)
    line = line_of(episode("ibrutinib", 0), today=today)
    result = monitoring_due(line, [lab(1000 - age, 1000)], IWWM6, today)
    assert (result is not None) is due


@pytest.mark.parametrize("line_age, interval", [(729, 92), (730, 92), (731, 183)])
def test_the_first_two_years_are_730_days_of_the_line(line_age, interval):
    line = line_of(episode("ibrutinib", 0), today=on(line_age))
    assert monitoring_due(line, [lab(0, 1)], IWWM6, on(line_age)).interval_days == interval


def test_no_result_since_the_line_started_counts_from_the_start():
    line = line_of(episode("ibrutinib", 0), today=on(100))
    result = monitoring_due(line, [lab(-5, 3000)], IWWM6, on(100))
    assert result.days_since == 100
    assert result.last_result_day == on(-5)


def test_follow_up_continues_after_the_line_ended():
    # §6: "the current line (ongoing or ended: follow-up continues after therapy)".
    finished = line_of(episode("bendamustine", 0, 150), today=on(400))
    assert finished is not None and finished.ended_on(on(400)) == on(150)
    result = monitoring_due(finished, [lab(100, 1)], IWWM6, on(400))
    assert result is not None and result.days_since == 300
    assert monitoring_due(finished, [lab(308, 1)], IWWM6, on(400)) is None  # 92 days


def test_no_reminder_without_a_line():
    assert monitoring_due(None, [lab(0, 1)], IWWM6, on(400)) is None


def test_on_hold_is_still_on_therapy():
    line = line_of(episode("ibrutinib", 0, 200, on_hold=True), today=on(400))
    assert monitoring_due(line, [lab(0, 1)], IWWM6, on(400)) is not None


def test_m_spike_counts_as_a_measurement():
    line = line_of(episode("ibrutinib", 0), today=on(300))
    assert monitoring_due(line, [lab(250, 900, Series.M_SPIKE)], IWWM6, on(300)) is None
