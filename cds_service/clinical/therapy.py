"""Treatment history: episodes -> courses with holds -> lines of therapy (clinical-rules.md §3)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from .criteria import CriteriaProfile
from .models import DrugEpisode, Hold, TherapyLine, TreatmentCourse


def build_courses(episodes: list[DrugEpisode], profile: CriteriaProfile) -> list[TreatmentCourse]:
    """Join episodes of one ingredient separated by at most `hold_gap_days` into a course.

    A gap between an explicit end and the next start is a hold. When an episode's end is
    not recorded (monthly orders often carry only a start), the next episode continues the
    course without a hold if it starts within the gap limit of the previous start: a missing
    date never invents an interruption.
    """
    by_ingredient: dict[str, list[DrugEpisode]] = defaultdict(list)
    for episode in episodes:
        by_ingredient[episode.ingredient].append(episode)
    courses: list[TreatmentCourse] = []
    max_gap = timedelta(days=profile.hold_gap_days)
    for group in by_ingredient.values():
        group.sort(key=lambda e: (e.start, e.end or date.max, e.reference))
        current: list[DrugEpisode] = []
        holds: list[Hold] = []
        last_known: date | None = None  # last day known to be covered by the course
        open_ended = False  # an episode of the course has no recorded end and is not over
        for episode in group:
            if current and last_known is not None:
                gap = episode.start - last_known
                if open_ended or gap <= timedelta(days=1):
                    pass  # overlapping or contiguous
                elif gap <= max_gap:
                    if _end_recorded(current):
                        holds.append(Hold(start=last_known, resumed=episode.start))
                else:
                    courses.append(_course(current, holds))
                    current, holds, open_ended = [], [], False
            current.append(episode)
            covered = episode.end or episode.start
            last_known = covered if last_known is None else max(last_known, covered)
            open_ended = open_ended or (
                episode.end is None and not episode.ended and not episode.on_hold
            )
        if current:
            courses.append(_course(current, holds))
    courses.sort(key=lambda c: (c.start, c.ingredient))
    return courses


def _end_recorded(episodes: list[DrugEpisode]) -> bool:
    latest_end = max(episodes, key=lambda e: e.end or e.start)
    return latest_end.end is not None


def _course(episodes: list[DrugEpisode], holds: list[Hold]) -> TreatmentCourse:
    # The most recent record says what is true now: an "on-hold" statement wins over an
    # older open-ended one.
    latest = max(episodes, key=lambda e: (e.start, e.end or e.start, e.reference))
    on_hold = latest.on_hold
    open_ended = not on_hold and any(
        e.end is None and not e.ended and not e.on_hold for e in episodes
    )
    if on_hold:
        holds = [*holds, Hold(start=latest.end, resumed=None)]
    ends = [e.end for e in episodes if e.end is not None]
    return TreatmentCourse(
        ingredient=episodes[0].ingredient,
        drug_class=episodes[0].drug_class,
        start=min(e.start for e in episodes),
        end=None if open_ended or not ends else max(ends),
        ended=not on_hold and not open_ended,
        on_hold=on_hold,
        holds=tuple(holds),
        references=tuple(e.reference for e in episodes),
    )


def group_lines(courses: list[TreatmentCourse], profile: CriteriaProfile) -> list[TherapyLine]:
    """Courses whose starts lie within `line_grouping_days` of a line's first start."""
    lines: list[TherapyLine] = []
    window = timedelta(days=profile.line_grouping_days)
    members: list[TreatmentCourse] = []
    for course in sorted(courses, key=lambda c: (c.start, c.ingredient)):
        if members and course.start - members[0].start > window:
            lines.append(TherapyLine(start=members[0].start, courses=tuple(members)))
            members = []
        members.append(course)
    if members:
        lines.append(TherapyLine(start=members[0].start, courses=tuple(members)))
    return lines


def current_line(lines: list[TherapyLine], today: date) -> TherapyLine | None:
    """The latest line that started on or before today, whether or not it has ended."""
    started = [line for line in lines if line.start <= today]
    return started[-1] if started else None


def lines_of_therapy(episodes: list[DrugEpisode], profile: CriteriaProfile) -> list[TherapyLine]:
    return group_lines(build_courses(episodes, profile), profile)
