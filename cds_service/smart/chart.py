"""The IgM course as a chart: geometry for an SVG, from an assessment (pure, no I/O).

Everything drawn comes from the assessment the cards are built from: the series' values as
the rules used them (one per day, clinical-rules.md §3.1), baseline and nadir (§4.2-4.3),
the thresholds of IWWM-6 relative to the baseline and the progression line relative to the
nadir (§4.4-4.5), the lines of therapy (§3.5) with their holds, the anti-CD20 flare windows
(§4.6) and plasma exchanges (§3.6). Plotting libraries were weighed: matplotlib costs a
second of import and tens of MB per worker and writes SVG without text alternatives; pygal
has no shaded periods or labelled reference lines. The geometry is small, so it is here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal

from cards.text import SERIES_NAMES, DisplayUnit

from ..clinical.criteria import CriteriaProfile
from ..clinical.models import (
    Assessment,
    Category,
    LabResult,
    Plasmapheresis,
    WindowKind,
)

# Two sizes, switched by the page's CSS: text stays about 12 px both in a 1200 px window and
# in a 400 px panel (an 800-unit-wide drawing shrunk to 400 px would halve it).
WIDE = (800, 440)
NARROW = (420, 360)
LEFT, TOP, BOTTOM = 56, 28, 40  # margins around the plot area
# The reference lines are labelled in a gutter right of the plot, clear of the points.
GUTTER = {WIDE: 150, NARROW: 96}
LABEL_GAP = 13  # labels closer than this are moved apart


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str  # "2024-01-15: 5100 mg/dL (baseline)"
    shape: str  # "value", "upper-bound" (a "<" value), "lower-bound" (">")
    role: str  # "", "baseline", "nadir", "latest"


@dataclass(frozen=True)
class Level:
    """A horizontal reference line."""

    y: float
    label: str
    kind: str  # "baseline", "mr", "pr", "vgpr", "progression"
    short: str  # for the gutter: "PR 2550"
    label_y: float = 0.0  # where its label sits, moved apart from its neighbours


@dataclass(frozen=True)
class Band:
    """A shaded period: a line of therapy, a hold, a flare window."""

    x0: float
    x1: float
    label: str
    kind: str  # "line", "hold", "flare"
    row: int  # lines alternate rows so neighbouring labels do not collide


@dataclass(frozen=True)
class Mark:
    """A vertical marker: a plasma exchange."""

    x: float
    label: str


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    plot: tuple[float, float, float, float]  # x0, y0, x1, y1
    points: tuple[Point, ...]
    path: str  # the polyline through the values, in date order
    levels: tuple[Level, ...]
    bands: tuple[Band, ...]
    marks: tuple[Mark, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    unit: str
    title: str
    description: str


def _nice_step(span: float) -> float:
    raw = span / 5
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def _figure(value: float) -> str:
    return f"{value:g}" if value < 1e6 else f"{value:.3g}"


def thresholds(assessment: Assessment, profile: CriteriaProfile) -> list[tuple[str, str, Decimal]]:
    """(kind, label, mg/dL) of the IWWM-6 lines for this assessment: MR, PR and VGPR from the
    baseline (§4.4), progression from the nadir (§4.5; with the trial profile's floor)."""
    found: list[tuple[str, str, Decimal]] = []
    baseline = assessment.baseline
    if baseline is not None and assessment.series is not None:
        value = baseline.value_mg_dl
        for kind, percent in (
            ("mr", profile.mr_reduction_percent),
            ("pr", profile.pr_reduction_percent),
            ("vgpr", profile.vgpr_reduction_percent),
        ):
            level = value * (100 - percent) / 100
            found.append((kind, f"{kind.upper()}: {percent}% below baseline", level))
    nadir = assessment.nadir
    if nadir is not None and assessment.line is not None and nadir.value_mg_dl > 0:
        factor = profile.progression_factor
        level = nadir.value_mg_dl * factor.numerator / factor.denominator
        label = f"progression: nadir × {float(factor):g}"
        if profile.progression_min_rise_mg_dl is not None:
            floor = nadir.value_mg_dl + profile.progression_min_rise_mg_dl
            if floor > level:
                level = floor
                label = f"progression: nadir + {profile.progression_min_rise_mg_dl} mg/dL"
        found.append(("progression", label, level))
    return found


def _role(result: LabResult, assessment: Assessment) -> str:
    for role, marked in (
        ("baseline", assessment.baseline),
        ("nadir", assessment.nadir),
        ("latest", assessment.latest),
    ):
        if marked is not None and marked.reference == result.reference:
            return role
    return ""


def build_chart(
    assessment: Assessment,
    plasmaphereses: list[Plasmapheresis],
    profile: CriteriaProfile,
    today: date,
    unit: DisplayUnit,
    size: tuple[int, int] = WIDE,
) -> Chart | None:
    """The chart, or None when there is no value to draw."""
    values = list(assessment.values)
    if not values:
        return None
    first = min([v.day for v in values] + [line.start for line in assessment.lines])
    start, end = first - timedelta(days=30), today + timedelta(days=30)
    days = max((end - start).days, 1)
    width, height = size
    x0, y0, x1, y1 = LEFT, TOP, width - GUTTER.get(size, 120), height - BOTTOM

    def x(day: date) -> float:
        clamped = min(max(day, start), end)
        return round(x0 + (x1 - x0) * (clamped - start).days / days, 1)

    levels_mg_dl = thresholds(assessment, profile)
    other = assessment.other_series
    extra = [*assessment.held_back, *(other.values if other else ())]
    highest = max(
        [float(v.value_mg_dl * unit.per_mg_dl) for v in [*values, *extra]]
        + [float(level * unit.per_mg_dl) for _, _, level in levels_mg_dl]
    )
    step = _nice_step(highest * 1.1 or 1)
    top = step * math.ceil(highest * 1.1 / step) or step

    def y(value_mg_dl: Decimal) -> float:
        return round(y1 - (y1 - y0) * float(value_mg_dl * unit.per_mg_dl) / top, 1)

    points = []
    for result in values:
        role = _role(result, assessment)
        shape = {"<": "upper-bound", "<=": "upper-bound", ">": "lower-bound", ">=": "lower-bound"}
        text = f"{result.day.isoformat()}: {_value_text(result, unit)}"
        points.append(
            Point(
                x(result.day),
                y(result.value_mg_dl),
                text + (f" ({role})" if role else ""),
                shape.get(result.comparator or "", "value"),
                role,
            )
        )
    path = " ".join(f"{p.x},{p.y}" for p in points)
    # §3.1 held-back values and §4.1 newer values of the other method: drawn, never joined
    # to the series' line (they are no part of it, and methods are never compared).
    for result in assessment.held_back:
        points.append(
            Point(
                x(result.day),
                y(result.value_mg_dl),
                f"{result.day.isoformat()}: {_value_text(result, unit)} (held back: "
                "implausible change, check the unit)",
                "held-back",
                "",
            )
        )
    for result in other.values if other else ():
        points.append(
            Point(
                x(result.day),
                y(result.value_mg_dl),
                f"{result.day.isoformat()}: {SERIES_NAMES[result.series]} "
                f"{_value_text(result, unit)} (another method: not compared)",
                "other-series",
                "",
            )
        )
    levels = []
    if assessment.baseline is not None:
        baseline_text = _value_text(assessment.baseline, unit)
        levels.append(
            Level(
                y(assessment.baseline.value_mg_dl),
                f"baseline {baseline_text}",
                "baseline",
                f"baseline {unit.result(assessment.baseline)}",
            )
        )
    for kind, label, level in levels_mg_dl:
        name = "PD line" if kind == "progression" else kind.upper()
        levels.append(
            Level(
                y(level),
                f"{label} ({unit.level(level)} {unit.label})",
                kind,
                f"{name} {unit.level(level)}",
            )
        )
    levels = _spread(levels)
    bands = _bands(assessment, profile, today, x)
    marks = tuple(
        Mark(x(p.day), f"plasma exchange {p.day.isoformat()}")
        for p in plasmaphereses
        if start <= p.day <= end
    )
    return Chart(
        width=width,
        height=height,
        plot=(x0, y0, x1, y1),
        points=tuple(points),
        path=path,
        levels=tuple(levels),
        bands=bands,
        marks=marks,
        x_ticks=_date_ticks(start, end, x, 8 if width >= 600 else 4),
        y_ticks=tuple(
            Tick(round(y1 - (y1 - y0) * k * step / top, 1), _figure(k * step))
            for k in range(round(top / step) + 1)
        ),
        unit=unit.label,
        title=_title(assessment),
        description=_description(assessment, values, unit),
    )


def _spread(levels: list[Level]) -> list[Level]:
    """Labels at least LABEL_GAP apart, in the order of their lines (top to bottom)."""
    placed: list[Level] = []
    for level in sorted(levels, key=lambda level: level.y):
        at = level.y + 4
        if placed and at - placed[-1].label_y < LABEL_GAP:
            at = placed[-1].label_y + LABEL_GAP
        placed.append(replace(level, label_y=round(at, 1)))
    return placed


def _value_text(result: LabResult, unit: DisplayUnit) -> str:
    return f"{unit.result(result)} {unit.label}"


WINDOW_BANDS = {
    WindowKind.BTKI_HOLD: ("held", "hold"),
    WindowKind.BTKI_WITHDRAWAL: ("withdrawal window", "hold"),
    WindowKind.ANTI_CD20_FLARE: ("flare window", "flare"),
}


def _bands(
    assessment: Assessment, profile: CriteriaProfile, today: date, x: Callable[[date], float]
) -> tuple[Band, ...]:
    bands: list[Band] = []
    lines = assessment.lines
    for row, line in enumerate(lines):
        ends = [c.end for c in line.main_courses if c.end is not None]
        ongoing = line.ongoing_on(today) or not ends
        last = today if ongoing else max(ends)
        following = lines[row + 1].start if row + 1 < len(lines) else None
        replaced = following is not None and following <= last
        if replaced:
            last = following  # the next line (an add-on, a new regimen) takes over here
        label = " + ".join(line.regimen) + (" (ongoing)" if ongoing and not replaced else "")
        bands.append(Band(x(line.start), x(last), label, "line", row % 2))
    # §4.6: the windows of the current line, as the rules used them: holds (on hold now
    # included, with or without a recorded start), withdrawal, flare windows.
    row = (len(lines) - 1) % 2 if lines else 0
    for window in assessment.windows:
        label, kind = WINDOW_BANDS[window.kind]
        drug = f"{window.drug} " if window.drug else ""
        bands.append(Band(x(window.start), x(window.end), f"{drug}{label}", kind, row))
    return tuple(bands)


def _date_ticks(start: date, end: date, x: Callable[[date], float], most: int) -> tuple[Tick, ...]:
    years = end.year - start.year
    ticks = []
    if years >= 2:
        stride = max(1, math.ceil(years / most))
        for year in range(start.year + 1, end.year + 1, stride):
            ticks.append(Tick(x(date(year, 1, 1)), str(year)))
    else:
        month = date(start.year, start.month, 1)
        stride = 1 if (end - start).days <= 200 else 3 if most >= 8 else 6
        while month <= end:
            if month >= start and (month.month - 1) % stride == 0:
                ticks.append(Tick(x(month), month.strftime("%b %Y")))
            month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return tuple(ticks)


def _title(assessment: Assessment) -> str:
    series = (
        "IgM"
        if assessment.series is None or assessment.series.value == "total-igm"
        else ("M-spike")
    )
    if assessment.category == Category.NE:
        return f"{series} over time (response not evaluable)"
    return f"{series} over time: {assessment.category.value}"


def _description(assessment: Assessment, values: list[LabResult], unit: DisplayUnit) -> str:
    first, last = values[0], values[-1]
    parts = [
        f"{len(values)} values from {first.day.isoformat()} ({_value_text(first, unit)}) "
        f"to {last.day.isoformat()} ({_value_text(last, unit)})."
    ]
    if assessment.baseline is not None:
        parts.append(
            f"Baseline {_value_text(assessment.baseline, unit)} on "
            f"{assessment.baseline.day.isoformat()}."
        )
    if assessment.nadir is not None:
        parts.append(
            f"Nadir {_value_text(assessment.nadir, unit)} on {assessment.nadir.day.isoformat()}."
        )
    parts.append("Every value is listed in the table below the chart.")
    return " ".join(parts)
