"""Treatment as the rules build it: courses with holds and lines of therapy
(clinical-rules.md §3.4, §3.5)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cached_property

from .record import DrugClass


@dataclass(frozen=True)
class Hold:
    """An interruption of a treatment course; `start` is None when it is not known."""

    start: date | None
    resumed: date | None  # None while the hold goes on


@dataclass(frozen=True)
class TreatmentCourse:
    """§3.4: the episodes of one ingredient, each starting at most 90 days after the
    previous one ended."""

    ingredient: str
    drug_class: DrugClass
    start: date
    end: date | None  # last day with the drug; None while ongoing
    on_hold: bool
    holds: tuple[Hold, ...] = ()
    references: tuple[str, ...] = ()
    # §3.4: the last day with the drug is an administration (an infusion): the course reads
    # as ongoing for a cycle and a delay after it.
    last_from_administration: bool = False
    # §3.4 anti-CD20 induction: the distinct days of administrations and order starts.
    dose_days: tuple[date, ...] = ()
    mobilisation: bool = False  # §3.5: a record of it says mobilisation or priming

    @property
    def ended(self) -> bool:
        return self.end is not None and not self.on_hold

    def ongoing_on(self, day: date) -> bool:
        """Started on or before `day` and not ended before it; a course on hold is ongoing."""
        if self.start > day:
            return False
        return self.on_hold or self.end is None or day <= self.end


@dataclass(frozen=True)
class TherapyLine:
    """§3.5: a regimen. An add-on line carries the running courses of the line it continues."""

    start: date
    courses: tuple[TreatmentCourse, ...]
    # Courses that joined as a re-course (maintenance, planned re-dosing): no flare window.
    recourses: tuple[TreatmentCourse, ...] = ()
    continues: TherapyLine | None = None  # the line an add-on line was added to
    # §3.5 rule 3: BTKi courses switched from within the class, with the switch day.
    switched: tuple[tuple[TreatmentCourse, date], ...] = ()

    @cached_property
    def regimen(self) -> tuple[str, ...]:
        """§3.5: the ingredients in order of course start, partner agents last, without
        switched-from courses."""
        gone = {id(course) for course, _ in self.switched}
        return tuple(
            dict.fromkeys(course.ingredient for course in self.courses if id(course) not in gone)
        )

    @cached_property
    def main_courses(self) -> tuple[TreatmentCourse, ...]:
        """The courses that make the line (partner agents never do)."""
        return tuple(c for c in self.courses if c.drug_class != DrugClass.PARTNER)

    @cached_property
    def unrecognised(self) -> tuple[TreatmentCourse, ...]:
        """§3.3: courses of treatment the service cannot name."""
        return tuple(c for c in self.courses if c.drug_class == DrugClass.UNRECOGNISED)

    @property
    def unknown_regimen(self) -> bool:
        """§3.5: every course that makes the line is unrecognised therapy."""
        main = self.main_courses
        return bool(main) and all(c.drug_class == DrugClass.UNRECOGNISED for c in main)

    def has_class(self, *classes: DrugClass) -> bool:
        return any(course.drug_class in classes for course in self.courses)

    def courses_of(self, drug_class: DrugClass) -> list[TreatmentCourse]:
        return [course for course in self.courses if course.drug_class == drug_class]

    def ongoing_on(self, day: date) -> bool:
        return any(course.ongoing_on(day) for course in self.main_courses)

    def ended_on(self, day: date) -> date | None:
        """The latest end of the line's courses when it is no longer ongoing on `day`."""
        courses = self.main_courses
        if not courses or self.ongoing_on(day):
            return None
        ends = [c.end for c in courses if c.end is not None and c.start <= day]
        return max(ends) if ends else None
