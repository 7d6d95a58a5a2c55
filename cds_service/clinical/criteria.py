"""Criteria profiles: every threshold and window of clinical-rules.md, named, with its source.

A profile is data. `iwwm6` is the default; `iwwm6-trial` adds the ASPEN / iNNOVATE
500 mg/dL floor for progression. Values marked [design] are product decisions where the
literature is silent (clinical-rules.md marks them the same way).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
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
    # ASPEN (Tam 2020) and iNNOVATE: the rise must also be at least this many mg/dL.
    progression_min_rise_mg_dl: Decimal | None = None

    # [design] baseline: the last value at most this many days before therapy start.
    baseline_window_days: int = 90
    # [design] IgM measured within this many days after a plasma exchange understates disease.
    plasmapheresis_window_days: int = 42
    # Ghobrial-2004: rituximab flare lasts up to 4 months; 16 weeks.
    flare_window_days: int = 112
    # Castillo-2018: rebound after a BTKi hold settles within weeks of restarting.
    post_hold_window_days: int = 28
    # [design] btki-interruption: a hold or stop this many days before the latest value.
    btki_interruption_lookback_days: int = 90
    # [design] episodes whose starts lie within this many days form one line of therapy.
    line_grouping_days: int = 30
    # [design] two episodes of one drug with a gap up to this long are one course with a hold.
    hold_gap_days: int = 90
    # Stone-2012: hyperviscosity risk rises with IgM >= 4000 mg/dL.
    hyperviscosity_igm_mg_dl: Decimal = Decimal(4000)
    # [design] upper limit of normal for IgM when the laboratory gives no reference range.
    default_uln_mg_dl: Decimal = Decimal(230)
    # [design] low-baseline: IgM categories are unreliable below this multiple of the ULN.
    low_baseline_uln_multiple: int = 2
    # [design] a response held this many months is called durable.
    durable_months: int = 12
    # [design] §6 monitoring: IgM every 3 months in the first 2 years of a line, then 4-6.
    monitoring_early_years: int = 2
    monitoring_early_interval_days: int = 92
    monitoring_late_interval_days: int = 183
    # [design] a result dated this many days after "today" is still accepted: the EHR's
    # local date may be ahead of the service's.
    future_tolerance_days: int = 1


IWWM6 = CriteriaProfile(name="iwwm6", label="IWWM-6")
IWWM6_TRIAL = replace(
    IWWM6, name="iwwm6-trial", label="IWWM-6-trial", progression_min_rise_mg_dl=Decimal(500)
)

PROFILES: dict[str, CriteriaProfile] = {profile.name: profile for profile in (IWWM6, IWWM6_TRIAL)}


def profile_named(name: str) -> CriteriaProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown criteria profile {name!r}") from None
