"""The order-time check (contract "Order check"): an anti-CD20 antibody ordered while IgM or
serum viscosity is high, or while no recent IgM says how high it is.

Rituximab and other anti-CD20 antibodies can cause an IgM flare that precipitates
hyperviscosity when IgM is high (Treon-2004, Ghobrial-2004); IWWM-8 recommends plasmapheresis
before rituximab when IgM is high, typically above 4000 mg/dL, or a regimen that avoids
single-agent rituximab. The reference values are those of clinical-rules.md §7.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from .criteria import CriteriaProfile
from .hyperviscosity import ReferenceValues, reference_values
from .laboratory import hold_back_implausible, lowered_by_exchange, one_value_per_day
from .models import LabResult, PatientRecord, Plasmapheresis, Series, ViscosityResult


class OrderRule(StrEnum):
    """contract v3: the first rule that applies decides the one card."""

    IGM_HIGH = "igm-high"
    VISCOSITY_HIGH = "viscosity-high"
    PRE_EXCHANGE_IGM_HIGH = "pre-exchange-igm-high"
    TOTAL_IGM_MISSING = "total-igm-missing"
    IGM_MISSING = "igm-missing"
    DRUG_UNIDENTIFIED = "drug-unidentified"


WARNING_RULES = frozenset(
    {OrderRule.IGM_HIGH, OrderRule.VISCOSITY_HIGH, OrderRule.PRE_EXCHANGE_IGM_HIGH}
)


@dataclass(frozen=True)
class ExchangeProgramme:
    """The latest exchange and each earlier one at most 42 days before the next."""

    count: int
    first: date
    last: date


@dataclass(frozen=True)
class OrderCheck:
    rule: OrderRule
    drugs: tuple[str, ...]  # the anti-CD20 ingredients ordered (none: drug-unidentified)
    reference_value: LabResult | None = None  # the value the rule is about
    recent_plasmapheresis: date | None = None  # an exchange in the last 42 days
    # igm-missing: there are results in the last 92 days, but all after an exchange.
    only_after_exchange: bool = False
    viscosity: ViscosityResult | None = None  # a viscosity above the limit
    exchanges: ExchangeProgramme | None = None  # pre-exchange-igm-high
    diagnosis_unchecked: bool = False  # an info card given without evidence of WM read


def _viscosity_high(viscosity: ViscosityResult, profile: CriteriaProfile) -> bool:
    """Above 4.0 cP (cP or mPa.s), or above twice its own reference range's upper limit."""
    if viscosity.value is None or viscosity.comparator in ("<", "<="):
        return False
    if viscosity.centipoise and viscosity.value > profile.viscosity_high_cp:
        return True
    high = viscosity.reference_high
    return high is not None and high > 0 and viscosity.value > 2 * high


def _viscosity_affected(
    viscosity: ViscosityResult, plasmaphereses: list[Plasmapheresis], profile: CriteriaProfile
) -> bool:
    as_result = LabResult(
        viscosity.reference,
        Series.TOTAL_IGM,
        viscosity.day,
        Decimal(0),
        drawn_at=viscosity.drawn_at,
    )
    return lowered_by_exchange(as_result, plasmaphereses, profile)


def high_viscosity(
    record: PatientRecord, profile: CriteriaProfile, today: date
) -> ViscosityResult | None:
    """The newest serum viscosity of the last 92 days not lowered by an exchange, when it is
    above the limit."""
    recent = today - timedelta(days=profile.hyperviscosity_reference_days)
    counting = sorted(
        (
            v
            for v in record.viscosities
            if recent <= v.day <= today
            and not _viscosity_affected(v, record.plasmaphereses, profile)
        ),
        key=lambda v: (v.day, v.reference),
    )
    if counting and _viscosity_high(counting[-1], profile):
        return counting[-1]
    return None


def exchange_programme(
    plasmaphereses: list[Plasmapheresis], profile: CriteriaProfile
) -> ExchangeProgramme | None:
    days = sorted({p.day for p in plasmaphereses})
    if not days:
        return None
    first = days[-1]
    for earlier in reversed(days[:-1]):
        if first - earlier > profile.plasmapheresis_window:
            break
        first = earlier
    return ExchangeProgramme(len([d for d in days if d >= first]), first, days[-1])


