"""clinical-rules.md §4-5, rule by rule, on internal models (no FHIR, no HTTP).

Each threshold is tested from both sides. Expected values come from the rules' own
numbers, not from the implementation's arithmetic.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

import pytest

from cds_service.clinical.assessment import assess_response
from cds_service.clinical.change import displayed_percent
from cds_service.clinical.criteria import IWWM6, IWWM6_STRICT
from cds_service.clinical.models import (
    Category,
    Caveat,
    IfeReading,
    LineStatus,
    Progression,
    Series,
    SuppressedRise,
    WindowKind,
)

from .helpers import episode, igm_series, lab, m_spike, on, record


def assess(rec, today_offset=None, profile=IWWM6_STRICT):
    if today_offset is None:
        days = [r.day for r in rec.lab_results] or [on(0)]
        today = max(days) + timedelta(days=3)
    else:
        today = on(today_offset)
    return assess_response(rec, profile, today)


IBRUTINIB = [episode("ibrutinib", 0)]


# §4.4 change and display -------------------------------------------------------------


@pytest.mark.parametrize(
    "change, shown",
    [
        (Fraction(-24975, 1000), Decimal("-24.9")),
        (Fraction(-25), Decimal("-25.0")),
        (Fraction(-56234, 1000), Decimal("-56.2")),
        (Fraction(-8999, 100), Decimal("-89.9")),
        (Fraction(33333, 1000), Decimal("33.3")),
        (Fraction(-1, 30), Decimal("0.0")),
    ],
)
def test_display_truncates_toward_zero(change, shown):
    assert displayed_percent(change) == shown


@pytest.mark.parametrize(
    "latest, category",
    [
        (300, Category.VGPR),  # exactly 90 %
        (301, Category.PR),  # 89.97 %
        (1500, Category.PR),  # exactly 50 %
        (1501, Category.MR),  # 49.97 %
        (2250, Category.MR),  # exactly 25 %
        (2251, Category.SD),  # 24.97 %
        (3000, Category.SD),
        (3700, Category.SD),  # a rise, but unconfirmed
    ],
)
def test_reduction_thresholds_from_both_sides(latest, category):
    # Day 200: more than 183 days after the baseline, so a tenfold fall is not held back
    # as an implausible change (§3.1; tested on its own).
    result = assess(record(igm_series((-10, 3000), (200, latest)), IBRUTINIB))
    assert result.category == category


def test_thresholds_compare_unrounded_values():
    # 24.975 % would round to 25.0 %; it is SD and shows as -24.9 %.
    result = assess(record(igm_series((-10, 4000), (90, 3001)), IBRUTINIB))
    assert result.percent_change == Fraction(-999, 40)
    assert result.category == Category.SD
    assert displayed_percent(result.percent_change) == Decimal("-24.9")


# §4.2 baseline ----------------------------------------------------------------------------


@pytest.mark.parametrize("age, has_baseline", [(0, True), (90, True), (91, False)])
def test_baseline_window_is_90_days(age, has_baseline):
    result = assess(record(igm_series((-age, 3000), (100, 1000)), IBRUTINIB))
    if has_baseline:
        assert result.baseline.day == on(-age)
        assert result.category == Category.PR
    else:
        assert result.category == Category.NE
        assert Caveat.NO_BASELINE in result.caveats


def test_baseline_is_the_last_value_before_start():
    result = assess(record(igm_series((-60, 4000), (-5, 3000), (100, 1400)), IBRUTINIB))
    assert result.baseline.value_mg_dl == 3000
    assert result.category == Category.PR


def test_a_bound_is_never_a_baseline():
    labs = [lab(-30, 3000), lab(-5, 25, upper=True), lab(100, 1400)]
    result = assess(record(labs, IBRUTINIB))
    assert result.baseline.day == on(-30)


def test_a_value_after_start_is_no_baseline_e9():
    result = assess(record(igm_series((30, 2100), (120, 1500)), IBRUTINIB))
    assert result.category == Category.NE
    assert result.caveats == (Caveat.BTKI_DISCORDANCE, Caveat.NO_BASELINE)
    assert result.percent_change is None
    assert "90 days" in result.reason


def test_only_a_baseline_is_not_evaluable_yet():
    result = assess(record(igm_series((-5, 3000)), IBRUTINIB), today_offset=10)
    assert result.category == Category.NE
    assert result.reason == "no on-treatment result yet"
    assert Caveat.NO_BASELINE not in result.caveats


def test_no_results_at_all_on_treatment():
    result = assess(record([], IBRUTINIB), today_offset=10)
    assert result.category == Category.NE
    assert Caveat.NO_BASELINE in result.caveats
    assert result.reason == "no IgM or M-spike results"


def test_no_treatment_reports_the_trend_without_category():
    result = assess(record(igm_series((0, 3000), (100, 2000))))
    assert result.category == Category.NE
    assert result.reason == "no WM treatment found"
    assert result.latest.value_mg_dl == 2000
    assert result.line is None


# §4.2/4.3 plasmapheresis -------------------------------------------------------------------


@pytest.mark.parametrize("gap, skipped", [(0, True), (42, True), (43, False)])
def test_values_within_42_days_after_plasmapheresis_are_no_baseline(gap, skipped):
    rec = record(
        igm_series((-80, 5000), (-5, 2000), (100, 2400)), IBRUTINIB, plasmaphereses=[-5 - gap]
    )
    result = assess(rec)
    assert result.baseline.value_mg_dl == (5000 if skipped else 2000)
    assert Caveat.PLASMAPHERESIS in result.caveats or not skipped


def test_plasmapheresis_before_the_baseline_window_has_no_caveat():
    rec = record(igm_series((-5, 3000), (100, 1400)), IBRUTINIB, plasmaphereses=[-48])
    result = assess(rec)
    assert result.baseline.value_mg_dl == 3000
    assert Caveat.PLASMAPHERESIS not in result.caveats


def test_plasmapheresis_within_42_days_before_the_baseline_has_caveat():
    # The exchange on day -47 makes day -5 unusable; the baseline is day -60, and the
    # exchange lies between 42 days before that baseline and the latest value.
    rec = record(igm_series((-60, 3200), (-5, 3000), (100, 1400)), IBRUTINIB, plasmaphereses=[-47])
    result = assess(rec)
    assert result.baseline.day == on(-60)
    assert Caveat.PLASMAPHERESIS in result.caveats
    assert result.category == Category.PR


@pytest.mark.parametrize("days_after, evaluable", [(10, False), (42, False), (43, True)])
def test_latest_value_soon_after_plasmapheresis_is_not_evaluable(days_after, evaluable):
    rec = record(igm_series((-5, 5000), (100, 2000)), IBRUTINIB, plasmaphereses=[100 - days_after])
    result = assess(rec)
    assert (result.category != Category.NE) is evaluable
    assert Caveat.PLASMAPHERESIS in result.caveats


def test_plasmapheresis_affected_values_are_skipped_for_progression():
    # Without the skip, 1000 right after the exchange would be the nadir and the later
    # values 1400 and 1500 would be "progression".
    labs = igm_series((-5, 3000), (50, 1200), (100, 1000), (200, 1400), (300, 1450))
    result = assess(record(labs, IBRUTINIB, plasmaphereses=[95]))
    assert result.category == Category.PR
    assert result.progression is None
    assert result.nadir.value_mg_dl == 1200
    without_exchange = assess(record(labs, IBRUTINIB))
    assert without_exchange.category == Category.PD


# §4.5 progression ---------------------------------------------------------------------------


@pytest.mark.parametrize("second_rise, category", [(1125, Category.PD), (1124, Category.MR)])
def test_confirmed_progression_needs_both_values_at_125_percent_of_nadir(second_rise, category):
    labs = igm_series((-7, 2000), (90, 900), (180, 1200), (270, second_rise))
    result = assess(record(labs, [episode("bortezomib", 0)]))
    assert result.category == category


def test_one_raised_value_is_possible_progression_only():
    labs = igm_series((-7, 2000), (90, 900), (180, 1000), (270, 1200))
    result = assess(record(labs, IBRUTINIB))
    assert result.category == Category.MR  # 1200 vs 2000 is -40 %
    assert result.progression == Progression.POSSIBLE
    assert Caveat.UNCONFIRMED_PROGRESSION in result.caveats


def test_possible_progression_compares_with_the_lowest_of_all_earlier_values():
    # min(v0..v(n-1)) = 800 at v(n-1); 1000 >= 1.25 * 800.
    labs = igm_series((-7, 2000), (90, 900), (180, 800), (270, 1000))
    result = assess(record(labs, IBRUTINIB))
    assert Caveat.UNCONFIRMED_PROGRESSION in result.caveats


def test_a_bound_can_never_prove_a_rise():
    labs = [lab(-7, 2000), lab(90, 10), lab(180, 50, upper=True), lab(270, 50, upper=True)]
    result = assess(record(labs, IBRUTINIB))
    assert result.category != Category.PD
    assert Caveat.UNCONFIRMED_PROGRESSION not in result.caveats


@pytest.mark.parametrize(
    "rises, is_pd",
    [((1400, 1400), True), ((1399, 1400), False), ((1400, 1399), False)],
)
def test_the_default_profile_needs_500_mg_dl_above_nadir(rises, is_pd):
    labs = igm_series((-7, 2000), (90, 900), (180, rises[0]), (270, rises[1]))
    result = assess(record(labs, [episode("bortezomib", 0)]), profile=IWWM6)
    assert (result.category == Category.PD) is is_pd
    assert result.criteria == "IWWM-6"


def test_progression_is_the_first_category_even_below_baseline():
    labs = igm_series((-7, 6000), (90, 1000), (180, 1300), (270, 1300))
    result = assess(record(labs, IBRUTINIB))
    assert result.category == Category.PD
    assert result.percent_change < -50  # still a 78 % reduction from baseline


# §4.6 suppression windows ---------------------------------------------------------------------


@pytest.mark.parametrize("day", [111, 112])
def test_a_rise_inside_the_112_day_flare_window_is_ne_not_sd(day):
    # §4.6/§4.7: a +33 % rise is no stable disease (IWWM-6 SD is < 25 % either way).
    labs = igm_series((-2, 3000), (day - 28, 4000), (day, 4000))
    result = assess(record(labs, [episode("rituximab", 0, 30)]))
    assert result.category == Category.NE
    assert result.reason == "IgM rose during the anti-CD20 flare window (until 2024-05-06)"
    assert Caveat.ANTI_CD20_FLARE in result.caveats
    assert Caveat.UNCONFIRMED_PROGRESSION not in result.caveats


def test_the_day_after_the_window_a_value_not_above_its_peak_is_held_back():
    # §4.6 recovery: day 113 is outside the window but not above the flare's peak (4000).
    labs = igm_series((-2, 3000), (85, 4000), (113, 4000))
    result = assess(record(labs, [episode("rituximab", 0, 30)]))
    assert result.category == Category.NE
    assert result.reason.startswith("IgM falling after the flare or hold window (until 2024-08-04)")
    assert Caveat.ANTI_CD20_FLARE in result.caveats
    assert Caveat.UNCONFIRMED_PROGRESSION not in result.caveats


def test_in_recovery_a_value_above_the_window_peak_is_progression_evidence():
    labs = igm_series((-2, 3000), (85, 4000), (113, 4001))
    result = assess(record(labs, [episode("rituximab", 0, 30)]))
    assert result.category == Category.NE
    assert result.reason == "rise not yet confirmed: repeat IgM"
    assert Caveat.UNCONFIRMED_PROGRESSION in result.caveats


@pytest.mark.parametrize("days_after, blocked", [(90, True), (91, False)])
def test_recovery_lasts_90_days_after_the_window(days_after, blocked):
    labs = igm_series((-2, 3000), (85, 4000), (112 + days_after, 3900))
    result = assess(record(labs, [episode("rituximab", 0, 30)]))
    assert (Caveat.UNCONFIRMED_PROGRESSION not in result.caveats) is blocked


def test_rise_after_the_flare_window_is_progression():
    labs = igm_series((-2, 3000), (120, 4000), (150, 4100))
    result = assess(record(labs, [episode("rituximab", 0, 30)]))
    assert result.category == Category.PD


def test_flare_caveat_while_start_is_recent_even_without_a_rise():
    labs = igm_series((-2, 3000), (60, 2000))
    result = assess(record(labs, [episode("rituximab", 0)]), today_offset=112)
    assert Caveat.ANTI_CD20_FLARE in result.caveats
    result = assess(record(labs, [episode("rituximab", 0)]), today_offset=113)
    assert Caveat.ANTI_CD20_FLARE not in result.caveats


def test_flare_window_only_for_anti_cd20_of_the_current_line():
    # rituximab in an earlier line; ibrutinib now: its rise is progression.
    episodes = [episode("rituximab", -400, -300), episode("ibrutinib", 0)]
    labs = igm_series((-5, 3000), (30, 4000), (60, 4000))
    result = assess(record(labs, episodes))
    assert result.category == Category.PD
    assert result.line.regimen == ("ibrutinib",)


@pytest.mark.parametrize("after_resume, suppressed", [(28, True), (29, False)])
def test_btki_hold_window_ends_28_days_after_resumption(after_resume, suppressed):
    # ibrutinib days 0-200, held, resumed day 230.
    episodes = [episode("ibrutinib", 0, 200), episode("ibrutinib", 230)]
    labs = igm_series((-5, 4000), (150, 1000), (215, 1600), (230 + after_resume, 1700))
    result = assess(record(labs, episodes))
    assert Caveat.BTKI_INTERRUPTION in result.caveats
    # Day 215 lies in the hold, so the rise is never confirmed; the latest value alone
    # counts as possible progression once it is outside the window.
    assert result.category != Category.PD
    assert (Caveat.UNCONFIRMED_PROGRESSION not in result.caveats) is suppressed


def test_rises_after_the_hold_window_are_progression():
    episodes = [episode("ibrutinib", 0, 200), episode("ibrutinib", 230)]
    labs = igm_series((-5, 4000), (150, 1000), (259, 1600), (280, 1700))
    assert assess(record(labs, episodes)).category == Category.PD


def test_ongoing_hold_suppresses_rises():
    episodes = [episode("zanubrutinib", 0, 200, on_hold=True)]
    labs = igm_series((-5, 4000), (150, 1000), (215, 1600), (240, 1700))
    result = assess(record(labs, episodes))
    assert result.category != Category.PD
    assert Caveat.BTKI_INTERRUPTION in result.caveats


def test_a_hold_on_now_without_a_start_suppresses_rises_since_the_last_non_rise():
    # v3 §4.6 (E17): an on-hold record without a start still makes a window: from the day
    # after the last value that was no rise, not earlier than 90 days before today.
    held = episode("zanubrutinib", 0, on_hold=True)
    labs = igm_series((-5, 4000), (150, 1000), (215, 1600), (240, 1700))
    result = assess(record(labs, [held]), today_offset=243)
    assert result.category == Category.NE
    assert result.reason == "IgM rise while zanubrutinib is on hold (start not recorded)"
    assert result.rise_suppressed == SuppressedRise(WindowKind.BTKI_HOLD, None, False)
    assert result.line_status == LineStatus.ON_HOLD and result.progression_confirmed is None
    assert Caveat.BTKI_INTERRUPTION in result.caveats


@pytest.mark.parametrize("today, is_pd", [(330, False), (331, True)])
def test_an_unrecorded_hold_start_is_never_earlier_than_90_days_before_today(today, is_pd):
    # Rises at days 215 and 240; the window starts at the latest of day 151 (after the last
    # non-rise) and today - 90: from day 331 both rises lie before it and PD is confirmed.
    held = episode("zanubrutinib", 0, on_hold=True)
    labs = igm_series((-5, 4000), (150, 1000), (215, 1600), (240, 1700))
    result = assess(record(labs, [held]), today_offset=today)
    assert (result.category == Category.PD) is is_pd


def test_btki_stopped_for_good_opens_no_window_but_explains_rebound():
    episodes = [episode("ibrutinib", 0, 200)]
    labs = igm_series((-5, 4000), (150, 1000), (230, 1600), (260, 1700))
    result = assess(record(labs, episodes))
    assert result.category == Category.PD
    assert Caveat.BTKI_INTERRUPTION in result.caveats


@pytest.mark.parametrize("stop_before_latest, caveat", [(90, True), (91, False)])
def test_btki_stop_counts_within_90_days_before_latest(stop_before_latest, caveat):
    episodes = [episode("ibrutinib", 0, 300 - stop_before_latest)]
    labs = igm_series((-5, 4000), (300, 1000))
    result = assess(record(labs, episodes))
    assert (Caveat.BTKI_INTERRUPTION in result.caveats) is caveat


# §4.7 CR ------------------------------------------------------------------------------------


def test_cr_needs_negative_ife_after_start():
    labs = [lab(-4, 2500), lab(300, 25, upper=True)]
    negative = assess(record(labs, IBRUTINIB, ifes=[(300, True)]))
    assert negative.category == Category.CR
    assert Caveat.CR_NEEDS_MARROW in negative.caveats
    positive = assess(record(labs, IBRUTINIB, ifes=[(300, False)]))
    assert positive.category == Category.VGPR
    none_after_start = assess(record(labs, IBRUTINIB, ifes=[(-4, True)]))
    assert none_after_start.category == Category.VGPR
    latest_positive = assess(record(labs, IBRUTINIB, ifes=[(200, True), (290, False)]))
    assert latest_positive.category == Category.VGPR


@pytest.mark.parametrize(
    "latest, uln, category", [(230, None, "CR"), (231, None, "VGPR"), (231, 250, "CR")]
)
def test_cr_needs_latest_at_or_below_uln(latest, uln, category):
    labs = [lab(-4, 25000), lab(300, latest, uln=uln)]
    result = assess(record(labs, IBRUTINIB, ifes=[(301, True)]))
    assert result.category.value == category
    assert result.uln_is_default is (uln is None)


@pytest.mark.parametrize("baseline, low", [(459, True), (460, False)])
def test_low_baseline_below_twice_uln(baseline, low):
    result = assess(record(igm_series((-4, baseline), (100, 200)), IBRUTINIB))
    assert (Caveat.LOW_BASELINE in result.caveats) is low


def test_low_baseline_uses_the_laboratory_uln():
    result = assess(record([lab(-4, 500, uln=300), lab(100, 200)], IBRUTINIB))
    assert Caveat.LOW_BASELINE in result.caveats


# §4.1 series ----------------------------------------------------------------------------------


def test_m_spike_only_series():
    labs = [lab(-4, 2000, Series.M_SPIKE), lab(100, 900, Series.M_SPIKE)]
    result = assess(record(labs, IBRUTINIB))
    assert result.series == Series.M_SPIKE
    assert result.category == Category.PR
    assert Caveat.METHOD_CHANGE not in result.caveats


def test_falls_back_to_m_spike_with_method_change():
    labs = [
        lab(-200, 3000),
        lab(100, 1000),
        lab(-4, 2000, Series.M_SPIKE),
        lab(100, 900, Series.M_SPIKE),
    ]
    result = assess(record(labs, IBRUTINIB))
    assert result.series == Series.M_SPIKE
    assert result.percent_change == -55
    assert Caveat.METHOD_CHANGE in result.caveats


def test_never_a_change_across_methods():
    # IgM baseline, M-spike follow-up only: neither series is usable.
    labs = [lab(-4, 3000), lab(100, 900, Series.M_SPIKE)]
    result = assess(record(labs, IBRUTINIB))
    assert result.category == Category.NE
    assert Caveat.METHOD_CHANGE in result.caveats
    assert result.percent_change is None


def test_total_igm_preferred_when_usable():
    labs = [
        lab(-4, 3000),
        lab(100, 1000),
        lab(-4, 2000, Series.M_SPIKE),
        lab(100, 1900, Series.M_SPIKE),
    ]
    result = assess(record(labs, IBRUTINIB))
    assert result.series == Series.TOTAL_IGM
    assert result.category == Category.PR
    assert Caveat.METHOD_CHANGE not in result.caveats


# §5 caveats ----------------------------------------------------------------------------------


@pytest.mark.parametrize("latest, risk", [(4000, True), (3999, False)])
def test_hyperviscosity_at_4000(latest, risk):
    result = assess(record(igm_series((-4, 5000), (100, latest)), IBRUTINIB))
    assert (Caveat.HYPERVISCOSITY_RISK in result.caveats) is risk


def test_hyperviscosity_on_a_lower_bound_and_without_treatment():
    result = assess(record([lab(0, 7000, lower=True)]), today_offset=3)
    assert Caveat.HYPERVISCOSITY_RISK in result.caveats
    assert result.category == Category.NE


def test_hyperviscosity_not_on_an_upper_bound():
    result = assess(record([lab(-4, 5000), lab(100, 5000, upper=True)], IBRUTINIB))
    assert Caveat.HYPERVISCOSITY_RISK not in result.caveats


def test_pi_and_mtor_discordance():
    for drug in ("bortezomib", "carfilzomib", "ixazomib", "everolimus"):
        result = assess(record(igm_series((-4, 3000), (100, 1000)), [episode(drug, 0)]))
        assert Caveat.PI_MTOR_DISCORDANCE in result.caveats, drug
        assert Caveat.BTKI_DISCORDANCE not in result.caveats


def test_caveats_are_in_table_order_and_unique():
    episodes = [episode("ibrutinib", 0), episode("rituximab", 0), episode("bortezomib", 0)]
    labs = igm_series((-4, 3000), (28, 4500), (56, 4600))
    result = assess(record(labs, episodes))
    order = list(Caveat)
    assert list(result.caveats) == sorted(set(result.caveats), key=order.index)
    assert result.caveats[:3] == (
        Caveat.BTKI_DISCORDANCE,
        Caveat.ANTI_CD20_FLARE,
        Caveat.PI_MTOR_DISCORDANCE,
    )


# §4.8 response since --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "points, durable",
    [
        # 365 days held, 3 values, gaps of 182 and 183 days
        (((90, 1400), (272, 1300), (455, 1200)), True),
        # 364 days held
        (((90, 1400), (272, 1300), (454, 1200)), False),
        # gaps of 183 and 182 days, then a gap of 184 days
        (((90, 1400), (273, 1300), (455, 1200)), True),
        (((90, 1400), (271, 1300), (455, 1200)), False),
        # only 2 values
        (((90, 1400), (455, 1200)), False),
    ],
)
def test_durable_needs_a_year_3_values_and_no_gap_over_183_days(points, durable):
    labs = igm_series((-4, 3000), (60, 2000), *points)
    result = assess(record(labs, IBRUTINIB))
    assert result.category == Category.PR
    assert result.response_since == on(90)
    assert result.durable is durable


def test_response_since_is_the_latest_unbroken_run():
    # §4.8: a value that fell out of the PR range breaks the run.
    labs = igm_series((-4, 3000), (90, 1400), (180, 1600), (270, 1450), (360, 1300))
    result = assess(record(labs, IBRUTINIB))
    assert result.category == Category.PR
    assert result.response_since == on(270)


def test_response_not_yet_durable():
    labs = igm_series((-4, 3000), (90, 1400), (300, 1300))
    result = assess(record(labs, IBRUTINIB))
    assert result.response_since == on(90)
    assert result.durable is False


# "today" and the data's dates ------------------------------------------------------------------


def test_results_dated_after_today_are_left_out_and_reported():
    labs = igm_series((-4, 3000), (100, 1400), (400, 100))
    result = assess(record(labs, IBRUTINIB), today_offset=103)
    assert result.latest.day == on(100)
    assert any("after today" in e.reason for e in result.excluded)


def test_lines_starting_after_today_are_not_current():
    episodes = [episode("ibrutinib", 0), episode("rituximab", 200)]
    result = assess(record(igm_series((-4, 3000), (100, 1400)), episodes), today_offset=103)
    assert result.line.regimen == ("ibrutinib",)


def test_a_drug_planned_after_today_is_not_in_the_current_line():
    episodes = [episode("bendamustine", 0), episode("rituximab", 20)]
    result = assess(record(igm_series((-4, 3000), (5, 2900)), episodes), today_offset=10)
    assert result.line.regimen == ("bendamustine",)
    assert Caveat.ANTI_CD20_FLARE not in result.caveats


# v2 §4.7 CR: the IFE that supports it ---------------------------------------------------------

BR_V2 = [episode("bendamustine", 0, 150), episode("rituximab", 0, 150)]


def _cr(ifes, labs=None):
    labs = labs or [lab(-4, 2500), lab(200, 150), lab(300, 25, upper=True)]
    return assess(record(labs, BR_V2, ifes=ifes))


def test_cr_when_the_negative_ife_is_on_or_after_the_run_of_normal_values():
    result = _cr([(200, True)])
    assert result.category == Category.CR
    assert result.response_since == on(200)


def test_no_cr_when_the_negative_ife_predates_the_run():
    # IgM 150 on day 200 starts the run at or below the ULN; an IFE of day 199 is older.
    result = _cr([(199, True)])
    assert result.category == Category.VGPR


def test_an_unreadable_ife_after_the_negative_one_withholds_cr():
    result = _cr([(200, True), (250, IfeReading.UNREADABLE)])
    assert result.category == Category.VGPR
    before = _cr([(250, IfeReading.UNREADABLE), (260, True)])
    assert before.category == Category.CR


def test_an_m_spike_above_zero_after_the_ife_withholds_cr():
    labs = [lab(-4, 2500), lab(200, 150), lab(300, 25, upper=True), m_spike(250, "0.1")]
    assert _cr([(200, True)], labs).category == Category.VGPR


def test_cr_response_since_is_the_later_of_the_run_and_the_ife():
    result = _cr([(280, True)])
    assert result.category == Category.CR
    assert result.response_since == on(280)


# v2 §5 delayed-response ---------------------------------------------------------------------


@pytest.mark.parametrize("today, shown", [(365, True), (366, True), (367, False)])
def test_delayed_response_within_12_months_of_therapy_start(today, shown):
    # 2024-01-15 + 12 months = 2025-01-15 = day 366 ("within" is inclusive)
    labs = igm_series((-4, 3000), (200, 2000))
    result = assess(record(labs, BR_V2), today_offset=today)
    assert result.category == Category.MR
    assert (Caveat.DELAYED_RESPONSE in result.caveats) is shown


@pytest.mark.parametrize("latest, shown", [(1249, True), (1250, False)])
def test_delayed_response_never_while_igm_rises(latest, shown):
    labs = igm_series((-4, 2000), (100, 1000), (200, latest))
    result = assess(record(labs, BR_V2))
    assert (Caveat.DELAYED_RESPONSE in result.caveats) is shown


def test_delayed_response_not_for_a_btki_alone():
    labs = igm_series((-4, 3000), (200, 2000))
    assert Caveat.DELAYED_RESPONSE not in assess(record(labs, IBRUTINIB)).caveats


# v2 §4.9 add-on line ------------------------------------------------------------------------


def test_an_add_on_line_reports_both_changes():
    labs = igm_series((-5, 4000), (30, 2500), (120, 1600), (200, 1500))
    episodes = [episode("ibrutinib", 0), episode("rituximab", 60, 81)]
    result = assess(record(labs, episodes))
    assert result.line.start == on(60)
    assert result.baseline.day == on(30)
    assert displayed_percent(result.percent_change) == Decimal("-40.0")
    earlier = result.continuing_from
    assert earlier.therapy_start == on(0) and earlier.baseline.day == on(-5)
    assert displayed_percent(earlier.percent_change) == Decimal("-62.5")
    # carried courses keep the BTKi caveat (v1 dropped it)
    assert Caveat.BTKI_DISCORDANCE in result.caveats


def test_a_steroid_course_during_a_btki_never_changes_the_answer():
    # E11: v1 turned a confirmed PD into "SD on dexamethasone".
    labs = igm_series((-5, 5000), (90, 1000), (180, 1300), (270, 1400), (360, 1500))
    base = assess(record(labs, [episode("zanubrutinib", 0)]))
    with_steroid = assess(
        record(labs, [episode("zanubrutinib", 0), episode("dexamethasone", 200, 204)])
    )
    assert base.category == with_steroid.category == Category.PD
    assert with_steroid.line.regimen == ("zanubrutinib",)
    assert [e.reason for e in with_steroid.excluded] == [
        "dexamethasone outside a WM regimen: not a line of therapy"
    ]
