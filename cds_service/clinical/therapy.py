"""Treatment history: episodes -> courses with holds -> lines of therapy (clinical-rules.md
§3.3-3.5).

Lines are regimens (Rajkumar-2015). Rules 2 and 3 of §3.5 ask whether IgM rose, or
progression was confirmed, on the line built so far: the caller answers those questions
through `ProgressionCheck`, so this module needs no laboratory data.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Protocol

from .courses import build_courses
from .criteria import CriteriaProfile
from .models import (
    DrugClass,
    DrugEpisode,
    EpisodeSource,
    Exclusion,
    Hold,
    LineStatus,
    TherapyLine,
    TransplantProcedure,
    TreatmentCourse,
)

ON_HOLD_BEFORE_ANY_DOSE = "on hold before any dose: not treatment taken"
PARTNER_OUTSIDE_REGIMEN = "{ingredient} outside a WM regimen: not a line of therapy"
STARTS_AFTER_TODAY = "starts after today ({start}): planned, in no line yet"


class ProgressionCheck(Protocol):
    """§3.5: the questions rules 2 and 3 ask of the line built so far (§4.5)."""

    def rise_before(self, line: TherapyLine, day: date) -> bool:
        """A rise over the line's nadir dated before `day`, in either series (no windows)."""
        ...

    def confirmed_pd_before(self, line: TherapyLine, day: date) -> bool:
        """Confirmed progression on the line dated before `day`, in either series."""
        ...


@dataclass
class TreatmentHistory:
    """Lines of therapy, and the records that had to be left out of them (with why)."""

    lines: list[TherapyLine] = field(default_factory=list)
    excluded: list[Exclusion] = field(default_factory=list)
    anti_cd20_starts: list[date] = field(default_factory=list)  # every course, any line
    courses: list[TreatmentCourse] = field(default_factory=list)  # every course, any line

    def current_line(self, today: date) -> TherapyLine | None:
        """§3.5: the latest line that started on or before today, ongoing or ended."""
        started = [line for line in self.lines if line.start <= today]
        return started[-1] if started else None


# §3.3 episodes that depend on today or on other records ------------------------------------


def _prepare(
    episodes: list[DrugEpisode], today: date, profile: CriteriaProfile
) -> tuple[list[DrugEpisode], list[Exclusion]]:
    """Apply the §3.3 rules that look past one record: unrenewed orders end, an order on
    hold before any dose is left out, and future records count only as written-ahead refills.
    """
    excluded: list[Exclusion] = []
    unrenewed = timedelta(days=profile.unrenewed_order_days)
    prepared: list[DrugEpisode] = []
    for episode in episodes:
        runs_to = episode.order_runs_to
        if episode.end is None and runs_to is not None and runs_to < today - unrenewed:
            episode = replace(episode, end=runs_to)  # an order nobody renewed ended there
        prepared.append(episode)
    kept: list[DrugEpisode] = []
    gap = timedelta(days=profile.course_gap_days)
    for episode in prepared:
        same = [e for e in prepared if e.ingredient == episode.ingredient and e is not episode]
        on_hold_order = episode.source == EpisodeSource.REQUEST and episode.on_hold
        if on_hold_order and not any(e.start < episode.start for e in same):
            excluded.append(Exclusion(episode.reference, ON_HOLD_BEFORE_ANY_DOSE))
            continue
        if episode.start > today:
            # Refills are often written ahead: an order following an order of the same
            # ingredient within the course gap continues that course.
            follows_order = episode.source == EpisodeSource.REQUEST and any(
                e.source == EpisodeSource.REQUEST
                and e.start <= today
                and episode.start - (e.end or episode.start) <= gap
                for e in same
            )
            if not follows_order:
                reason = STARTS_AFTER_TODAY.format(start=episode.start.isoformat())
                excluded.append(Exclusion(episode.reference, reason))
                continue
        kept.append(episode)
    return kept, excluded


# §3.5 lines of therapy ----------------------------------------------------------------------


