"""Internal models: what the assessment reads and what it returns (clinical-rules.md §3-4)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction


class Series(StrEnum):
    TOTAL_IGM = "total-igm"
    M_SPIKE = "m-spike"


class DrugClass(StrEnum):
    BTKI = "BTK inhibitor"
    ANTI_CD20 = "anti-CD20 antibody"
    PROTEASOME_INHIBITOR = "proteasome inhibitor"
    MTOR_INHIBITOR = "mTOR inhibitor"
    OTHER = "other WM agent"


class Category(StrEnum):
    CR = "CR"
    VGPR = "VGPR"
    PR = "PR"
    MR = "MR"
    SD = "SD"
    PD = "PD"
    NE = "NE"


class Caveat(StrEnum):
    """Caveat codes, in the order of clinical-rules.md §5 (the order cards list them in)."""

    BTKI_DISCORDANCE = "btki-discordance"
    BTKI_INTERRUPTION = "btki-interruption"
    ANTI_CD20_FLARE = "anti-cd20-flare"
    PI_MTOR_DISCORDANCE = "pi-mtor-discordance"
    PLASMAPHERESIS = "plasmapheresis"
    HYPERVISCOSITY_RISK = "hyperviscosity-risk"
    METHOD_CHANGE = "method-change"
    UNCONFIRMED_PROGRESSION = "unconfirmed-progression"
    CR_NEEDS_MARROW = "cr-needs-marrow"
    LOW_BASELINE = "low-baseline"
    NO_BASELINE = "no-baseline"


CAVEAT_ORDER = {caveat: index for index, caveat in enumerate(Caveat)}


@dataclass(frozen=True)
class Exclusion:
    """A resource (or part of the data) the assessment could not use, and why."""

    reference: str
    reason: str


@dataclass(frozen=True)
class LabResult:
    """One quantitative total IgM or M-spike result, converted to mg/dL."""

    reference: str
    series: Series
    day: date
    value_mg_dl: Decimal
    # `<`/`<=`: the true value is at most this ("IgM below 25 mg/dL").
    upper_bound: bool = False
    # `>`/`>=`: the true value is at least this ("IgM above 7000 mg/dL").
    lower_bound: bool = False
    uln_mg_dl: Decimal | None = None  # referenceRange.high, converted

    @property
    def sort_key(self) -> tuple[date, str]:
        # Same-day results are ordered by reference so that the answer never depends on
        # the order in which the EHR listed them.
        return (self.day, self.reference)


@dataclass(frozen=True)
class ImmunofixationResult:
    reference: str
    day: date
    negative: bool


@dataclass(frozen=True)
class DrugEpisode:
    """One MedicationStatement or MedicationRequest of one WM drug ingredient."""

    reference: str
    ingredient: str
    drug_class: DrugClass
    start: date
    end: date | None = None  # the last day taken, when the record gives it
    ended: bool = False  # the record says the drug is no longer taken
    on_hold: bool = False  # the record says the drug is interrupted now


@dataclass(frozen=True)
class Plasmapheresis:
    reference: str
    day: date


@dataclass
class PatientRecord:
    """Everything the assessment reads about one patient, already mapped and filtered."""

    lab_results: list[LabResult] = field(default_factory=list)
    immunofixations: list[ImmunofixationResult] = field(default_factory=list)
    drug_episodes: list[DrugEpisode] = field(default_factory=list)
    plasmaphereses: list[Plasmapheresis] = field(default_factory=list)
    excluded: list[Exclusion] = field(default_factory=list)


@dataclass(frozen=True)
class Hold:
    """An interruption of a treatment course; `start` is None when it is not known."""

    start: date | None
    resumed: date | None  # None while the hold goes on


@dataclass(frozen=True)
class TreatmentCourse:
    """Continuous treatment with one ingredient: episodes with gaps of at most 90 days."""

    ingredient: str
    drug_class: DrugClass
    start: date
    end: date | None  # last known day taken; None while ongoing (or when not recorded)
    ended: bool
    on_hold: bool
    holds: tuple[Hold, ...] = ()
    references: tuple[str, ...] = ()

    def ongoing_on(self, day: date) -> bool:
        if self.on_hold:
            return False
        if not self.ended:
            return self.end is None or day <= self.end
        return self.end is not None and day <= self.end


@dataclass(frozen=True)
class TherapyLine:
    """WM-drug courses whose starts lie within 30 days of the line's first start."""

    start: date
    courses: tuple[TreatmentCourse, ...]

    @property
    def regimen(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(course.ingredient for course in self.courses))

    def has_class(self, *classes: DrugClass) -> bool:
        return any(course.drug_class in classes for course in self.courses)

    def courses_of(self, drug_class: DrugClass) -> list[TreatmentCourse]:
        return [course for course in self.courses if course.drug_class == drug_class]

    def ongoing_on(self, day: date) -> bool:
        return any(course.ongoing_on(day) or course.on_hold for course in self.courses)


class Progression(StrEnum):
    CONFIRMED = "confirmed"
    POSSIBLE = "possible"  # only the latest value rose: unconfirmed
    SUPPRESSED = "suppressed"  # a rise inside a flare or hold window


@dataclass(frozen=True)
class Assessment:
    """The answer for one patient (clinical-rules.md §4), ready to be put on cards."""

    criteria: str
    category: Category
    series: Series | None = None
    percent_change: Fraction | None = None  # exact; see `displayed_percent`
    change_is_bound: bool = False  # the latest value was an upper bound: "at least"
    baseline: LabResult | None = None
    nadir: LabResult | None = None
    latest: LabResult | None = None
    line: TherapyLine | None = None
    caveats: tuple[Caveat, ...] = ()
    reason: str | None = None  # why NE
    excluded: tuple[Exclusion, ...] = ()
    uln_mg_dl: Decimal | None = None
    uln_is_default: bool = False
    progression: Progression | None = None
    response_since: date | None = None
    durable: bool = False
    latest_total_igm: LabResult | None = None
    latest_immunofixation: ImmunofixationResult | None = None  # the latest after therapy start

    @property
    def therapy_start(self) -> date | None:
        return self.line.start if self.line else None


@dataclass(frozen=True)
class MonitoringDue:
    """§6: the latest IgM is older than the monitoring interval for this line."""

    last_result_day: date | None
    days_since: int
    interval_days: int
    line_start: date