def check_anti_cd20_order(
    record: PatientRecord,
    ordered: tuple[str, ...],
    profile: CriteriaProfile,
    today: date,
    evidence: bool | None = True,
    unidentified: bool = False,
) -> OrderCheck | None:
    """`ordered`: the anti-CD20 ingredients in the draft orders; `evidence`: of WM (None:
    not known, a key it depends on could not be read); `unidentified`: a draft whose drug
    could not be identified. None: nothing to say."""
    if not ordered and not unidentified:
        return None
    latest_allowed = today + timedelta(days=profile.future_tolerance_days)
    results = [r for r in record.lab_results if r.day <= latest_allowed]
    values = one_value_per_day(results, profile).values
    exchange_days = [p.day for p in record.plasmaphereses]

    def affected(value: LabResult) -> bool:
        return lowered_by_exchange(value, record.plasmaphereses, profile)

    for series in Series:
        values[series] = hold_back_implausible(values[series], exchange_days, affected, profile)[0]
    refs = reference_values(values, record.plasmaphereses, profile, today)
    viscosity = high_viscosity(record, profile, today)
    common = {"recent_plasmapheresis": refs.recent_plasmapheresis, "viscosity": viscosity}
    recent = today - timedelta(days=profile.hyperviscosity_reference_days)
    if ordered:
        warning = _warning(ordered, values, refs, record, profile, common, recent)
        if warning is not None:
            return warning
    if not evidence and evidence is not None:
        return None  # anti-CD20 antibodies are ordered for many other diseases
    unchecked = evidence is None
    if not ordered:
        return OrderCheck(OrderRule.DRUG_UNIDENTIFIED, (), diagnosis_unchecked=unchecked)

    def counts(series: Series) -> list[LabResult]:
        return [v for v in values[series] if v.day >= recent and v not in refs.after_exchange]

    if counts(Series.TOTAL_IGM):
        return None
    m_spike = refs.references[Series.M_SPIKE]
    if m_spike is not None and m_spike.value_mg_dl < profile.hyperviscosity_m_spike_mg_dl:
        return OrderCheck(
            OrderRule.TOTAL_IGM_MISSING, ordered, m_spike, diagnosis_unchecked=unchecked, **common
        )
    if counts(Series.M_SPIKE):
        return None
    return OrderCheck(
        OrderRule.IGM_MISSING,
        ordered,
        only_after_exchange=bool(refs.after_exchange),
        diagnosis_unchecked=unchecked,
        **common,
    )


def _warning(
    ordered: tuple[str, ...],
    values: dict[Series, list[LabResult]],
    refs: ReferenceValues,
    record: PatientRecord,
    profile: CriteriaProfile,
    common: dict,
    recent: date,
) -> OrderCheck | None:
    high = refs.triggered(profile)
    if high is not None:
        return OrderCheck(OrderRule.IGM_HIGH, ordered, high, **common)
    if common["viscosity"] is not None:
        return OrderCheck(OrderRule.VISCOSITY_HIGH, ordered, **common)
    counted = any(v.day >= recent for counting in refs.counting.values() for v in counting)
    if counted or refs.recent_plasmapheresis is None:
        return None
    # Exchanges go on: the newest value not lowered by one, at any date, shows the risk.
    before = [
        v
        for series in Series
        for v in values[series]
        if not v.upper_bound and not lowered_by_exchange(v, record.plasmaphereses, profile)
    ]
    thresholds = {
        Series.TOTAL_IGM: profile.hyperviscosity_igm_mg_dl,
        Series.M_SPIKE: profile.hyperviscosity_m_spike_mg_dl,
    }
    newest = max(before, key=lambda v: (v.day, v.reference), default=None)
    if newest is None or newest.value_mg_dl < thresholds[newest.series]:
        return None
    return OrderCheck(
        OrderRule.PRE_EXCHANGE_IGM_HIGH,
        ordered,
        newest,
        exchanges=exchange_programme(record.plasmaphereses, profile),
        **common,
    )
