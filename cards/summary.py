"""The response card's summary, piece by piece (contract.md, "The summary, piece by piece").

`HEAD[: FACTS][REGIMEN][NOTES]`: each piece comes in a long and a shorter form, and the first
combination that fits in 139 characters is used. Words are never cut.
"""

from __future__ import annotations

from datetime import date

from cds_service.clinical.models import (
    Assessment,
    Category,
    Caveat,
    LineStatus,
    Series,
    WindowKind,
)

from .text import MG_DL, SERIES_NAMES, DisplayUnit, category_label, day, percent, signed_percent

SUMMARY_LIMIT = 139  # CDS Hooks: summary < 140 characters
# contract.md: the summary names the latest value's date when it is older than this.
STALE_SUMMARY_DAYS = 92
UNTREATED_HEAD = "IgM trend, no WM treatment found"
# contract v2: a treatment history known to be incomplete never reads "no WM treatment".
UNTREATED_INCOMPLETE_HEAD = "IgM trend, treatment records could not all be read"
TREATMENT_KEYS = ("medicationStatements", "medicationRequests", "medicationAdministrations")
NOT_RECOGNISED = "not recognised as a WM treatment"
# A record naming its drug only by a Medication that could not be read (fhir.mapping).
UNRESOLVED = "could not be resolved"
WINDOW_WORDS = {
    WindowKind.BTKI_HOLD: ("BTK-inhibitor hold", "BTKi hold"),
    WindowKind.ANTI_CD20_FLARE: ("anti-CD20 flare window", "flare window"),
    WindowKind.BTKI_WITHDRAWAL: ("BTK-inhibitor withdrawal", "BTKi withdrawal"),
}
# (FACTS, REGIMEN) combinations, in the order the contract tries them: 0 with values / full
# regimen, 1 without values / short regimen, 2 no regimen.
_COMBINATIONS = ((0, 0), (0, 1), (1, 0), (1, 1), (0, 2), (1, 2))


def treatment_incomplete(unavailable: tuple[str, ...]) -> bool:
    return any(key in unavailable for key in TREATMENT_KEYS)


def records_not_all_read(assessment: Assessment, unavailable: tuple[str, ...]) -> bool:
    """contract: a treatment key could not be read, or a record was left out as not
    recognised (§3.3) or because its Medication could not be read: "no WM treatment found"
    would then say more than the data."""
    return treatment_incomplete(unavailable) or any(
        e.reason.startswith(NOT_RECOGNISED) or e.reason.endswith(UNRESOLVED)
        for e in assessment.excluded
    )


def _head(assessment: Assessment, unavailable: tuple[str, ...]) -> str:
    if assessment.line is None:
        if records_not_all_read(assessment, unavailable):
            return UNTREATED_INCOMPLETE_HEAD
        return UNTREATED_HEAD
    if assessment.category == Category.SD and assessment.provisional_until is not None:
        head = (
            f"Stable disease (SD), provisional (flare window until "
            f"{day(assessment.provisional_until)}), {assessment.criteria}"
        )
    else:
        head = f"{category_label(assessment.category)}, {assessment.criteria}"
    if Caveat.LOW_BASELINE in assessment.caveats and assessment.category != Category.NE:
        head += " (low baseline)"
    return head


def _facts(assessment: Assessment, series: str, today: date, unit: DisplayUnit) -> list[str]:
    """FACTS with values, then without values."""
    baseline, latest, nadir = assessment.baseline, assessment.latest, assessment.nadir
    if latest is None:
        return ["", ""]
    stale = ""
    if (today - latest.day).days > STALE_SUMMARY_DAYS:
        stale = f", latest {day(latest.day)}"
    if assessment.line is None:
        # §4.10: the trend, never a nadir
        text = f": latest {series} {unit.result(latest)} {unit.label} ({day(latest.day)})"
        if assessment.change_12_months is not None:
            text += f", {signed_percent(assessment.change_12_months.percent_change)} over 12 months"
        return [text, text]
    if assessment.category == Category.PD and nadir is not None:
        rise = (
            signed_percent(assessment.percent_change_from_nadir)
            if assessment.percent_change_from_nadir is not None
            else "rising"
        )
        confirmed = (
            f", confirmed {day(assessment.progression_confirmed)}"
            if assessment.progression_confirmed
            else ""
        )
        if Caveat.PD_THEN_FALL in assessment.caveats:
            confirmed += ", since fallen"
        risen_to = assessment.progression_value or latest
        values = f" ({unit.result(nadir)} -> {unit.result(risen_to)} {unit.label})"
        return [
            f": {series} {rise} from nadir{values}{confirmed}",
            f": {series} {rise} from nadir{confirmed}",
        ]
    if assessment.category == Category.NE and assessment.reason:
        return [f": {assessment.reason}{stale}"] * 2
    if assessment.percent_change is not None and baseline is not None:
        change = percent(assessment)
        values = f" ({unit.result(baseline)} -> {unit.result(latest)} {unit.label})"
        return [f": {series} {change}{values}{stale}", f": {series} {change}{stale}"]
    return [stale and f": latest {day(latest.day)}"] * 2


