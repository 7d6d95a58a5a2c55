"""Internal-model builders for testing the clinical core without FHIR or HTTP."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from cds_service.clinical.criteria import IWWM6, CriteriaProfile
from cds_service.clinical.models import (
    DrugEpisode,
    EpisodeSource,
    IfeReading,
    ImmunofixationResult,
    LabResult,
    PatientRecord,
    Plasmapheresis,
    Series,
    TherapyLine,
)
from cds_service.clinical.therapy import TreatmentHistory, treatment_history
from cds_service.clinical.valuesets import drugs_named_in

DAY0 = date(2024, 1, 15)


def on(offset: int) -> date:
    return DAY0 + timedelta(days=offset)


def lab(
    offset: int,
    value,
    series: Series = Series.TOTAL_IGM,
    *,
    upper: bool = False,
    lower: bool = False,
    uln=None,
    ref: str | None = None,
    code: str | None = None,
) -> LabResult:
    return LabResult(
        reference=ref or f"Observation/{series.value}-{offset}",
        series=series,
        day=on(offset),
        value_mg_dl=Decimal(str(value)),
        comparator="<" if upper else ">" if lower else None,
        uln_mg_dl=Decimal(str(uln)) if uln is not None else None,
        code=code,
    )


def episode(
    ingredient: str,
    start: int,
    end: int | None = None,
    *,
    on_hold: bool = False,
    ref: str | None = None,
    source: EpisodeSource = EpisodeSource.STATEMENT,
    runs_to: int | None = None,
) -> DrugEpisode:
    (drug,) = drugs_named_in(ingredient)
    return DrugEpisode(
        reference=ref or f"{source.value}/{ingredient}-{start}",
        ingredient=drug.ingredient,
        drug_class=drug.drug_class,
        start=on(start),
        end=on(end) if end is not None else None,
        on_hold=on_hold,
        source=source,
        order_runs_to=on(runs_to) if runs_to is not None else None,
    )


def order(ingredient: str, start: int, end: int | None = None, **kw) -> DrugEpisode:
    return episode(ingredient, start, end, source=EpisodeSource.REQUEST, **kw)


def record(labs=(), episodes=(), plasmaphereses=(), ifes=()) -> PatientRecord:
    return PatientRecord(
        lab_results=list(labs),
        immunofixations=[
            ImmunofixationResult(f"Observation/ife-{d}", on(d), _reading(negative))
            for d, negative in ifes
        ],
        drug_episodes=list(episodes),
        plasmaphereses=[Plasmapheresis(f"Procedure/pp-{d}", on(d)) for d in plasmaphereses],
    )


def igm_series(*points: tuple[int, float]) -> list[LabResult]:
    return [lab(day, value) for day, value in points]


def _reading(negative: bool | IfeReading) -> IfeReading:
    if isinstance(negative, IfeReading):
        return negative
    return IfeReading.NEGATIVE if negative else IfeReading.POSITIVE


def m_spike(offset: int, grams_per_dl, **kw) -> LabResult:
    return lab(offset, Decimal(str(grams_per_dl)) * 1000, Series.M_SPIKE, **kw)


class FixedProgression:
    """Answers §3.5's questions about rises and PD as a test says (for therapy tests only;
    the assessment answers them from laboratory values)."""

    def __init__(self, rise: bool = False, pd: bool = False) -> None:
        self.rise, self.pd = rise, pd

    def rise_before(self, line: TherapyLine, day: date) -> bool:
        return self.rise

    def confirmed_pd_before(self, line: TherapyLine, day: date) -> bool:
        return self.pd


def history(
    *episodes: DrugEpisode,
    today: int = 1000,
    rise: bool = False,
    pd: bool = False,
    profile: CriteriaProfile = IWWM6,
) -> TreatmentHistory:
    return treatment_history(list(episodes), on(today), profile, FixedProgression(rise, pd))