def _add_course(
    course: TreatmentCourse,
    lines: list[TherapyLine],
    check: ProgressionCheck,
    profile: CriteriaProfile,
) -> None:
    if not lines or course.drug_class == DrugClass.AUTOLOGOUS_TRANSPLANT:  # rules 1 and 2
        lines.append(TherapyLine(start=course.start, courses=(course,)))
        return
    line = lines[-1]
    switched = _switched_from(course, line, check, profile)
    if switched is not None:  # rule 3: a switch within the BTKi class keeps the line
        lines[-1] = _switch(line, switched, course)
        return
    after_start = (course.start - line.start).days
    joins = after_start <= profile.line_grouping_days  # rule 4
    if (
        not joins
        and course.drug_class == DrugClass.ANTI_CD20
        and not line.has_class(DrugClass.BTKI)
        and after_start <= profile.deferred_anti_cd20_days
        and not check.rise_before(line, course.start)
    ):
        joins = True  # rule 4, EMN-BDR: rituximab deferred to a later cycle
    if joins:
        lines[-1] = replace(line, courses=(*line.courses, course))
        return
    ended = line.ended_on(course.start)
    if (
        course.ingredient in line.regimen
        and not check.confirmed_pd_before(line, course.start)
        and (ended is None or (course.start - ended).days <= profile.recourse_days)
    ):  # rule 5: a re-course; the baseline does not move
        lines[-1] = replace(
            line, courses=(*line.courses, course), recourses=(*line.recourses, course)
        )
        return
    if (
        line.ongoing_on(course.start) and course.drug_class != DrugClass.UNRECOGNISED
    ):  # rule 6: an agent added to a running regimen
        carry_until = course.start + timedelta(days=profile.add_on_carry_min_days)
        carried = tuple(
            c
            for c in line.main_courses
            if c.ongoing_on(course.start)
            and c.drug_class != course.drug_class
            and not (c.end is not None and c.end <= carry_until)
        )
        if carried:
            lines.append(
                TherapyLine(
                    start=course.start,
                    courses=(*carried, course),
                    recourses=tuple(c for c in carried if c in line.recourses),
                    continues=line,
                )
            )
            return
    lines.append(TherapyLine(start=course.start, courses=(course,)))  # rule 7


def _switched_from(
    course: TreatmentCourse,
    line: TherapyLine,
    check: ProgressionCheck,
    profile: CriteriaProfile,
) -> TreatmentCourse | None:
    """§3.5 rule 3 [design]: a BTKi started at most 60 days after (or up to 30 days before)
    an ended BTKi of another ingredient in the line ended, with no confirmed PD before it:
    a switch for toxicity, not a new line."""
    if course.drug_class != DrugClass.BTKI:
        return None
    candidates = [
        other
        for other in line.courses_of(DrugClass.BTKI)
        if other.ingredient != course.ingredient
        and other.ended
        and other.end is not None
        and -profile.switch_overlap_days
        <= (course.start - other.end).days
        <= profile.switch_gap_days
    ]
    if not candidates or check.confirmed_pd_before(line, course.start):
        return None
    return max(candidates, key=lambda c: (c.end, c.ingredient))


def _switch(line: TherapyLine, stopped: TreatmentCourse, course: TreatmentCourse) -> TherapyLine:
    """The days between the two BTKi courses are a hold, resumed at the new one's start."""
    assert stopped.end is not None
    if (course.start - stopped.end).days >= 2:  # at least one whole day without a BTKi
        hold = Hold(start=stopped.end + timedelta(days=1), resumed=course.start)
        course = replace(course, holds=(hold, *course.holds))
    return replace(
        line,
        courses=(*line.courses, course),
        switched=(*line.switched, (stopped, course.start)),
    )


# §3.5 autologous transplant [design] --------------------------------------------------------

AUTOLOGOUS_TRANSPLANT = "autologous transplant"


def _anchors_conditioning(episode: DrugEpisode) -> bool:
    """Carmustine, a record naming BEAM, or high-dose melphalan (at least 140 mg/m2)."""
    return (
        episode.ingredient == "carmustine"
        or episode.beam
        or (episode.ingredient == "melphalan" and episode.high_dose)
    )


def autologous_transplants(
    conditioning: list[DrugEpisode],
    transplants: list[TransplantProcedure],
    profile: CriteriaProfile,
) -> tuple[list[TreatmentCourse], list[DrugEpisode]]:
    """(transplant courses, conditioning records that belong to none). A course is the
    conditioning records and transplant procedures within 14 days of each other; etoposide
    and cytarabine count only within 7 days of carmustine, BEAM or high-dose melphalan."""
    anchors = [e for e in conditioning if _anchors_conditioning(e)]
    near = timedelta(days=profile.conditioning_companion_days)
    companions = [
        e
        for e in conditioning
        if e not in anchors
        and e.ingredient in ("etoposide", "cytarabine")
        and any(abs(e.start - a.start) <= near for a in anchors)
    ]
    items: list[tuple[date, date, str]] = [
        (e.start, e.end or e.start, e.reference) for e in [*anchors, *companions]
    ]
    items += [(t.day, t.day, t.reference) for t in transplants if not t.collection]
    items.sort()
    courses: list[TreatmentCourse] = []
    group: list[tuple[date, date, str]] = []
    span = timedelta(days=profile.transplant_grouping_days)
    for item in items:
        if group and item[0] - max(g[1] for g in group) > span:
            courses.append(_transplant_course(group))
            group = []
        group.append(item)
    if group:
        courses.append(_transplant_course(group))
    used = {id(e) for e in [*anchors, *companions]}
    return courses, [e for e in conditioning if id(e) not in used]


