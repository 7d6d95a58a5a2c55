"""clinical-rules.md §4.5-4.6: rises, confirmed and possible progression, suppression windows.

Expected values follow the rules' own numbers (1.25 x nadir, ULN, 500 mg/dL), each edge from
both sides.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.clinical.assessment import assess_response
from cds_service.clinical.criteria import IWWM6, IWWM6_STRICT
from cds_service.clinical.models import Category, Caveat, Series

from .helpers import episode, igm_series, lab, m_spike, on, record

ZANUBRUTINIB = [episode("zanubrutinib", 0)]


def assess(rec, today_offset=None, profile=IWWM6_STRICT):
    if today_offset is None:
        today = max(r.day for r in rec.lab_results) + timedelta(days=3)
    else:
        today = on(today_offset)
    return assess_response(rec, profile, today)


# rises ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, rise", [(1249, False), (1250, True)])
def test_a_rise_is_at_least_1_25_times_the_nadir(value, rise):
    result = assess(record(igm_series((-5, 5000), (90, 1000), (180, value)), ZANUBRUTINIB))
    assert (Caveat.UNCONFIRMED_PROGRESSION in result.caveats) is rise


@pytest.mark.parametrize("value, rise", [(230, False), (231, True)])
def test_a_total_igm_rise_must_leave_the_normal_range(value, rise):
    # v1 called "<25 -> 40 -> 60 mg/dL" a progression.
    # More than 183 days apart: a twentyfold fall is not held back as implausible (§3.1).
    labs = [lab(-5, 2000), lab(200, 100), lab(290, value)]
    result = assess(record(labs, ZANUBRUTINIB))
    assert (Caveat.UNCONFIRMED_PROGRESSION in result.caveats) is rise


def test_the_normal_range_is_the_results_own_uln():
    labs = [lab(-5, 2000), lab(90, 100, uln=150), lab(180, 200, uln=150)]
    result = assess(record(labs, ZANUBRUTINIB))
    assert Caveat.UNCONFIRMED_PROGRESSION in result.caveats


@pytest.mark.parametrize("grams, rise", [("0.49", False), ("0.5", True)])
def test_an_m_spike_rise_must_reach_500_mg_dl(grams, rise):
    labs = [m_spike(-5, "3.0"), m_spike(200, "0.2"), m_spike(290, grams)]
    result = assess(record(labs, ZANUBRUTINIB))
    assert result.series == Series.M_SPIKE
    assert (Caveat.UNCONFIRMED_PROGRESSION in result.caveats) is rise


@pytest.mark.parametrize("value, rise", [(1499, False), (1500, True)])
def test_the_default_profile_also_needs_500_mg_dl_above_the_nadir(value, rise):
    result = assess(
        record(igm_series((-5, 5000), (90, 1000), (180, value)), ZANUBRUTINIB),
        profile=IWWM6,
    )
    assert (Caveat.UNCONFIRMED_PROGRESSION in result.caveats) is rise


def test_an_upper_bound_is_a_nadir_candidate_and_never_a_rise():
    labs = [lab(-5, 2000), lab(90, 300, upper=True), lab(180, 380), lab(270, 400)]
    result = assess(record(labs, ZANUBRUTINIB))
    assert result.category == Category.PD  # 380 and 400 >= 1.25 x 300, above the ULN
    labs = [lab(-5, 2000), lab(90, 300), lab(180, 5000, upper=True)]
    assert Caveat.UNCONFIRMED_PROGRESSION not in assess(record(labs, ZANUBRUTINIB)).caveats


def test_a_lower_bound_is_a_rise_candidate_at_its_bound_and_never_a_nadir():
    labs = [lab(-5, 6000), lab(90, 1000), lab(180, 1300, lower=True), lab(270, 1400)]
    result = assess(record(labs, ZANUBRUTINIB))
    assert result.category == Category.PD
    assert result.nadir.value_mg_dl == 1000


# after CR -------------------------------------------------------------------------------------


def _after_cr(value, ifes, extra=()):
    labs = [lab(-4, 2500), lab(300, 25, upper=True), lab(390, value), *extra]
    episodes = [episode("bendamustine", 0, 150), episode("rituximab", 0, 150)]
    return assess(record(labs, episodes, ifes=ifes))


@pytest.mark.parametrize("value, discounted", [(460, True), (461, False)])
def test_after_cr_a_value_up_to_twice_the_uln_needs_the_protein_back(value, discounted):
    result = _after_cr(value, ifes=[(300, True)])
    assert Caveat.UNCONFIRMED_PROGRESSION in result.caveats
    assert result.rise_after_cr is discounted


def test_after_cr_a_positive_ife_after_the_negative_one_makes_it_a_rise():
    result = _after_cr(400, ifes=[(300, True), (392, False)])
    assert result.rise_after_cr is False
    assert Caveat.UNCONFIRMED_PROGRESSION in result.caveats


def test_after_cr_an_m_spike_above_zero_makes_it_a_rise():
    result = _after_cr(400, ifes=[(300, True)], extra=[m_spike(392, "0.1")])
    assert result.rise_after_cr is False


# confirmation ------------------------------------------------------------------------------


def test_two_rises_confirm_and_the_card_names_the_second():
    labs = igm_series((-5, 5000), (90, 1000), (180, 1300), (270, 1400))
    result = assess(record(labs, ZANUBRUTINIB))
    assert result.category == Category.PD
    assert result.progression_confirmed == on(270)
    assert result.nadir.day == on(90)


def test_pd_confirmed_earlier_in_the_line_stands_after_a_fall():
    labs = igm_series((-5, 5000), (90, 1000), (180, 1300), (270, 1400), (360, 1240))
    result = assess(record(labs, ZANUBRUTINIB))
    assert result.category == Category.PD
    assert result.progression_confirmed == on(270)
    assert Caveat.PD_THEN_FALL in result.caveats  # 1240 < 1250 is no longer a rise


def test_pd_then_fall_only_when_the_latest_is_no_longer_a_rise():
    labs = igm_series((-5, 5000), (90, 1000), (180, 1300), (270, 1400), (360, 1250))
    assert Caveat.PD_THEN_FALL not in assess(record(labs, ZANUBRUTINIB)).caveats


@pytest.mark.parametrize("second, small", [(1499, True), (1500, False)])
def test_small_absolute_rise_under_500_mg_dl(second, small):
    labs = igm_series((-5, 5000), (90, 1000), (180, 1500), (270, second))
    result = assess(record(labs, ZANUBRUTINIB))
    assert result.category == Category.PD
    assert (Caveat.SMALL_ABSOLUTE_RISE in result.caveats) is small


def test_a_same_day_duplicate_never_confirms():
    labs = [lab(-7, 2000), lab(90, 900), lab(180, 1200, ref="A"), lab(180, 1250, ref="B")]
    result = assess(record(labs, ZANUBRUTINIB))
    assert result.category != Category.PD
    assert Caveat.UNCONFIRMED_PROGRESSION in result.caveats


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(200, 8000), min_size=1, max_size=6),
    st.integers(1, 5),
    st.integers(0, 3),
)
def test_same_day_repeats_never_turn_a_series_into_progression(values, repeats, pick):
    # Repeating any one day's draw, at any same-day values, never confirms what one draw
    # did not: the day is one measurement.
    days = [-5, *(90 * (i + 1) for i in range(len(values) - 1))]
    labs = [
        lab(day, value, ref=f"O/{i}")
        for i, (day, value) in enumerate(zip(days, values, strict=True))
    ]
    before = assess(record(labs, ZANUBRUTINIB))
    target = labs[pick % len(labs)]
    copies = [
        lab((target.day - on(0)).days, target.value_mg_dl + k, ref=f"R/{k}")
        for k in range(1, repeats + 1)
    ]
    after = assess(record([*labs, *copies], ZANUBRUTINIB))
    if before.category != Category.PD:
        assert after.category != Category.PD


# windows -------------------------------------------------------------------------------------


def test_re_courses_open_no_flare_window():
    # Maintenance rituximab: back-to-back windows would hide progression.
    episodes = [
        episode("bendamustine", 0, 150),
        episode("rituximab", 0, 150),
        episode("rituximab", 250, 250),
    ]
    labs = igm_series((-5, 5000), (200, 1000), (260, 1300), (300, 1400))
    result = assess(record(labs, episodes))
    assert result.line.recourses  # the day-250 course is a re-course
    assert result.category == Category.PD


def test_deferred_rituximab_opens_its_flare_window():
    episodes = [episode("bortezomib", 0), episode("rituximab", 60, 60)]
    labs = igm_series((-5, 5000), (50, 1000), (100, 1300), (150, 1400))
    result = assess(record(labs, episodes))
    assert result.line.regimen == ("bortezomib", "rituximab")
    # 1300 and 1400 lie in days 60-172: no progression; still 72 % below the baseline, so
    # the reduction category stands (§4.7's NE is for a rise over the baseline).
    assert result.category == Category.PR
    assert Caveat.ANTI_CD20_FLARE in result.caveats  # the window suppressed a rise
    assert Caveat.UNCONFIRMED_PROGRESSION not in result.caveats


@pytest.mark.parametrize("day, suppressed", [(257, True), (258, True), (259, False)])
def test_the_hold_window_ends_28_days_after_the_btki_resumed(day, suppressed):
    # Held from day 201, resumed on day 230: the window runs to day 258.
    episodes = [episode("ibrutinib", 0, 200), episode("ibrutinib", 230)]
    labs = igm_series((-5, 4000), (150, 1000), (day, 1400))
    result = assess(record(labs, episodes))
    assert (Caveat.UNCONFIRMED_PROGRESSION not in result.caveats) is suppressed
    assert Caveat.BTKI_INTERRUPTION in result.caveats


@pytest.mark.parametrize("days_on_hold, suppressed", [(90, True), (91, False)])
def test_an_open_hold_suppresses_for_at_most_90_days(days_on_hold, suppressed):
    episodes = [episode("ibrutinib", 0, 200, on_hold=True)]  # held from day 201
    labs = igm_series((-5, 4000), (150, 1000), (201 + days_on_hold, 1600))
    result = assess(record(labs, episodes))
    assert (Caveat.UNCONFIRMED_PROGRESSION not in result.caveats) is suppressed
    assert Caveat.BTKI_INTERRUPTION in result.caveats


def test_a_btki_stopped_for_good_opens_no_window():
    labs = igm_series((-5, 4000), (150, 1000), (210, 1600), (240, 1700))
    result = assess(record(labs, [episode("ibrutinib", 0, 200)]))
    assert result.category == Category.PD
    assert result.line_ended == on(200)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(100, 8000), min_size=2, max_size=6),
    st.sampled_from(["zanubrutinib", "bendamustine", "bortezomib", "rituximab"]),
    st.integers(-60, 500),
    st.integers(0, 30),
    st.sampled_from(["dexamethasone", "prednisone", "prednisolone"]),
)
def test_a_partner_steroid_anywhere_never_changes_the_category(
    values, drug, start, length, steroid
):
    days = [-5, *(60 * (i + 1) for i in range(len(values) - 1))]
    labs = [
        lab(day, value, ref=f"O/{i}")
        for i, (day, value) in enumerate(zip(days, values, strict=True))
    ]
    episodes = [episode(drug, 0)]
    without = assess(record(labs, episodes))
    with_steroid = assess(record(labs, [*episodes, episode(steroid, start, start + length)]))
    assert with_steroid.category == without.category
    assert with_steroid.percent_change == without.percent_change
    assert set(with_steroid.caveats) == set(without.caveats)
