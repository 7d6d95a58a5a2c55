"""The trend chart's geometry (pure): what is drawn follows the assessment and the rules."""

from __future__ import annotations

import itertools
from decimal import Decimal

from cards.text import G_L, MG_DL
from cds_service.clinical.assessment import assess_response
from cds_service.clinical.criteria import IWWM6, IWWM6_STRICT
from cds_service.fhir.mapping import to_patient_record
from cds_service.fhir.parsing import parse_resources
from cds_service.smart.chart import NARROW, WIDE, build_chart, thresholds

from ..builders import igm, m_spike, on, plasmapheresis, request_for, statement


def assessed(observations, statements=(), requests=(), procedures=(), profile=IWWM6):
    keyed = {
        "observations": list(observations),
        "medicationStatements": list(statements),
        "medicationRequests": list(requests),
        "procedures": list(procedures),
    }
    record = to_patient_record(parse_resources(keyed, "p1", None))
    return assess_response(record, profile, on(400)), record


def test_thresholds_are_the_iwwm6_lines_of_the_founding_example():
    assessment, _ = assessed(
        [igm("o1", -5, 5100), igm("o2", 360, 2233)], [statement("m1", "zanubrutinib", 0)]
    )
    lines = {kind: level for kind, _, level in thresholds(assessment, IWWM6_STRICT)}
    # IWWM-6: MR >= 25 %, PR >= 50 %, VGPR >= 90 % below baseline; PD >= 25 % above nadir.
    assert lines == {
        "mr": Decimal("3825"),
        "pr": Decimal("2550"),
        "vgpr": Decimal("510"),
        "progression": Decimal("2791.25"),
    }


def test_the_default_profile_progression_line_has_its_500_floor():
    assessment, _ = assessed(
        [igm("o1", -5, 1000), igm("o2", 200, 400)],
        [statement("m1", "zanubrutinib", 0)],
        profile=IWWM6,
    )
    lines = {kind: level for kind, _, level in thresholds(assessment, IWWM6)}
    assert lines["progression"] == Decimal(900)  # 400 + 500 mg/dL beats 400 x 1.25


def test_every_value_is_a_point_and_bounds_are_marked():
    assessment, record = assessed(
        [igm("o1", -5, 5100), igm("o2", 100, 3000), igm("o3", 200, 25, comparator="<")],
        [statement("m1", "zanubrutinib", 0)],
    )
    chart = build_chart(assessment, record.plasmaphereses, IWWM6, on(400), MG_DL)
    assert len(chart.points) == 3
    assert [p.shape for p in chart.points] == ["value", "value", "upper-bound"]
    assert chart.points[0].role == "baseline"
    xs = [p.x for p in chart.points]
    assert xs == sorted(xs)  # in date order
    ys = [p.y for p in chart.points]
    assert ys[0] < ys[1] < ys[2]  # SVG y grows downwards: the highest value is at the top


def test_lines_holds_flares_and_exchanges_are_drawn():
    assessment, record = assessed(
        [igm("o1", -5, 4000), igm("o2", 60, 3900), igm("o3", 150, 2500)],
        [statement("m1", "ibrutinib", 0)],
        [request_for("r1", "rituximab", 30, validity=(30, 60))],
        [plasmapheresis("pp1", 20)],
    )
    chart = build_chart(assessment, record.plasmaphereses, IWWM6, on(400), MG_DL)
    kinds = [band.kind for band in chart.bands]
    assert "line" in kinds and "flare" in kinds
    flare = next(band for band in chart.bands if band.kind == "flare")
    assert flare.x1 > flare.x0
    assert [mark.label for mark in chart.marks] == [f"plasma exchange {on(20).isoformat()}"]


def test_no_values_no_chart_and_g_per_litre_labels():
    assessment, record = assessed([], [statement("m1", "zanubrutinib", 0)])
    assert build_chart(assessment, record.plasmaphereses, IWWM6, on(400), MG_DL) is None
    assessment, record = assessed(
        [igm("o1", -5, 5100), igm("o2", 360, 2233)], [statement("m1", "zanubrutinib", 0)]
    )
    chart = build_chart(assessment, record.plasmaphereses, IWWM6, on(400), G_L, NARROW)
    assert chart.unit == "g/L" and (chart.width, chart.height) == NARROW
    assert any(level.short == "PR 25.5" for level in chart.levels)
    wide = build_chart(assessment, record.plasmaphereses, IWWM6, on(400), MG_DL, WIDE)
    labels = sorted(level.label_y for level in wide.levels)
    assert all(b - a >= 13 for a, b in itertools.pairwise(labels))  # labels never overlap
    assert wide.x_ticks


def chart_of(observations, statements=(), requests=(), today=400):
    keyed = {
        "observations": list(observations),
        "medicationStatements": list(statements),
        "medicationRequests": list(requests),
    }
    record = to_patient_record(parse_resources(keyed, "p1", None))
    assessment = assess_response(record, IWWM6, on(today))
    return build_chart(assessment, [], IWWM6, on(today), MG_DL)


def test_a_hold_on_now_without_a_start_is_drawn_as_the_rules_used_it():
    # E17: the on-hold order has no date; the window runs from the day after the last value
    # that was no rise to today.
    labs = [igm("o1", -7, 3900), igm("o2", 360, 900), igm("o3", 720, 910)]
    labs += [igm("o4", 776, 1500), igm("o5", 804, 1700)]
    orders = [
        request_for("r1", "ibrutinib", 0, status="completed", validity=(0, 749)),
        request_for("r2", "ibrutinib", 750, status="on-hold", validity=(750, None)),
    ]
    chart = chart_of(labs, requests=orders, today=807)
    (hold,) = [b for b in chart.bands if b.kind == "hold"]
    assert hold.label == "ibrutinib held"
    rise = next(p for p in chart.points if p.label.startswith(on(776).isoformat()))
    assert hold.x0 < rise.x


def test_the_withdrawal_window_is_drawn():
    # E19: ibrutinib stopped a week before venetoclax
    labs = [igm("o1", -14, 2100), igm("o2", 0, 2300), igm("o3", 28, 2900), igm("o4", 50, 3100)]
    statements = [
        statement("m1", "ibrutinib", -1793, -7, status="completed"),
        statement("m2", "venetoclax", 0),
    ]
    chart = chart_of(labs, statements, today=53)
    assert [b.label for b in chart.bands if b.kind == "hold"] == ["ibrutinib withdrawal window"]


def test_held_back_and_other_method_values_are_points_off_the_line():
    labs = [igm("o1", -7, 3600), igm("o2", 84, 2100), igm("o3", 182, 16)]
    labs += [m_spike("s1", 200, "1.6"), m_spike("s2", 230, "1.9")]
    chart = chart_of(labs, [statement("m1", "ibrutinib", 0)], today=233)
    shapes = {p.shape for p in chart.points}
    assert {"held-back", "other-series"} <= shapes
    held = [p for p in chart.points if p.shape == "held-back"]
    assert "held back" in held[0].label and f"{held[0].x},{held[0].y}" not in chart.path
    other = [p for p in chart.points if p.shape == "other-series"]
    assert len(other) == 2 and all(f"{p.x},{p.y}" not in chart.path for p in other)
