"""Courses, holds and lines of therapy (clinical-rules.md §3.3-3.5), from both sides of each
window edge."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.clinical.courses import build_courses
from cds_service.clinical.criteria import IWWM6
from cds_service.clinical.models import EpisodeSource, Hold

from .helpers import episode, history, on, order


def administration(ingredient, day):
    return episode(ingredient, day, day, source=EpisodeSource.ADMINISTRATION)


# §3.4 courses ---------------------------------------------------------------------------


@pytest.mark.parametrize("gap, one_course", [(89, True), (90, True), (91, False)])
def test_an_episode_up_to_90_days_after_the_previous_end_continues_the_course(gap, one_course):
    courses = build_courses([episode("ibrutinib", 0, 100), episode("ibrutinib", 100 + gap)], IWWM6)
    assert len(courses) == (1 if one_course else 2)
    if one_course:
        assert courses[0].holds == (Hold(start=on(101), resumed=on(100 + gap)),)
    else:
        assert all(not c.holds for c in courses)


@pytest.mark.parametrize("next_start, holds", [(101, ()), (102, ((101, 102),))])
def test_a_hold_is_at_least_one_whole_day_without_the_drug(next_start, holds):
    (course,) = build_courses(
        [episode("ibrutinib", 0, 100), episode("ibrutinib", next_start)], IWWM6
    )
    assert course.holds == tuple(Hold(on(a), on(b)) for a, b in holds)


@pytest.mark.parametrize(
    "first, second",
    [
        (EpisodeSource.REQUEST, EpisodeSource.REQUEST),
        (EpisodeSource.STATEMENT, EpisodeSource.REQUEST),
        (EpisodeSource.REQUEST, EpisodeSource.STATEMENT),
        (EpisodeSource.STATEMENT, EpisodeSource.ADMINISTRATION),
    ],
)
def test_a_gap_is_a_hold_only_between_two_statements_or_two_administrations(first, second):
    # v1 made an 18-day gap between monthly orders a hold that hid progression.
    (course,) = build_courses(
        [episode("ibrutinib", 0, 100, source=first), episode("ibrutinib", 118, source=second)],
        IWWM6,
    )
    assert course.holds == ()


def test_gaps_between_two_administrations_are_holds():
    (course,) = build_courses(
        [administration("rituximab", 0), administration("rituximab", 28)], IWWM6
    )
    assert course.holds == (Hold(on(1), on(28)),)
    assert course.end == on(28)


def test_on_hold_statement_holds_from_its_end_and_is_ongoing():
    (course,) = build_courses([episode("zanubrutinib", 0, 200, on_hold=True)], IWWM6)
    assert course.on_hold
    # §3.4: effectivePeriod.end is the last day taken; the hold starts the day after.
    assert course.holds == (Hold(start=on(201), resumed=None),)
    assert course.ongoing_on(on(250))  # §3.5: a course on hold is ongoing


def test_on_hold_then_resumed():
    (course,) = build_courses(
        [episode("zanubrutinib", 0, 200, on_hold=True), episode("zanubrutinib", 220)], IWWM6
    )
    assert not course.on_hold
    assert course.holds == (Hold(start=on(201), resumed=on(220)),)


# §3.3 records that depend on today or on other records -----------------------------------


@pytest.mark.parametrize("today, ongoing", [(189, True), (190, True), (191, False)])
def test_an_active_order_nobody_renewed_ends_90_days_after_it_ran_out(today, ongoing):
    treatment = history(order("ibrutinib", 0, runs_to=100), today=today)
    (line,) = treatment.lines
    assert line.ongoing_on(on(today)) is ongoing
    if not ongoing:
        assert line.ended_on(on(today)) == on(100)


def test_an_order_on_hold_before_any_dose_is_left_out():
    treatment = history(order("ibrutinib", 0, on_hold=True))
    assert treatment.lines == []
    reasons = [e.reason for e in treatment.excluded]
    assert reasons == ["on hold before any dose: not treatment taken"]


def test_an_order_on_hold_after_earlier_doses_is_a_hold():
    treatment = history(order("ibrutinib", 0, 100), order("ibrutinib", 101, on_hold=True))
    (line,) = treatment.lines
    (course,) = line.courses
    assert course.on_hold and treatment.excluded == []


@pytest.mark.parametrize("gap, continues", [(90, True), (91, False)])
def test_a_refill_written_ahead_continues_its_course(gap, continues):
    treatment = history(order("ibrutinib", 0, 100), order("ibrutinib", 100 + gap), today=150)
    (line,) = treatment.lines
    assert len(line.courses[0].references) == (2 if continues else 1)
    assert bool(treatment.excluded) is not continues


def test_a_drug_starting_after_today_is_in_no_line():
    treatment = history(episode("ibrutinib", 0), episode("rituximab", 200), today=150)
    assert [line.regimen for line in treatment.lines] == [("ibrutinib",)]
    assert "planned, in no line yet" in treatment.excluded[0].reason


# §3.5 lines -------------------------------------------------------------------------------


@pytest.mark.parametrize("offset, joins", [(29, True), (30, True), (31, False)])
def test_a_course_starting_within_30_days_of_the_line_joins_it(offset, joins):
    treatment = history(episode("bendamustine", 0, 20), episode("bortezomib", offset, 150))
    regimens = [line.regimen for line in treatment.lines]
    if joins:
        assert regimens == [("bendamustine", "bortezomib")]
    else:  # bendamustine ended before: a new line
        assert regimens == [("bendamustine",), ("bortezomib",)]


@pytest.mark.parametrize("offset, joins", [(89, True), (90, True), (91, False)])
def test_rituximab_deferred_up_to_90_days_joins_its_regimen(offset, joins):
    # EMN-BDR: rituximab left out of the first cycle to avoid a flare.
    treatment = history(episode("bortezomib", 0, 60), episode("rituximab", offset, 150))
    assert (len(treatment.lines) == 1) is joins


def test_deferred_rituximab_after_a_rise_is_no_part_of_the_plan():
    treatment = history(episode("bortezomib", 0, 60), episode("rituximab", 45, 150), rise=True)
    assert [line.start for line in treatment.lines] == [on(0), on(45)]


def test_rituximab_added_to_running_ibrutinib_is_an_add_on_line():
    # E12: v1 made this a line of rituximab alone, dropping the BTK inhibitor.
    treatment = history(episode("ibrutinib", 0), episode("rituximab", 60, 81))
    first, add_on = treatment.lines
    assert add_on.start == on(60)
    assert add_on.regimen == ("ibrutinib", "rituximab")
    assert add_on.continues is first


@pytest.mark.parametrize("after_end, recourse", [(179, True), (180, True), (181, False)])
def test_the_same_drug_within_180_days_of_the_line_ending_is_a_re_course(after_end, recourse):
    # Rituximab maintenance after BR: the baseline does not move.
    treatment = history(
        episode("bendamustine", 0, 150),
        episode("rituximab", 0, 150),
        episode("rituximab", 150 + after_end, 150 + after_end),
    )
    if recourse:
        (line,) = treatment.lines
        assert len(line.recourses) == 1 and line.recourses[0].start == on(150 + after_end)
    else:
        assert [line.regimen for line in treatment.lines] == [
            ("bendamustine", "rituximab"),
            ("rituximab",),
        ]


def test_the_same_drug_after_confirmed_progression_is_a_new_line():
    treatment = history(episode("rituximab", 0, 150), episode("rituximab", 300, 300), pd=True)
    assert len(treatment.lines) == 2


def test_a_switch_within_the_btki_class_keeps_the_line():
    # §3.5 rule 3 (E32): ibrutinib stopped for atrial fibrillation, zanubrutinib 12 days later.
    treatment = history(episode("ibrutinib", 0, 1146), episode("zanubrutinib", 1158), today=1900)
    (line,) = treatment.lines
    assert line.start == on(0) and line.regimen == ("zanubrutinib",)
    assert [(c.ingredient, day) for c, day in line.switched] == [("ibrutinib", on(1158))]
    (zanubrutinib,) = [c for c in line.courses if c.ingredient == "zanubrutinib"]
    # the whole days without a BTKi are a hold, resumed at the new drug's start
    assert zanubrutinib.holds == (Hold(start=on(1147), resumed=on(1158)),)


@pytest.mark.parametrize(
    "start_after_end, switch", [(-31, False), (-30, True), (60, True), (61, False)]
)
def test_a_switch_starts_at_most_60_days_after_or_30_days_before_the_end(start_after_end, switch):
    start = 500 + start_after_end
    treatment = history(episode("ibrutinib", 0, 500), episode("acalabrutinib", start), today=900)
    assert (len(treatment.lines) == 1) is switch


def test_after_confirmed_progression_a_switch_is_retreatment():
    treatment = history(episode("ibrutinib", 0, 500), episode("zanubrutinib", 520), pd=True)
    assert [line.regimen for line in treatment.lines] == [("ibrutinib",), ("zanubrutinib",)]
    assert treatment.lines[1].switched == ()


@pytest.mark.parametrize("ends_after, carried", [(60, False), (61, True)])
def test_courses_ending_within_60_days_of_the_add_on_are_a_bridge(ends_after, carried):
    treatment = history(episode("bendamustine", 0, 60 + ends_after), episode("bortezomib", 60, 300))
    regimen = treatment.lines[-1].regimen
    assert regimen == (("bendamustine", "bortezomib") if carried else ("bortezomib",))


@pytest.mark.parametrize("offset, joins", [(30, True), (31, False)])
def test_a_steroid_joins_the_line_whose_first_30_days_hold_its_start(offset, joins):
    treatment = history(episode("zanubrutinib", 0), episode("dexamethasone", offset, offset + 4))
    (line,) = treatment.lines  # a partner never makes a line
    assert ("dexamethasone" in line.regimen) is joins
    reasons = [e.reason for e in treatment.excluded]
    outside = "dexamethasone outside a WM regimen: not a line of therapy"
    assert reasons == ([] if joins else [outside])


def test_a_steroid_alone_is_no_line():
    treatment = history(episode("prednisone", 0, 30))
    assert treatment.lines == [] and len(treatment.excluded) == 1


def test_current_line_is_the_latest_started_whether_or_not_ended():
    treatment = history(
        episode("bendamustine", -400, -250),
        episode("rituximab", -400, -250),
        episode("ibrutinib", 0, 100),
    )
    assert treatment.current_line(on(300)).regimen == ("ibrutinib",)
    assert treatment.current_line(on(-1)).regimen == ("bendamustine", "rituximab")
    assert treatment.current_line(on(-401)) is None


# Invariants -----------------------------------------------------------------------------

DRUGS = ["ibrutinib", "zanubrutinib", "rituximab", "bendamustine", "bortezomib"]
episodes_strategy = st.lists(
    st.tuples(
        st.sampled_from(DRUGS),
        st.integers(-400, 600),
        st.one_of(st.none(), st.integers(0, 300)),
    ),
    min_size=1,
    max_size=6,
)


def _episodes(raw):
    return [
        episode(name, start, None if length is None else start + length, ref=f"M/{i}")
        for i, (name, start, length) in enumerate(raw)
    ]


def _shape(treatment):
    return [
        (line.start, line.regimen, tuple(c.start for c in line.recourses))
        for line in treatment.lines
    ]


@settings(max_examples=150, deadline=None)
@given(episodes_strategy, st.integers(-400, 600), st.integers(0, 40), st.randoms())
def test_a_steroid_anywhere_never_changes_the_non_steroid_lines(raw, start, length, rnd):
    episodes = _episodes(raw)
    without = history(*episodes)
    with_steroid = history(*episodes, episode("dexamethasone", start, start + length))
    strip = [
        (start_, tuple(d for d in regimen if d != "dexamethasone"), recourses)
        for start_, regimen, recourses in _shape(with_steroid)
    ]
    assert strip == _shape(without)


@settings(max_examples=150, deadline=None)
@given(episodes_strategy, st.randoms())
def test_the_order_of_records_never_matters(raw, rnd):
    episodes = _episodes(raw)
    shuffled = list(episodes)
    rnd.shuffle(shuffled)
    assert _shape(history(*episodes)) == _shape(history(*shuffled))


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(DRUGS), st.integers(-300, 300), st.integers(2, 400), st.integers(1, 5))
def test_splitting_one_episode_into_contiguous_records_changes_nothing(drug, start, length, parts):
    end = start + length
    whole = history(episode(drug, start, end))
    cuts = sorted({start + length * i // parts for i in range(parts)} | {end + 1})
    pieces = [episode(drug, a, b - 1, ref=f"M/{i}") for i, (a, b) in enumerate(pairwise(cuts))]
    split = history(*pieces)
    assert _shape(split) == _shape(whole)
    (course,) = split.lines[0].courses
    assert course.holds == () and course.end == on(end)
    assert course.start == on(start) and course.start + timedelta(days=length) == course.end
