"""Internal models: what the assessment reads and what it returns (clinical-rules.md §3-5)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from functools import cached_property


class Series(StrEnum):
    TOTAL_IGM = "total-igm"
    M_SPIKE = "m-spike"


class DrugClass(StrEnum):
    BTKI = "BTK inhibitor"
    ANTI_CD20 = "anti-CD20 antibody"
    PROTEASOME_INHIBITOR = "proteasome inhibitor"
    MTOR_INHIBITOR = "mTOR inhibitor"
    OTHER = "other WM agent"
    # §3.3: corticosteroids given with a regimen; they never make, extend or end a line.
    PARTNER = "partner agent"
    # §3.5: high-dose conditioning, only as part of an autologous transplant.
    CONDITIONING = "conditioning"
    AUTOLOGOUS_TRANSPLANT = "autologous transplant"
    # §3.3: anticancer treatment the service cannot name (a trial drug): no class.
    UNRECOGNISED = "not recognised"


class EpisodeSource(StrEnum):
    """Which kind of record an episode comes from: §3.4 holds depend on it."""

    STATEMENT = "MedicationStatement"
    REQUEST = "MedicationRequest"
    ADMINISTRATION = "MedicationAdministration"


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
    DELAYED_RESPONSE = "delayed-response"
    PD_THEN_FALL = "pd-then-fall"
    SMALL_ABSOLUTE_RISE = "small-absolute-rise"


CAVEAT_ORDER = {caveat: index for index, caveat in enumerate(Caveat)}


class IfeReading(StrEnum):
    """§3.2: what a serum immunofixation says; only NEGATIVE supports CR."""

    NEGATIVE = "negative"
    POSITIVE = "positive"
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class Exclusion:
    """A resource (or part of the data) the assessment could not use, and why."""

    reference: str
    reason: str


@dataclass(frozen=True)
class UnusableResult:
    """§3.1: an IgM or M-spike result of this patient that was measured but cannot be used
    (status, date, value, unit or reference range; or held back). It is never "no result"."""

    reference: str
    series: Series
    day: date | None
    reason: str


UPPER_BOUND_COMPARATORS = frozenset({"<", "<="})
LOWER_BOUND_COMPARATORS = frozenset({">", ">="})


@dataclass(frozen=True)
class LabResult:
    """One quantitative total IgM or M-spike result, converted to mg/dL."""

    reference: str
    series: Series
    day: date
    value_mg_dl: Decimal
    # `<`/`<=`: the true value is at most this ("IgM below 25 mg/dL"); `>`/`>=`: at least
    # this (above the laboratory's reporting range, "IgM above 7000 mg/dL").
    comparator: str | None = None
    uln_mg_dl: Decimal | None = None  # referenceRange.high, converted
    code: str | None = None  # the LOINC code (§3.1: 33358-3 replaces 51435-6 on one day)
    drawn_at: datetime | None = None  # with a time of day, when the source gives one (§7)

    @property
    def upper_bound(self) -> bool:
        return self.comparator in UPPER_BOUND_COMPARATORS

    @property
    def lower_bound(self) -> bool:
        return self.comparator in LOWER_BOUND_COMPARATORS

    @property
    def is_bound(self) -> bool:
        return self.comparator is not None

    @property
    def sort_key(self) -> tuple[date, str]:
        # Same-day results are ordered by reference so that the answer never depends on
        # the order in which the EHR listed them.
        return (self.day, self.reference)


@dataclass(frozen=True)
class ImmunofixationResult:
    reference: str
    day: date
    reading: IfeReading

    @property
    def negative(self) -> bool:
        return self.reading == IfeReading.NEGATIVE


@dataclass(frozen=True)
class ViscosityResult:
    """Serum viscosity (LOINC 3128-6), shown on the hyperviscosity card as written."""

    reference: str
    day: date
    text: str  # value and unit as reported, e.g. "3.2 cP"
    value: Decimal | None = None
    unit: str = ""  # as reported
    centipoise: bool = False  # the unit is cP or mPa.s (equal)
    reference_high: Decimal | None = None  # its own referenceRange.high, in its unit
    comparator: str | None = None
    drawn_at: datetime | None = None


@dataclass(frozen=True)
class DrugEpisode:
    """One record of one WM drug ingredient: a statement, an order or an administration."""

    reference: str
    ingredient: str
    drug_class: DrugClass
    start: date
    end: date | None = None  # the last day with the drug; None: ongoing (end unknown)
    on_hold: bool = False  # the record says the drug is interrupted now
    source: EpisodeSource = EpisodeSource.STATEMENT
    # An active order: the latest of its validity end, timing end and supply end (§3.3).
    # An order nobody renewed for 90 days after this ended there.
    order_runs_to: date | None = None
    status: str | None = None  # the record's status (§3.4: what follows an on-hold record)
    # §3.5 autologous transplant: the record says mobilisation (or priming), or high dose.
    mobilisation: bool = False
    high_dose: bool = False
    beam: bool = False  # the record names the BEAM conditioning regimen


@dataclass(frozen=True)
class Plasmapheresis:
    reference: str
    day: date
    started_at: datetime | None = None  # with a time of day, when the source gives one


@dataclass(frozen=True)
class Diagnosis:
    """§3.7: an active, not refuted Condition: WM, or another disease the WM drugs treat."""

    reference: str
    is_wm: bool


@dataclass(frozen=True)
class TransplantProcedure:
    """§3.5: a completed autologous transplant, or a stem-cell collection (mobilisation)."""

    reference: str
    day: date
    collection: bool  # a stem-cell collection, not the transplant


@dataclass
class PatientRecord:
    """Everything the assessment reads about one patient, already mapped and filtered."""

    lab_results: list[LabResult] = field(default_factory=list)
    immunofixations: list[ImmunofixationResult] = field(default_factory=list)
    drug_episodes: list[DrugEpisode] = field(default_factory=list)
    plasmaphereses: list[Plasmapheresis] = field(default_factory=list)
    viscosities: list[ViscosityResult] = field(default_factory=list)
    excluded: list[Exclusion] = field(default_factory=list)
    unusable: list[UnusableResult] = field(default_factory=list)  # §3.1, a subset of excluded
    diagnoses: list[Diagnosis] = field(default_factory=list)  # §3.7
    transplants: list[TransplantProcedure] = field(default_factory=list)  # §3.5


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


class Progression(StrEnum):
    CONFIRMED = "confirmed"
    POSSIBLE = "possible"  # only the latest value rose: unconfirmed
    SUPPRESSED = "suppressed"  # a rise inside a flare or hold window (or its recovery)


@dataclass(frozen=True)
class ContinuingFrom:
    """§4.9: for an add-on line, the change since the start of the line it continued."""

    therapy_start: date
    baseline: LabResult | None
    percent_change: Fraction | None


@dataclass(frozen=True)
class Discordance:
    """§3.1: same-day plain values that differ by more than 20 %."""

    day: date
    low: Decimal
    high: Decimal


@dataclass(frozen=True)
class Hyperviscosity:
    """§7: the reference value that reached its threshold, and whether a warning card is due."""

    reference_value: LabResult
    warning_card: bool
    latest_viscosity: ViscosityResult | None
    viscosity_order_due: bool  # none in the last 183 days
    anti_cd20_recent: bool = False  # an anti-CD20 course started in the last 112 days
    recent_plasmapheresis: date | None = None  # an exchange in the last 42 days


class WindowKind(StrEnum):
    """§4.6: the suppression windows, as the card extension names them."""

    BTKI_HOLD = "btki-hold"
    ANTI_CD20_FLARE = "anti-cd20-flare"
    BTKI_WITHDRAWAL = "btki-withdrawal"


class LineStatus(StrEnum):
    """§3.5: the current line is on hold now, ongoing, or ended."""

    ONGOING = "ongoing"
    ON_HOLD = "on-hold"
    ENDED = "ended"


@dataclass(frozen=True)
class SuppressedRise:
    """§4.7: the latest value is a rise that a window (or its recovery period) suppressed."""

    window: WindowKind
    until: date | None  # None: a hold on now whose start is not recorded
    recovery: bool = False


@dataclass(frozen=True)
class SuppressionWindow:
    """§4.6: a window of the current line, as the trend app draws it."""

    kind: WindowKind
    start: date
    end: date
    drug: str | None = None


@dataclass(frozen=True)
class Withdrawal:
    """§4.6: a BTKi of an earlier line stopped shortly before the current line started."""

    ingredient: str
    stopped: date
    until: date


@dataclass(frozen=True)
class BestResponse:
    """§4.8: the reduction category the nadir reached, and the first value that reached it."""

    category: Category
    since: date


@dataclass(frozen=True)
class ResponseDuration:
    """§4 step 8: how long the response before a progression lasted."""

    category: Category
    since: date
    until: date
    months: int


@dataclass(frozen=True)
class TrendChange:
    """§4.10: the change of an untreated patient's series from an earlier value."""

    percent_change: Fraction
    since: LabResult


