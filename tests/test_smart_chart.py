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

from .builders import igm, on, plasmapheresis, request_for, statement


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
