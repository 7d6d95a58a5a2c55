"""Courses, holds and lines of therapy (clinical-rules.md §3, "Treatment")."""

from __future__ import annotations

import pytest

from cds_service.clinical.criteria import IWWM6
from cds_service.clinical.models import Hold
from cds_service.clinical.therapy import build_courses, current_line, lines_of_therapy

from .helpers import episode, on


@pytest.mark.parametrize("gap, one_course", [(90, True), (91, False)])
def test_gap_of_up_to_90_days_is_one_course_with_a_hold(gap, one_course):
    courses = build_courses([episode("ibrutinib", 0, 100), episode("ibrutinib", 100 + gap)], IWWM6)
    if one_course:
        (course,) = courses
        assert course.holds == (Hold(start=on(100), resumed=on(100 + gap)),)
        assert course.start == on(0)
        assert not course.ended
    else:
        assert len(courses) == 2
        assert all(not c.holds for c in courses)


def test_contiguous_and_overlapping_episodes_are_no_hold():
    courses = build_courses(
        [
            episode("ibrutinib", 0, 30),
            episode("ibrutinib", 31, 60),
            episode("ibrutinib", 50, 120),
        ],
        IWWM6,
    )
    (course,) = courses
    assert course.holds == ()
    assert course.end == on(120)
    assert course.ended


def test_refills_without_end_dates_never_invent_a_hold():
    # Monthly orders carrying only a start, the last one active.
    episodes = [episode("ibrutinib", day, ended=True) for day in (0, 30, 60, 90)]
    episodes.append(episode("ibrutinib", 120))
    (course,) = build_courses(episodes, IWWM6)
    assert course.holds == ()
    assert course.ongoing_on(on(150))


def test_on_hold_statement_holds_from_its_end():
    (course,) = build_courses([episode("zanubrutinib", 0, 200, on_hold=True)], IWWM6)
    assert course.on_hold
    assert course.holds == (Hold(start=on(200), resumed=None),)
    assert not course.ongoing_on(on(250))


def test_on_hold_then_resumed():
    courses = build_courses(
        [episode("zanubrutinib", 0, 200, on_hold=True), episode("zanubrutinib", 220)], IWWM6
    )
    (course,) = courses
    assert not course.on_hold
    assert course.holds == (Hold(start=on(200), resumed=on(220)),)


@pytest.mark.parametrize("offset, same_line", [(30, True), (31, False)])
def test_line_groups_starts_within_30_days(offset, same_line):
    lines = lines_of_therapy(
        [episode("bendamustine", 0, 150), episode("rituximab", offset, 150)], IWWM6
    )
    assert len(lines) == (1 if same_line else 2)
    assert lines[0].start == on(0)


def test_line_grouping_counts_from_the_lines_first_start():
    # 0, 25 and 50: 50 is 25 days after the second start but 50 after the first.
    lines = lines_of_therapy(
        [episode("bendamustine", 0), episode("rituximab", 25), episode("dexamethasone", 50)], IWWM6
    )
    assert [line.regimen for line in lines] == [("bendamustine", "rituximab"), ("dexamethasone",)]


def test_current_line_is_latest_started_whether_or_not_ended():
    lines = lines_of_therapy(
        [
            episode("bendamustine", -400, -250),
            episode("rituximab", -400, -250),
            episode("ibrutinib", 0, 100),
        ],
        IWWM6,
    )
    assert current_line(lines, on(300)).regimen == ("ibrutinib",)
    assert current_line(lines, on(-1)).regimen == ("bendamustine", "rituximab")
    assert current_line(lines, on(-401)) is None


def test_retreatment_after_more_than_90_days_is_a_new_line():
    lines = lines_of_therapy([episode("rituximab", 0, 120), episode("rituximab", 400, 520)], IWWM6)
    assert [line.start for line in lines] == [on(0), on(400)]