@dataclass(frozen=True)
class OtherSeries:
    """§4.1: values of the series not chosen, dated after the chosen series' latest."""

    series: Series
    values: tuple[LabResult, ...]
    rising: bool  # its latest value is a possible PD (step 5 on its own values)


@dataclass(frozen=True)
class Assessment:
    """The answer for one patient (clinical-rules.md §4), ready to be put on cards."""

    criteria: str
    category: Category
    # §4.5: the profile's progression floor (None under `iwwm6-strict`), for the card's words.
    progression_floor_mg_dl: Decimal | None = None
    series: Series | None = None
    percent_change: Fraction | None = None  # exact; see `displayed_percent`
    change_is_bound: bool = False  # the true change is at least this large
    baseline: LabResult | None = None
    nadir: LabResult | None = None
    latest: LabResult | None = None
    line: TherapyLine | None = None
    line_ended: date | None = None
    caveats: tuple[Caveat, ...] = ()
    reason: str | None = None  # why NE
    excluded: tuple[Exclusion, ...] = ()
    uln_mg_dl: Decimal | None = None  # total-IgM series only
    uln_is_default: bool = False
    progression: Progression | None = None
    progression_confirmed: date | None = None
    progression_value: LabResult | None = None  # the second value of the confirming pair
    percent_change_from_nadir: Fraction | None = None
    response_since: date | None = None
    durable: bool = False
    latest_immunofixation: ImmunofixationResult | None = None  # the latest after therapy start
    continuing_from: ContinuingFrom | None = None
    discordances: tuple[Discordance, ...] = ()
    hyperviscosity: Hyperviscosity | None = None
    # §7: no recent total IgM, and the newest older one was >= 4000 mg/dL.
    old_high_igm: LabResult | None = None
    rise_after_cr: bool = False  # §4.5: a rise after CR was discounted: repeat immunofixation
    # §4.5 sub-floor rise: vn - m, when the latest two values rose 25 % under the floor.
    rise_below_floor: Decimal | None = None
    line_status: LineStatus | None = None
    rise_suppressed: SuppressedRise | None = None
    best_response: BestResponse | None = None
    provisional_until: date | None = None  # SD while the latest value is in a flare window
    cr_lost: date | None = None  # §4.5: the first of two results showing the protein again
    cr_lost_confirmed: date | None = None  # the second
    response_duration: ResponseDuration | None = None
    withdrawal: Withdrawal | None = None
    held_drug: str | None = None  # a BTKi of the current line on hold now
    hold_since: date | None = None  # its recorded hold start
    switched_from: tuple[tuple[str, date], ...] = ()  # §3.5 rule 3: (ingredient, switch day)
    other_series: OtherSeries | None = None
    # §4.7 a line of unknown regimen: the change since it started, as information, and a
    # confirmed PD of the line before, as history (regimen, date).
    change_since_line_start: Fraction | None = None
    earlier_progression: tuple[tuple[str, ...], date] | None = None
    held_back: tuple[LabResult, ...] = ()  # §3.1 implausible change: check the unit
    windows: tuple[SuppressionWindow, ...] = ()  # §4.6, of the current line
    wm_evidence: bool = True  # §3.7: without it, patient-view says nothing
    wm_condition: str | None = None  # §3.7: the WM Condition's reference, when there is one
    # Both series' values that count (§3.1: one per day, not held back), for §6 and §4.10:
    # total IgM in date order, then the M-spike in date order.
    usable_results: tuple[LabResult, ...] = ()
    change_since_first: TrendChange | None = None  # §4.10, no line of therapy
    change_12_months: TrendChange | None = None
    unusable: tuple[UnusableResult, ...] = ()  # §3.1 measured but unusable (held back too)
    # For drawing the course (the SMART app): the series' values as the rules used them (one
    # per day, §3.1), and every line of therapy that has started (§3.5), oldest first.
    values: tuple[LabResult, ...] = ()
    lines: tuple[TherapyLine, ...] = ()

    @property
    def therapy_start(self) -> date | None:
        return self.line.start if self.line else None


class MonitoringState(StrEnum):
    """§6: the states that set the monitoring interval (the card extension's `state`)."""

    ON_THERAPY = "on-therapy"
    OFF_THERAPY = "off-therapy"
    PROGRESSION_OFF_THERAPY = "progression-off-therapy"
    UNTREATED = "untreated"


class MonitoringReason(StrEnum):
    OVERDUE = "overdue"
    TOTAL_IGM_DUE = "total-igm-due"


@dataclass(frozen=True)
class MonitoringDue:
    """§6: no usable IgM or M-spike result within the interval of the patient's state (or,
    on therapy, only M-spikes since a total IgM more than 183 days old)."""

    state: MonitoringState
    interval_days: int
    reason: MonitoringReason
    last_result_day: date | None  # the newest usable result (total IgM for total-igm-due)
    days_since: int | None  # from the newest usable result or the line's start, if later
    line: TherapyLine | None = None
    line_ended: date | None = None
    progression_confirmed: date | None = None
    unusable_count: int = 0  # results dated after the newest usable one that could not be used
    unusable_since: date | None = None
    unusable_reason: str | None = None
