"""Cards of the order check (contract "Order check"): one `warning` card when an anti-CD20
antibody is ordered while IgM is high, one `info` card when no recent IgM says how high it
is. No card ever says IgM is low: with no card to show, the answer is `{"cards": []}`."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from cds_service.clinical.models import Caveat, Series
from cds_service.clinical.order_check import OrderCheck, OrderRule

from .build import (
    CLINICAL_JUDGEMENT,
    DATA_INCOMPLETE,
    CardContext,
    caveat_link,
    override_reasons,
    render,
    topic,
)
from .suggestions import monitoring_igm_suggestion, serum_viscosity_suggestion
from .text import SERIES_NAMES, day

EXTENSION_KEY = "wm-anti-cd20-order-check"
ORDER_OVERRIDES = (
    ("exchange-planned", "Plasmapheresis is done or planned before the antibody"),
    ("risk-accepted", "Flare risk weighed and accepted for this patient"),
    DATA_INCOMPLETE,
    CLINICAL_JUDGEMENT,
)
SOURCE = {
    "label": "IWWM-8 treatment recommendations (Leblond et al., Blood 2016); "
    "Ghobrial et al., Cancer 2004",
    "url": "https://pubmed.ncbi.nlm.nih.gov/15493038/",
}


def _extension(check: OrderCheck) -> dict[str, Any]:
    body: dict[str, Any] = {"drug": " + ".join(check.drugs), "rule": check.rule.value}
    value = check.reference_value
    if value is not None:
        number = value.value_mg_dl
        body["referenceValue"] = {
            "valueMgDl": int(number) if number == number.to_integral_value() else float(number),
            "date": value.day.isoformat(),
            "series": value.series.value,
        }
    return {EXTENSION_KEY: body}


def _high_card(check: OrderCheck, context: CardContext) -> dict[str, Any]:
    value = check.reference_value
    assert value is not None
    unit = context.unit
    drug = " + ".join(check.drugs)
    series = SERIES_NAMES[value.series]
    threshold = 4000 if value.series == Series.TOTAL_IGM else 3000
    shown = f"{unit.result(value)} {unit.label}"
    return {
        "uuid": str(uuid.uuid4()),
        "summary": f"{series} {shown} ({day(value.day)}): {drug} may cause an IgM flare and "
        "hyperviscosity",
        "detail": render(
            "order_check_high.md.j2",
            drug=drug,
            series=series,
            value=shown,
            day=day(value.day),
            method="nephelometry" if value.series == Series.TOTAL_IGM else "electrophoresis",
            threshold=f"{unit.figure(Decimal(threshold))} {unit.label}",
            exchange=day(check.recent_plasmapheresis) if check.recent_plasmapheresis else None,
        ),
        "indicator": "warning",
        "source": {
            **SOURCE,
            "topic": topic("anti-cd20-order-igm-high", "Anti-CD20 with high IgM"),
        },
        "suggestions": [serum_viscosity_suggestion(context.patient_id)],
        "selectionBehavior": "at-most-one",
        "links": [
            caveat_link(context, Caveat.ANTI_CD20_FLARE),
            caveat_link(context, Caveat.HYPERVISCOSITY_RISK),
        ],
        "overrideReasons": override_reasons(ORDER_OVERRIDES),
        "extension": _extension(check),
    }


def _missing_card(check: OrderCheck, context: CardContext) -> dict[str, Any]:
    drug = " + ".join(check.drugs)
    if check.only_after_exchange:
        summary = f"Only post-exchange IgM in the last 3 months: measure IgM before starting {drug}"
    else:
        summary = f"No IgM result in the last 3 months: measure IgM before starting {drug}"
    return {
        "uuid": str(uuid.uuid4()),
        "summary": summary,
        "detail": render(
            "order_check_missing.md.j2",
            drug=drug,
            after_exchange=check.only_after_exchange,
            exchange=day(check.recent_plasmapheresis) if check.recent_plasmapheresis else None,
        ),
        "indicator": "info",
        "source": {
            **SOURCE,
            "topic": topic("anti-cd20-order-igm-missing", "Anti-CD20, IgM unknown"),
        },
        "suggestions": [monitoring_igm_suggestion(context.patient_id, before=drug)],
        "selectionBehavior": "at-most-one",
        "links": [caveat_link(context, Caveat.ANTI_CD20_FLARE)],
        "overrideReasons": override_reasons(ORDER_OVERRIDES),
        "extension": _extension(check),
    }


def build_order_cards(check: OrderCheck | None, context: CardContext) -> list[dict[str, Any]]:
    if check is None:
        return []
    if check.rule == OrderRule.IGM_HIGH:
        return [_high_card(check, context)]
    return [_missing_card(check, context)]