def _regimen(assessment: Assessment) -> list[str]:
    """REGIMEN full, short, none (none only on NE cards with a reason)."""
    line = assessment.line
    if (
        line is None
        or not line.regimen
        or (assessment.category == Category.NE and assessment.reason)
    ):
        return ["", "", ""]
    unrecognised = {c.ingredient for c in line.unrecognised}
    regimen = tuple("unrecognised agent" if n in unrecognised else n for n in line.regimen)
    full, short = " + ".join(regimen), regimen[0]
    if len(regimen) > 1:
        short += f" + {len(regimen) - 1} more"
    is_pd = assessment.category == Category.PD
    ended = assessment.line_ended
    texts = []
    for names in (full, short):
        if ended is not None:
            confirmed = assessment.progression_confirmed
            if is_pd and confirmed is not None and confirmed > ended:
                text = f" off therapy since {day(ended)} ({names})"
            else:
                text = f" after {names} (ended {day(ended)})"
        elif assessment.line_status == LineStatus.ON_HOLD and assessment.held_drug:
            held = "" if len(regimen) == 1 else f"{assessment.held_drug} "
            text = f" on {names} ({held}on hold now)"
        elif assessment.switched_from:
            drug, when = assessment.switched_from[-1]
            text = f" on {names} (switched from {drug} on {day(when)})"
        else:
            text = f" on {names}"
        texts.append("," + text if is_pd else text)
    return [*texts, ""]


def _notes(assessment: Assessment, series: str, unit: DisplayUnit) -> list[tuple[str, str]]:
    """(long, short) for each note that applies, in the contract's order."""
    notes: list[tuple[str, str]] = []
    is_ne = assessment.category == Category.NE
    warning = _warning_note(assessment)
    if warning and not (is_ne and assessment.reason and "repeat" in assessment.reason):
        notes.append((warning, warning))
    if is_ne or assessment.category == Category.PD:
        return notes
    suppressed = assessment.rise_suppressed
    if suppressed is not None and assessment.percent_change_from_nadir is not None:
        rise = signed_percent(assessment.percent_change_from_nadir)
        long_words, short_words = WINDOW_WORDS[suppressed.window]
        when = "after" if suppressed.recovery else "during"
        repeat = f", repeat after {day(suppressed.until)}" if suppressed.until else ""
        notes.append(
            (
                f"; {series} {rise} from nadir {when} {long_words}{repeat}",
                f"; {rise} from nadir {when} {short_words}{repeat}",
            )
        )
    if assessment.cr_lost is not None:
        lost = f"; CR lost since {day(assessment.cr_lost)}"
        notes.append((lost, lost))
    if assessment.rise_below_floor is not None and assessment.percent_change_from_nadir:
        rise = signed_percent(assessment.percent_change_from_nadir)
        amount = f"+{unit.figure(assessment.rise_below_floor)} {unit.label}"
        floor = f"{unit.figure(500)} {unit.label}"
        notes.append(
            (
                f"; {series} {rise} from nadir ({amount}), under the {floor} progression "
                "floor: repeat in the same laboratory",
                f"; {rise} from nadir ({amount}), under the {floor} floor",
            )
        )
    return notes


def _warning_note(assessment: Assessment) -> str:
    """contract.md: a warning card's summary says why."""
    if assessment.category == Category.PD or Caveat.UNCONFIRMED_PROGRESSION not in (
        assessment.caveats
    ):
        return ""
    if assessment.rise_after_cr:
        return "; IgM rising after CR, repeat immunofixation"
    other = assessment.other_series
    if other is not None and other.rising:
        if other.series == Series.M_SPIKE:
            return "; M-spike rising: measure total IgM in the usual laboratory"
        return "; IgM rising: measure the M-spike in the usual laboratory"
    return "; IgM rising, repeat to confirm"


def response_summary(
    assessment: Assessment,
    today: date,
    unavailable: tuple[str, ...] = (),
    unit: DisplayUnit = MG_DL,
) -> str:
    """The first combination of the pieces that fits in 139 characters (contract.md)."""
    head = _head(assessment, unavailable)
    series = SERIES_NAMES.get(assessment.series, "IgM") if assessment.series else "IgM"
    facts = _facts(assessment, series, today, unit)
    regimens = _regimen(assessment)
    notes = _notes(assessment, series, unit)
    if "observations" in unavailable:
        # contract v3: results the server did not return are said, never read as complete
        notes.append((f"; some {series} results not returned", "; results incomplete"))
    long_notes = "".join(long for long, _ in notes)
    short_notes = "".join(short for _, short in notes)
    for notes_text in dict.fromkeys((long_notes, short_notes)):
        for fact, regimen in _COMBINATIONS:
            summary = head + facts[fact] + regimens[regimen] + notes_text
            if len(summary) <= SUMMARY_LIMIT:
                return summary
    for fallback in (head + short_notes, head + (notes[0][1] if notes else "")):
        if len(fallback) <= SUMMARY_LIMIT:
            return fallback
    return head
