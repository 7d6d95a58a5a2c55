"""Criteria profiles: every threshold and window of clinical-rules.md, named, with its source.

A profile is data (clinical-rules.md §4 "Profiles"). `iwwm6`, the default, is IWWM-6 with
the ASPEN / iNNOVATE 500 mg/dL progression floor (IMWG-2016's 0.5 g/dL); `iwwm6-strict` is
IWWM-6 as published, for audit; `iwwm6-trial` is another name for `iwwm6`. Values marked
[design] are product decisions where the literature is silent (clinical-rules.md marks them
the same way).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction


@dataclass(frozen=True)
class CriteriaProfile:
    name: str
    label: str  # as shown on cards and in the `criteria` field of the card extension

    # IWWM-6 (Owen 2013): minimum IgM reduction from baseline, in percent.
    vgpr_reduction_percent: int = 90
    pr_reduction_percent: int = 50
    mr_reduction_percent: int = 25
    # IWWM-6 / IWWM-3: progression is a rise of at least 25 % above the nadir, confirmed.
    progression_factor: Fraction = Fraction(5, 4)
    # §4.5 ASPEN (Tam 2020), iNNOVATE, IMWG-2016: the rise must also be at least this many
    # mg/dL above the nadir; None under `iwwm6-strict`.
    progression_min_rise_mg_dl: Decimal | None = Decimal(500)

    # [design] §4.2 baseline: the last value at most this many days before therapy start.
    baseline_window_days: int = 90
    # [design] §3.6 IgM measured on the day of an exchange or this many days after it
    # understates disease.
    plasmapheresis_window_days: int = 42
    # §4.6 Ghobrial-2004: rituximab flare lasts up to 4 months; 16 weeks.
    flare_window_days: int = 112
    # [design] §3.5 autologous transplant: conditioning records and transplant procedures
    # within this many days of each other are one course; etoposide and cytarabine count
    # within this many days of carmustine, BEAM or high-dose melphalan; the line before it
    # is a mobilisation when it started at most this many days before the conditioning.
    transplant_grouping_days: int = 14
    conditioning_companion_days: int = 7
    mobilisation_days: int = 120
    # [design] §3.4 anti-CD20 induction: this many doses on distinct days within this span.
    induction_min_doses: int = 3
    induction_span_days: int = 35
    # [design] §4.6 withdrawal window (Castillo-2018): a line without a BTKi starting within
    # this many days of a BTKi's end (either side) carries the rebound until its start + 90.
    withdrawal_gap_days: int = 60
    withdrawal_window_days: int = 90
    # [design] §4.6 Castillo-2018: rebound after a BTKi hold settles within weeks of restarting.
    post_hold_window_days: int = 28
    # [design] §4.6 an open hold (on hold now) suppresses rises for at most this long.
    open_hold_window_days: int = 90
    # [design] §4.6 recovery: after a window, a value must pass the window's peak this long.
    recovery_days: int = 90
    # [design] §5 btki-interruption: a hold or stop this many days before the latest value.
    btki_interruption_lookback_days: int = 90
    # [design] §3.5 rule 4: courses starting within this many days of a line's start join it.
    line_grouping_days: int = 30
    # [design] §3.5 rule 4 (EMN-BDR): an anti-CD20 course deferred up to this many days.
    deferred_anti_cd20_days: int = 90
    # [design] §3.5 rule 5: a re-course up to this many days after the line ended.
    recourse_days: int = 180
    # [design] §3.5 rule 6: carried courses must continue more than this many days after the
    # add-on starts; a shorter overlap is a bridge (venetoclax's five-week ramp-up).
    add_on_carry_min_days: int = 60
    # [design] §3.5 rule 3: a BTKi started at most this many days after another BTKi of the
    # line ended (or this many days before it ended) is a switch within the class.
    switch_gap_days: int = 60
    switch_overlap_days: int = 30
    # [design] §3.4: an episode starting at most this many days after the previous one of the
    # same ingredient ended continues the course.
    course_gap_days: int = 90
    # [design] §3.4: a course whose last day is an infusion reads as ongoing this long after it
    # (one 28-day cycle plus a 4-week delay).
    infusion_course_days: int = 56
    # [design] §3.3: an active order whose supply ran out this long ago has ended.
    unrenewed_order_days: int = 90
    # [design] §4.1: total IgM older than this relative to the M-spike's latest is stale.
    stale_series_days: int = 92
    # [design] §4.5: an M-spike below this is too small to call a rise.
    m_spike_rise_floor_mg_dl: Decimal = Decimal(500)
    # [design] §4.5: after CR, a value up to this multiple of the ULN needs the protein back.
    after_cr_uln_multiple: int = 2
    # [design] §5 small-absolute-rise (ASPEN, iNNOVATE, IMWG-2016): 500 mg/dL.
    small_absolute_rise_mg_dl: Decimal = Decimal(500)
    # [design] §3.1 implausible change: a value this many times above or below the previous
    # one, at most this many days after it, with no exchange between, is held back.
    implausible_change_factor: int = 10
    implausible_change_days: int = 183
    # [design] §3.1 same-day plain values differing by more than this percent are discordant.
    discordant_percent: int = 20
    # §7 IWWM-8: hyperviscosity risk with total IgM >= 4000 mg/dL.
    hyperviscosity_igm_mg_dl: Decimal = Decimal(4000)
    # [design] §7: densitometry reads lower than nephelometry at high IgM.
    hyperviscosity_m_spike_mg_dl: Decimal = Decimal(3000)
    # [design] §7 Gustine-2017: a separate warning card at IgM >= 6000 mg/dL.
    hyperviscosity_warning_igm_mg_dl: Decimal = Decimal(6000)
    # [design] §7: a reference value must be this recent.
    hyperviscosity_reference_days: int = 92
    # [design] contract order check viscosity-high: above this many cP (or mPa.s).
    viscosity_high_cp: Decimal = Decimal(4)
    # [design] §7: suggest serum viscosity when none was measured in this many days.
    viscosity_order_days: int = 183
    # [design] §3.1 upper limit of normal for IgM when the laboratory gives no reference range.
    default_uln_mg_dl: Decimal = Decimal(230)
    # [design] §5 low-baseline: IgM categories are unreliable below this multiple of the ULN,
    # or below this M-spike baseline.
    low_baseline_uln_multiple: int = 2
    low_baseline_m_spike_mg_dl: Decimal = Decimal(500)
    # [design] §4.8 a response held this many days, over at least 3 values with no gap over
    # 183 days, is called durable.
    durable_days: int = 365
    durable_min_values: int = 3
    durable_max_gap_days: int = 183
    # [design] §5 delayed-response: within 12 months of therapy start.
    delayed_response_months: int = 12
    # [design] §6 monitoring (BSH-2022, ESMO-2018, Kyle-2003): on therapy, IgM every 3 months
    # in the first 2 years of a line, then every 6; off therapy every 4 months for 2 years,
    # every 6 to 5 years, then yearly; untreated every 6 months (3 when high or rising).
    monitoring_early_days: int = 730
    monitoring_early_interval_days: int = 92
    monitoring_late_interval_days: int = 183
    monitoring_off_early_interval_days: int = 122
    monitoring_off_late_days: int = 1825
    monitoring_off_remission_interval_days: int = 365
    # [design] §3.7: a total IgM above this multiple of its ULN is evidence of WM.
    evidence_uln_multiple: int = 2
    # §4.10: "12 months" is 365 days.
    trend_days: int = 365
    # [design] §6 total IgM due: only M-spikes since a total IgM older than this.
    total_igm_due_days: int = 183
    # [design] a result dated this many days after "today" is still accepted: the EHR's
    # local date may be ahead of the service's.
    future_tolerance_days: int = 1

    @property
    def plasmapheresis_window(self) -> timedelta:
        """§3.6: the exchange day and the days after it whose IgM understates disease."""
        return timedelta(days=self.plasmapheresis_window_days)


IWWM6 = CriteriaProfile(name="iwwm6", label="IWWM-6")
IWWM6_STRICT = replace(
    IWWM6, name="iwwm6-strict", label="IWWM-6-strict", progression_min_rise_mg_dl=None
)

# `iwwm6-trial` (v2's name for the floor) is accepted as another name for `iwwm6`.
PROFILES: dict[str, CriteriaProfile] = {
    "iwwm6": IWWM6,
    "iwwm6-strict": IWWM6_STRICT,
    "iwwm6-trial": IWWM6,
}


def profile_named(name: str) -> CriteriaProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown criteria profile {name!r}") from None
