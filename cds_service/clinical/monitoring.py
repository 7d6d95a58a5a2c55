"""§6 monitoring reminder [design]: is an IgM overdue for this patient's state?

WM needs life-long follow-up (BSH-2022); while watching, IgM every 3-6 months (ESMO-2018;
Kyle-2003). The interval relaxes with time off therapy.
"""

from __future__ import annotations

from datetime import date, timedelta

from .criteria import CriteriaProfile
from .models import (
    Assessment,
    Category,
    LabResult,
    LineStatus,
    MonitoringDue,
    MonitoringReason,
    MonitoringState,
    Series,
)
from .reasons import commonest_reason


def _state(
    assessment: Assessment, profile: CriteriaProfile, today: date
) -> tuple[MonitoringState, int]:
    """The first state of §6's table that applies, and its interval in days."""
    line = assessment.line
    if line is None:
        return MonitoringState.UNTREATED, (
            profile.monitoring_early_interval_days
            if _untreated_needs_watching(assessment, profile)
            else profile.monitoring_late_interval_days
        )
    ended = assessment.line_ended
    if assessment.line_status == LineStatus.ENDED and ended is not None:
        if assessment.category == Category.PD:
            return MonitoringState.PROGRESSION_OFF_THERAPY, profile.monitoring_early_interval_days
        off = (today - ended).days
        if off <= profile.monitoring_early_days:
            return MonitoringState.OFF_THERAPY, profile.monitoring_off_early_interval_days
        if off <= profile.monitoring_off_late_days:
            return MonitoringState.OFF_THERAPY, profile.monitoring_late_interval_days
        return MonitoringState.OFF_THERAPY, profile.monitoring_off_remission_interval_days
    early = (today - line.start).days <= profile.monitoring_early_days
    return MonitoringState.ON_THERAPY, (
        profile.monitoring_early_interval_days if early else profile.monitoring_late_interval_days
    )


def _untreated_needs_watching(assessment: Assessment, profile: CriteriaProfile) -> bool:
    """No line: IgM every 3 months when it is high or rose 25 % over the last 12 months."""
    igm = [v for v in assessment.usable_results if v.series == Series.TOTAL_IGM]
    spikes = [v for v in assessment.usable_results if v.series == Series.M_SPIKE]
    if igm and igm[-1].value_mg_dl >= profile.hyperviscosity_igm_mg_dl:
        return True
    if not igm and spikes and spikes[-1].value_mg_dl >= profile.hyperviscosity_m_spike_mg_dl:
        return True
    change = assessment.change_12_months
    return change is not None and change.percent_change >= profile.mr_reduction_percent


def monitoring_due(
    assessment: Assessment, profile: CriteriaProfile, today: date
) -> MonitoringDue | None:
    """§6 for a patient with evidence of WM: a reminder when no usable result (either series,
    plasmapheresis-affected or not, not held back) is dated within the interval."""
    state, interval = _state(assessment, profile, today)
    usable = assessment.usable_results
    newest = max((v.day for v in usable if v.day <= today), default=None)
    line = assessment.line
    starts = [day for day in (newest, line.start if line else None) if day is not None]
    reference = max(starts) if starts else None
    days_since = (today - reference).days if reference is not None else None
    common = {
        "state": state,
        "interval_days": interval,
        "line": line,
        "line_ended": assessment.line_ended,
        "progression_confirmed": assessment.progression_confirmed,
        **_unusable_after(assessment, reference),
    }
    if days_since is None or days_since > interval:
        return MonitoringDue(
            reason=MonitoringReason.OVERDUE,
            last_result_day=newest,
            days_since=days_since,
            **common,
        )
    igm = _total_igm_due([v for v in usable if v.day <= today], profile, today)
    if igm is not None and state == MonitoringState.ON_THERAPY:
        return MonitoringDue(
            reason=MonitoringReason.TOTAL_IGM_DUE,
            last_result_day=igm.day,
            days_since=(today - igm.day).days,
            **common,
        )
    return None


def _total_igm_due(
    usable: list[LabResult], profile: CriteriaProfile, today: date
) -> LabResult | None:
    """§6: the newest total IgM is more than 183 days old and only M-spikes came since (the
    M-spike under-reads high IgM, BCSH-2014)."""
    igm = [v for v in usable if v.series == Series.TOTAL_IGM]
    if not igm or today - igm[-1].day <= timedelta(days=profile.total_igm_due_days):
        return None
    if any(v.series == Series.M_SPIKE and v.day > igm[-1].day for v in usable):
        return igm[-1]
    return None


def _unusable_after(assessment: Assessment, since: date | None) -> dict:
    """§6: unusable results never reset the interval; those after the day it runs from (the
    newest usable result, or the line's start when later) are counted on the card."""
    later = [
        u for u in assessment.unusable if since is None or (u.day is not None and u.day > since)
    ]
    if not later:
        return {}
    return {
        "unusable_count": len(later),
        "unusable_since": since,
        "unusable_reason": commonest_reason(later),
    }
