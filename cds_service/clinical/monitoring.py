"""§6 monitoring reminder [design]: is a serum IgM overdue for a patient on therapy?"""

from __future__ import annotations

from datetime import date

from .criteria import CriteriaProfile
from .models import LabResult, MonitoringDue, TherapyLine


def monitoring_due(
    line: TherapyLine | None,
    results: list[LabResult],
    profile: CriteriaProfile,
    today: date,
) -> MonitoringDue | None:
    """IgM is expected every 3 months in the first 2 years of a line, then every 4-6.

    `results` are the patient's IgM and M-spike results; either one counts as a
    measurement. With none since the line started, the interval runs from its start.
    """
    if line is None:
        return None
    # Ongoing or ended: follow-up continues after therapy.
    early = (today - line.start).days <= profile.monitoring_early_days
    interval = (
        profile.monitoring_early_interval_days if early else profile.monitoring_late_interval_days
    )
    measured = [r.day for r in results if r.day <= today]
    last = max(measured) if measured else None
    reference = max(last, line.start) if last else line.start
    days_since = (today - reference).days
    if days_since <= interval:
        return None
    return MonitoringDue(
        last_result_day=last, days_since=days_since, interval_days=interval, line_start=line.start
    )