def _transplant_course(group: list[tuple[date, date, str]]) -> TreatmentCourse:
    return TreatmentCourse(
        ingredient=AUTOLOGOUS_TRANSPLANT,
        drug_class=DrugClass.AUTOLOGOUS_TRANSPLANT,
        start=min(g[0] for g in group),
        end=max(g[1] for g in group),
        on_hold=False,
        references=tuple(dict.fromkeys(g[2] for g in group)),
    )


def _absorb_mobilisations(
    lines: list[TherapyLine],
    transplants: list[TransplantProcedure],
    check: ProgressionCheck,
    profile: CriteriaProfile,
) -> None:
    """§3.5: the line before a transplant that mobilised stem cells for it (started at most
    120 days before, no confirmed PD, and a record says mobilisation or priming, or a
    stem-cell collection lies between) is no line of its own: the transplant line continues
    it, carrying its running courses as an add-on line does (§4.9)."""
    index = 1
    while index < len(lines):
        line, before = lines[index], lines[index - 1]
        transplant = line.main_courses[0] if line.main_courses else None
        if (
            transplant is not None
            and transplant.drug_class == DrugClass.AUTOLOGOUS_TRANSPLANT
            and (line.start - before.start).days <= profile.mobilisation_days
            and not check.confirmed_pd_before(before, line.start)
            and (
                any(c.mobilisation for c in before.courses)
                or any(t.collection and before.start <= t.day <= line.start for t in transplants)
            )
        ):
            carry_until = line.start + timedelta(days=profile.add_on_carry_min_days)
            carried = tuple(
                c
                for c in before.main_courses
                if c.ongoing_on(line.start) and not (c.end is not None and c.end <= carry_until)
            )
            lines[index - 1 : index + 1] = [
                replace(line, courses=(*carried, *line.courses), continues=before)
            ]
            continue
        index += 1


def _add_partner(
    course: TreatmentCourse, lines: list[TherapyLine], profile: CriteriaProfile
) -> bool:
    """A partner course joins the latest line whose first 30 days contain its start."""
    window = timedelta(days=profile.line_grouping_days)
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index]
        if line.start <= course.start <= line.start + window:
            lines[index] = replace(line, courses=(*line.courses, course))
            return True
    return False


def treatment_history(
    episodes: list[DrugEpisode],
    today: date,
    profile: CriteriaProfile,
    check: ProgressionCheck,
    transplants: tuple[TransplantProcedure, ...] = (),
) -> TreatmentHistory:
    """§3.3-3.5 from the mapped episodes to the lines of therapy."""
    kept, excluded = _prepare(episodes, today, profile)
    conditioning = [e for e in kept if e.drug_class == DrugClass.CONDITIONING]
    transplant_courses: list[TreatmentCourse] = []
    unused: list[DrugEpisode] = []
    if conditioning or transplants:
        kept = [e for e in kept if e.drug_class != DrugClass.CONDITIONING]
        transplant_courses, unused = autologous_transplants(
            conditioning, [t for t in transplants if t.day <= today], profile
        )
    excluded += [
        Exclusion(e.reference, f"not recognised as a WM treatment: {e.ingredient}") for e in unused
    ]
    courses = build_courses(kept, profile) + transplant_courses
    lines: list[TherapyLine] = []
    partners = []
    # §3.5: in order of start, then recognised before unrecognised, then name.
    for course in sorted(
        courses,
        key=lambda c: (c.start, c.drug_class == DrugClass.UNRECOGNISED, c.ingredient),
    ):
        if course.drug_class == DrugClass.PARTNER:
            partners.append(course)
        else:
            _add_course(course, lines, check, profile)
    _absorb_mobilisations(lines, list(transplants), check, profile)
    for course in partners:
        if not _add_partner(course, lines, profile):
            reason = PARTNER_OUTSIDE_REGIMEN.format(ingredient=course.ingredient)
            excluded.extend(Exclusion(reference, reason) for reference in course.references)
    return TreatmentHistory(
        lines=lines,
        excluded=excluded,
        anti_cd20_starts=[c.start for c in courses if c.drug_class == DrugClass.ANTI_CD20],
        courses=courses,
    )


def line_status(
    line: TherapyLine, today: date, profile: CriteriaProfile
) -> tuple[LineStatus, date | None]:
    """§3.5 status of the current line (and the day it ended): on hold now when a BTKi course
    of it is; ongoing while a course runs, or (§3.4) while its last infusion is at most one
    cycle and a delay before today; otherwise ended on the latest end of its courses."""
    courses = [c for c in line.main_courses if c.start <= today]
    if any(c.on_hold and c.drug_class == DrugClass.BTKI for c in courses):
        return LineStatus.ON_HOLD, None
    grace = timedelta(days=profile.infusion_course_days)
    for course in courses:
        if course.ongoing_on(today):
            return LineStatus.ONGOING, None
        if course.last_from_administration and course.end and today - course.end <= grace:
            return LineStatus.ONGOING, None
    ends = [c.end for c in courses if c.end is not None]
    if not ends:
        return LineStatus.ONGOING, None
    return LineStatus.ENDED, max(ends)
