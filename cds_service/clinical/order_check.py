"""The order-time check (contract "Order check"): an anti-CD20 antibody ordered while IgM is
high, or while no recent IgM says how high it is.

Rituximab and other anti-CD20 antibodies can cause an IgM flare that precipitates
hyperviscosity when IgM is high (Treon-2004, Ghobrial-2004); IWWM-8 recommends plasmapheresis
before rituximab when IgM is high, typically above 4000 mg/dL, or a regimen that avoids
single-agent rituximab. The reference values are those of clinical-rules.md §7.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from .criteria import CriteriaProfile
from .hyperviscosity import reference_values
from .laboratory import one_value_per_day
from .models import LabResult, PatientRecord


class OrderRule(StrEnum):
    IGM_HIGH = "igm-high"
    IGM_MISSING = "igm-missing"


@dataclass(frozen=True)
class OrderCheck:
    rule: OrderRule
    drugs: tuple[str, ...]  # the anti-CD20 ingredients ordered
    reference_value: LabResult | None = None  # igm-high: the value at or above its threshold
    recent_plasmapheresis: date | None = None  # an exchange in the last 42 days
    # igm-missing: there are results in the last 92 days, but all after an exchange.
    only_after_exchange: bool = False


def check_anti_cd20_order(
    record: PatientRecord, ordered: tuple[str, ...], profile: CriteriaProfile, today: date
) -> OrderCheck | None:
    """`ordered`: the anti-CD20 ingredients in the draft orders. None: nothing to say
    (no anti-CD20 antibody ordered, or a recent IgM below the thresholds)."""
    if not ordered:
        return None
    latest_allowed = today + timedelta(days=profile.future_tolerance_days)
    results = [r for r in record.lab_results if r.day <= latest_allowed]
    per_day = one_value_per_day(results, profile)
    refs = reference_values(per_day.values, record.plasmaphereses, profile, today)
    high = refs.triggered(profile)
    if high is not None:
        return OrderCheck(OrderRule.IGM_HIGH, ordered, high, refs.recent_plasmapheresis)
    recent = today - timedelta(days=profile.hyperviscosity_reference_days)
    # Any recent result not lowered by an exchange says how high IgM is (an upper bound such
    # as "<25" too: it is no hyperviscosity reference, but it is no missing result either).
    measured = any(
        v.day >= recent and v not in refs.after_exchange
        for values in per_day.values.values()
        for v in values
    )
    if measured:
        return None
    return OrderCheck(
        OrderRule.IGM_MISSING,
        ordered,
        recent_plasmapheresis=refs.recent_plasmapheresis,
        only_after_exchange=bool(refs.after_exchange),
    )
