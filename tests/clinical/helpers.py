"""Internal-model builders for testing the clinical core without FHIR or HTTP."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from cds_service.clinical.models import (
    DrugEpisode,
    ImmunofixationResult,
    LabResult,
    PatientRecord,
    Plasmapheresis,
    Series,
)
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
) -> LabResult:
    return LabResult(
        reference=ref or f"Observation/{series.value}-{offset}",
        series=series,
        day=on(offset),
        value_mg_dl=Decimal(str(value)),
        upper_bound=upper,
        lower_bound=lower,
        uln_mg_dl=Decimal(str(uln)) if uln is not None else None,
    )


def episode(
    ingredient: str,
    start: int,
    end: int | None = None,
    *,
    ended: bool | None = None,
    on_hold: bool = False,
    ref: str | None = None,
) -> DrugEpisode:
    (drug,) = drugs_named_in(ingredient)
    return DrugEpisode(
        reference=ref or f"MedicationStatement/{ingredient}-{start}",
        ingredient=drug.ingredient,
        drug_class=drug.drug_class,
        start=on(start),
        end=on(end) if end is not None else None,
        ended=(end is not None and not on_hold) if ended is None else ended,
        on_hold=on_hold,
    )


def record(labs=(), episodes=(), plasmaphereses=(), ifes=()) -> PatientRecord:
    return PatientRecord(
        lab_results=list(labs),
        immunofixations=[
            ImmunofixationResult(f"Observation/ife-{d}", on(d), negative) for d, negative in ifes
        ],
        drug_episodes=list(episodes),
        plasmaphereses=[Plasmapheresis(f"Procedure/pp-{d}", on(d)) for d in plasmaphereses],
    )


def igm_series(*points: tuple[int, float]) -> list[LabResult]:
    return [lab(day, value) for day, value in points]
