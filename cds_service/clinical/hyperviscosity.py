"""clinical-rules.md §7: hyperviscosity reference values.

Two reference values, each the newest value of its series that counts, dated within 92 days
before today: not plasmapheresis-affected (a value drawn on the day of an exchange counts
when its time is before the exchange started), lower bounds at their bound, upper bounds
never. They exist whether or not there is a line of therapy; the response assessment and the
order check (contract "Order check") both read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from .criteria import CriteriaProfile
from .laboratory import lowered_by_exchange
from .models import LabResult, Plasmapheresis, Series


@dataclass(frozen=True)
class ReferenceValues:
    references: dict[Series, LabResult | None]  # newest counting value within 92 days
    counting: dict[Series, list[LabResult]]  # every value that counts, in date order
    # Values within 92 days that are no reference only because an exchange lowered them.
    after_exchange: list[LabResult]
    recent_plasmapheresis: date | None  # an exchange in the last 42 days

    def triggered(self, profile: CriteriaProfile) -> LabResult | None:
        """The reference value at or above its threshold (total IgM first, as §7 lists)."""
        thresholds = {
            Series.TOTAL_IGM: profile.hyperviscosity_igm_mg_dl,
            Series.M_SPIKE: profile.hyperviscosity_m_spike_mg_dl,
        }
        for series in (Series.TOTAL_IGM, Series.M_SPIKE):
            reference = self.references[series]
            if reference is not None and reference.value_mg_dl >= thresholds[series]:
                return reference
        return None


def reference_values(
    values: dict[Series, list[LabResult]],
    plasmaphereses: list[Plasmapheresis],
    profile: CriteriaProfile,
    today: date,
) -> ReferenceValues:
    """`values`: each series one value per day (§3.1), in date order, none after today."""
    recent = today - timedelta(days=profile.hyperviscosity_reference_days)
    counting: dict[Series, list[LabResult]] = {}
    after_exchange: list[LabResult] = []
    for series in Series:
        counting[series] = []
        for value in values.get(series, []):
            if plasmaphereses and lowered_by_exchange(value, plasmaphereses, profile):
                if value.day >= recent:
                    after_exchange.append(value)
            elif not value.upper_bound:
                counting[series].append(value)
    references = {
        series: next((v for v in reversed(counting[series]) if v.day >= recent), None)
        for series in Series
    }
    window = timedelta(days=profile.plasmapheresis_window_days)
    exchanges = [p.day for p in plasmaphereses if today - window <= p.day <= today]
    return ReferenceValues(
        references=references,
        counting=counting,
        after_exchange=after_exchange,
        recent_plasmapheresis=max(exchanges) if exchanges else None,
    )
