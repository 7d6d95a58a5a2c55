"""Cards of the order check (contract "Order check"): one `warning` card when an anti-CD20
antibody is ordered while IgM or serum viscosity is high, one `info` card when no recent IgM
says how high it is (or the drug cannot be identified). No card ever says IgM is low: with no
card to show, the answer is `{"cards": []}`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from cds_service.clinical.models import Caveat, Series
from cds_service.clinical.order_check import WARNING_RULES, OrderCheck, OrderRule

from .build import (
    CLINICAL_JUDGEMENT,
    DATA_INCOMPLETE,
    CardContext,
    caveat_link,
    not_checked,
    override_reasons,
    render,
    topic,
)
from .card_ids import new_card_uuid
from .suggestions import monitoring_igm_suggestion, serum_viscosity_suggestion
from .text import SERIES_NAMES, DisplayUnit, day, escape_markdown

EXTENSION_KEY = "wm-anti-cd20-order-check"
# What the check itself reads besides the drafts (the evidence keys speak through
# `diagnosis_unchecked`): a missing plasmapheresis or result is said on the card.
ORDER_KEYS_READ = ("observations", "procedures")
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


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _extension(check: OrderCheck, draft: str) -> dict[str, Any]:
    body: dict[str, Any] = {"draft": draft, "rule": check.rule.value}
    if check.drugs:
        body["drug"] = " + ".join(check.drugs)
    value = check.reference_value
    if value is not None:
        body["referenceValue"] = {
            "valueMgDl": _number(value.value_mg_dl),
            "date": value.day.isoformat(),
            "series": value.series.value,
        }
    viscosity = check.viscosity
    if viscosity is not None and viscosity.value is not None:
        body["viscosity"] = {
            "value": _number(viscosity.value),
            "unit": viscosity.unit,
            "date": viscosity.day.isoformat(),
        }
    if check.exchanges is not None:
        body["exchanges"] = {
            "count": check.exchanges.count,
            "first": check.exchanges.first.isoformat(),
            "last": check.exchanges.last.isoformat(),
        }
    return {EXTENSION_KEY: body}


def _capitalised(drug: str) -> str:
    """A sentence never starts with a lower-case drug name."""
    return drug[:1].upper() + drug[1:]


def _viscosity_text(check: OrderCheck) -> str | None:
    viscosity = check.viscosity
    if viscosity is None:
        return None
    return f"{escape_markdown(viscosity.text)} ({day(viscosity.day)})"


def _warning_summary(check: OrderCheck, unit: DisplayUnit, drug: str) -> str:
    value = check.reference_value
    if check.rule == OrderRule.VISCOSITY_HIGH:
        assert check.viscosity is not None
        return (
            f"Serum viscosity {check.viscosity.text} ({day(check.viscosity.day)}): {drug} may "
            "cause an IgM flare and worsen hyperviscosity"
        )
    assert value is not None
    series = SERIES_NAMES[value.series]
    shown = f"{unit.result(value)} {unit.label}"
    if check.rule == OrderRule.PRE_EXCHANGE_IGM_HIGH:
        return (
            f"{series} {shown} before plasma exchanges ({day(value.day)}): {drug} may cause "
            "an IgM flare and hyperviscosity"
        )
    return f"{series} {shown} ({day(value.day)}): {drug} may cause an IgM flare and hyperviscosity"


def _warning_card(check: OrderCheck, context: CardContext, draft: str) -> dict[str, Any]:
    value = check.reference_value
    unit = context.unit
    drug = " + ".join(check.drugs)
    details: dict[str, Any] = {
        "drug": _capitalised(drug),
        "viscosity": _viscosity_text(check),
        "exchange": day(check.recent_plasmapheresis) if check.recent_plasmapheresis else None,
        "programme": (
            f"{check.exchanges.count} exchange{'s' if check.exchanges.count != 1 else ''} "
            f"from {day(check.exchanges.first)} to {day(check.exchanges.last)}"
            if check.exchanges
            else None
        ),
        "pre_exchange": check.rule == OrderRule.PRE_EXCHANGE_IGM_HIGH,
        "value": None,
        "not_checked": not_checked(context, only=ORDER_KEYS_READ),
    }
    if value is not None:
        threshold = 4000 if value.series == Series.TOTAL_IGM else 3000
        details["value"] = {
            "series": SERIES_NAMES[value.series],
            "shown": f"{unit.result(value)} {unit.label}",
            "day": day(value.day),
            "method": "nephelometry" if value.series == Series.TOTAL_IGM else "electrophoresis",
            "threshold": f"{unit.figure(Decimal(threshold))} {unit.label}",
        }
    return {
        "uuid": new_card_uuid(),
        "summary": _warning_summary(check, unit, drug),
        "detail": render("order_check_high.md.j2", **details),
        "indicator": "warning",
        "source": {
            **SOURCE,
            "topic": topic(f"anti-cd20-order-{check.rule.value}", "Anti-CD20 with high IgM"),
        },
        "suggestions": [
            serum_viscosity_suggestion(context.patient_id),
            _cancel_suggestion(draft, drug),
        ],
        "selectionBehavior": "at-most-one",
        "links": [
            caveat_link(context, Caveat.ANTI_CD20_FLARE),
            caveat_link(context, Caveat.HYPERVISCOSITY_RISK),
        ],
        "overrideReasons": override_reasons(ORDER_OVERRIDES),
        "extension": _extension(check, draft),
    }


def _cancel_suggestion(draft: str, drug: str) -> dict[str, Any]:
    """contract v3: the card acts on the order it warns about (a client that does not apply
    `delete` still shows the card)."""
    return {
        "label": f"Cancel this {drug} order",
        "uuid": new_card_uuid(),
        "actions": [
            {
                "type": "delete",
                "description": f"Cancel the draft {drug} order",
                "resourceId": draft,
            }
        ],
    }


INFO_SUMMARIES = {
    OrderRule.TOTAL_IGM_MISSING: "Total IgM not measured; the M-spike under-reads high IgM: "
    "measure IgM before starting {drug}",
    OrderRule.DRUG_UNIDENTIFIED: "The drug ordered could not be identified: if it is an "
    "anti-CD20 antibody, check IgM first",
}


def _info_card(check: OrderCheck, context: CardContext, draft: str) -> dict[str, Any]:
    drug = " + ".join(check.drugs) or "the antibody"
    if check.rule in INFO_SUMMARIES:
        summary = INFO_SUMMARIES[check.rule].format(drug=drug)
    elif check.only_after_exchange:
        summary = f"Only post-exchange IgM in the last 3 months: measure IgM before starting {drug}"
    else:
        summary = f"No IgM result in the last 3 months: measure IgM before starting {drug}"
    value = check.reference_value
    return {
        "uuid": new_card_uuid(),
        "summary": summary,
        "detail": render(
            "order_check_missing.md.j2",
            drug=_capitalised(drug),
            rule=check.rule.value,
            m_spike=(
                f"{context.unit.result(value)} {context.unit.label} ({day(value.day)})"
                if value is not None
                else None
            ),
            after_exchange=check.only_after_exchange,
            exchange=day(check.recent_plasmapheresis) if check.recent_plasmapheresis else None,
            unchecked=check.diagnosis_unchecked,
            not_checked=not_checked(context, only=ORDER_KEYS_READ),
        ),
        "indicator": "info",
        "source": {
            **SOURCE,
            "topic": topic(f"anti-cd20-order-{check.rule.value}", "Anti-CD20, IgM unknown"),
        },
        "suggestions": [monitoring_igm_suggestion(context.patient_id, before=drug)],
        "selectionBehavior": "at-most-one",
        "links": [caveat_link(context, Caveat.ANTI_CD20_FLARE)],
        "overrideReasons": override_reasons(ORDER_OVERRIDES),
        "extension": _extension(check, draft),
    }


def build_order_cards(
    check: OrderCheck | None, context: CardContext, draft: str = ""
) -> list[dict[str, Any]]:
    """`draft`: the reference of the checked draft order (named on every card)."""
    if check is None:
        return []
    if check.rule in WARNING_RULES:
        return [_warning_card(check, context, draft)]
    return [_info_card(check, context, draft)]
