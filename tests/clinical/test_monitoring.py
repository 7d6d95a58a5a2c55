"""§6 monitoring reminder."""

from __future__ import annotations

import pytest

from cds_service.clinical.criteria import IWWM6
from cds_service.clinical.monitoring import monitoring_due
from cds_service.clinical.therapy import current_line, lines_of_therapy

from .helpers import episode, lab, on


def line_of(*episodes, today):
    return current_line(lines_of_therapy(list(episodes), IWWM6), today)


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


def test_the_two_years_are_calendar_years_of_the_line():
    line = line_of(episode("ibrutinib", 0), today=on(800))
    two_years = on(0).replace(year=on(0).year + 2)
    just_before = monitoring_due(
        line, [lab(0, 1)], IWWM6, two_years.fromordinal(two_years.toordinal() - 1)
    )
    assert just_before.interval_days == 92
    at = monitoring_due(line, [lab(0, 1)], IWWM6, two_years)
    assert at.interval_days == 183


def test_no_result_since_the_line_started_counts_from_the_start():
    line = line_of(episode("ibrutinib", 0), today=on(100))
    result = monitoring_due(line, [lab(-5, 3000)], IWWM6, on(100))
    assert result.days_since == 100
    assert result.last_result_day == on(-5)


def test_no_reminder_off_therapy_or_without_a_line():
    finished = line_of(episode("bendamustine", 0, 150), today=on(400))
    assert monitoring_due(finished, [lab(0, 1)], IWWM6, on(400)) is None
    assert monitoring_due(None, [lab(0, 1)], IWWM6, on(400)) is None


def test_on_hold_is_still_on_therapy():
    line = line_of(episode("ibrutinib", 0, 200, on_hold=True), today=on(400))
    assert monitoring_due(line, [lab(0, 1)], IWWM6, on(400)) is not None


def test_m_spike_counts_as_a_measurement():
    from cds_service.clinical.models import Series

    line = line_of(episode("ibrutinib", 0), today=on(300))
    assert monitoring_due(line, [lab(250, 900, Series.M_SPIKE)], IWWM6, on(300)) is None
