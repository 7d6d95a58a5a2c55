"""§3.1 one value per day: repeat draws on one day are one measurement, never a confirmation."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from .criteria import CriteriaProfile
from .models import Discordance, Exclusion, LabResult, Series
from .valuesets import PREFERRED_M_SPIKE_LOINC

REPLACED_SAME_DAY = "another result of the same day stands for that day ({kept})"


@dataclass
class SeriesByDay:
    values: dict[Series, list[LabResult]] = field(default_factory=dict)  # date order
    discordances: list[Discordance] = field(default_factory=list)
    replaced: list[Exclusion] = field(default_factory=list)


def _satisfies(plain: LabResult, bound: LabResult) -> bool:
    """A plain value that the bound allows: a diluted rerun of ">7000" that reads 9200."""
    if bound.lower_bound:
        return plain.value_mg_dl >= bound.value_mg_dl
    return plain.value_mg_dl <= bound.value_mg_dl


def _one_day(results: list[LabResult]) -> LabResult:
    if any(r.code == PREFERRED_M_SPIKE_LOINC for r in results):
        results = [r for r in results if r.code == PREFERRED_M_SPIKE_LOINC]
    plain = [r for r in results if not r.is_bound]
    bounds = [r for r in results if r.is_bound and not any(_satisfies(p, r) for p in plain)]
    # The lowest; bounds compared at their bound; on a tie a plain value wins.
    return min([*plain, *bounds], key=lambda r: (r.value_mg_dl, r.is_bound, r.reference))


def one_value_per_day(results: list[LabResult], profile: CriteriaProfile) -> SeriesByDay:
    grouped: dict[tuple[Series, date], list[LabResult]] = defaultdict(list)
    for result in results:
        grouped[(result.series, result.day)].append(result)
    by_day = SeriesByDay(values={series: [] for series in Series})
    for (series, day), same_day in sorted(grouped.items()):
        if len(same_day) == 1:  # the usual day: one draw, nothing to choose or compare
            by_day.values[series].append(same_day[0])
            continue
        kept = _one_day(same_day)
        by_day.values[series].append(kept)
        for other in same_day:
            if other is not kept:
                by_day.replaced.append(
                    Exclusion(other.reference, REPLACED_SAME_DAY.format(kept=kept.reference))
                )
        plain = [r.value_mg_dl for r in same_day if not r.is_bound]
        if len(plain) > 1:
            low, high = min(plain), max(plain)
            if high * 100 > low * (100 + profile.discordant_percent):
                by_day.discordances.append(Discordance(day, low, high))
    return by_day
