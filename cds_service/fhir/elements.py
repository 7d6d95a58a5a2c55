"""The FHIR R4 elements the rules read, and only those, as typed structs.

Each struct names exactly the elements of one FHIR type that mapping reads (clinical-rules.md
§3). Reading a resource checks every one of those elements to the FHIR R4 rules for its
type: the primitive regexes of https://hl7.org/fhir/R4/datatypes.html (`id`, `code`,
`string`, `uri`, `dateTime`, `instant`), JSON numbers for `decimal`, bounds for
`unsignedInt`, required elements, arrays where FHIR says 0..*, one choice of `[x]` at a
time, and the required value sets of the codes the rules act on (statuses, intent,
comparator). Elements the rules do not read are not looked at, so noise in them (an
extension of an unknown shape, a malformed `text` narrative) cannot make a usable result
vanish.

A resource is read from its JSON text (`fhir.documents`): msgspec decodes the text straight into
the struct and skips everything else, unparsed.

Calendar validity of dates (the regexes allow 2024-02-30) is checked where a date is turned
into a day, by `parse_datetime`, so it is still checked for every date the rules read.
"""

from __future__ import annotations

import datetime as dt
import math
import operator
import re
from collections import defaultdict
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import Meta, Raw, Struct

from .documents import Resource, as_resource
from .strict_json import MAX_DIGITS, JsonRefused, parse_float

# FHIR R4 primitive types (https://hl7.org/fhir/R4/datatypes.html#primitive), anchored with
# \Z: "$" would also match before a final newline.
ID_PATTERN = r"^[A-Za-z0-9\-.]{1,64}\Z"
CODE_PATTERN = r"^[^\s]+( [^\s]+)*\Z"
STRING_PATTERN = r"^[ \r\n\t\S]+\Z"
URI_PATTERN = r"^\S*\Z"
DATE_TIME_PATTERN = (
    r"^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
    r"(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
    r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?\Z"
)
INSTANT_PATTERN = (
    r"^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
    r"-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
    r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))\Z"
)
# The same languages, written for Python's regex engine: a year is four digits other than
# 0000, and groups do not capture. About twice as fast as the specification's text; a
# property test holds them to it.
_YEAR = r"(?!0000)[0-9]{4}"
_TIME = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]+)?"
_ZONE = r"(?:Z|[+-](?:(?:0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
_MONTH, _DAY = r"(?:0[1-9]|1[0-2])", r"(?:0[1-9]|[12][0-9]|3[01])"
DATE_TIME_FAST = rf"^{_YEAR}(?:-{_MONTH}(?:-{_DAY}(?:T{_TIME}{_ZONE})?)?)?\Z"
INSTANT_FAST = rf"^{_YEAR}-{_MONTH}-{_DAY}T{_TIME}{_ZONE}\Z"
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]{1,3})?")
UNSIGNED_INT_MAX = 2_147_483_647  # FHIR integers are 32-bit signed

# Values unique to a resource are checked by msgspec's pattern constraint.
FhirId = Annotated[str, Meta(pattern=ID_PATTERN)]
DateTime = Annotated[str, Meta(pattern=DATE_TIME_FAST)]
Instant = Annotated[str, Meta(pattern=INSTANT_FAST)]
UnsignedInt = Annotated[int, Meta(ge=0, le=UNSIGNED_INT_MAX)]


class _Checked(str):
    """A FHIR `code`, `uri` or `string`. These repeat across a patient's resources (code
    systems, codes, units, statuses, the subject), so each distinct value is checked
    against its regex once per request (`ElementReader`), not once per occurrence: that
    halves the cost of reading a resource. Mapping hands them on as plain `str`."""

    __slots__ = ()
    fhir_type: ClassVar[str]
    pattern: ClassVar[re.Pattern[str]]


class Code(_Checked):
    __slots__ = ()
    fhir_type = "code"
    pattern = re.compile(CODE_PATTERN)


class Uri(_Checked):
    __slots__ = ()
    fhir_type = "uri"
    pattern = re.compile(URI_PATTERN)


class String(_Checked):
    __slots__ = ()
    fhir_type = "string"
    pattern = re.compile(STRING_PATTERN)


_TYPE_NAMES = {ID_PATTERN: "id", DATE_TIME_FAST: "dateTime", INSTANT_FAST: "instant"}


class FhirDecimal(Decimal):
    """A FHIR `decimal`: a JSON number. Non-integers arrive as `Decimal` from the strict JSON
    parser (exact, bounded); integers are bounded here; a string is read only when it has
    exactly the decimal regex's form."""

    __slots__ = ()


def _decimal(value: Any) -> FhirDecimal:
    if isinstance(value, Decimal):
        return FhirDecimal(value)
    if type(value) is int:
        if not -_DECIMAL_LIMIT < value < _DECIMAL_LIMIT:
            raise ValueError("a number with too many digits")
        return FhirDecimal(value)
    if type(value) is float and math.isfinite(value):  # from in-process callers only
        return FhirDecimal(repr(value))
    if type(value) is str and _DECIMAL.fullmatch(value):
        # FHIR JSON writes decimals as numbers; a string with exactly the decimal
        # regex's form is read as one (as fhir.resources does): it is unambiguous.
        if len(value) > MAX_DIGITS + 20:
            raise ValueError("a number with too many digits")
        return FhirDecimal(value)
    raise TypeError("expected a FHIR decimal (a JSON number)")


_DECIMAL_LIMIT = 10**MAX_DIGITS


class _Choice:
    """A choice element [x]: the names of its types, and a getter of all of them at once."""

    def __init__(self, element: str, *types: str) -> None:
        self.element = element
        self.names = tuple(element + name for name in types)
        self.values = operator.attrgetter(*self.names)


def _one_of(resource: Struct) -> None:
    """FHIR: a choice element [x] appears once, in one type."""
    for choice in resource.CHOICES:
        values = choice.values(resource)
        if len(values) - values.count(None) > 1:
            given = [
                name for name, value in zip(choice.names, values, strict=True) if value is not None
            ]
            names = ", ".join(sorted(given))
            raise NotValidFhir(
                f"not valid FHIR R4: {choice.element}[x]: given more than once ({names})"
            )


# Datatypes -------------------------------------------------------------------------------


class Coding(Struct):
    system: Uri | None = None
    code: Code | None = None
    display: String | None = None


class CodeableConcept(Struct):
    coding: list[Coding] = []
    text: String | None = None


class Reference(Struct):
    reference: String | None = None
    display: String | None = None


# Required bindings of FHIR R4 whose codes the rules act on: a code outside them is no code
# the rules can judge (https://hl7.org/fhir/R4/valueset-quantity-comparator.html and the
# status value sets of each resource).
QuantityComparator = Literal["<", "<=", ">=", ">"]
ObservationStatus = Literal[
    "registered", "preliminary", "final", "amended", "corrected", "cancelled",
    "entered-in-error", "unknown",
]  # fmt: skip
MedicationStatementStatus = Literal[
    "active", "completed", "entered-in-error", "intended", "stopped", "on-hold", "unknown",
    "not-taken",
]  # fmt: skip
MedicationRequestStatus = Literal[
    "active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped", "draft",
    "unknown",
]  # fmt: skip
# R4's medicationrequest-intent, plus `directive` from the general request-intent code system,
# which clinical-rules.md §3.3 names as a suggestion (so it is reported as one, not refused).
MedicationRequestIntent = Literal[
    "proposal", "plan", "order", "original-order", "reflex-order", "filler-order",
    "instance-order", "option", "directive",
]  # fmt: skip
MedicationAdministrationStatus = Literal[
    "in-progress", "not-done", "on-hold", "completed", "entered-in-error", "stopped", "unknown"
]
EventStatus = Literal[
    "preparation", "in-progress", "not-done", "on-hold", "stopped", "completed",
    "entered-in-error", "unknown",
]  # fmt: skip


class CodeOnly(Struct):
    """A Coding where only the code is read (a LOINC result code, an interpretation)."""

    system: Uri | None = None
    code: Code | None = None


class CodedConcept(Struct):
    coding: list[CodeOnly] = []


class Quantity(Struct):
    value: FhirDecimal | None = None
    comparator: QuantityComparator | None = None
    unit: String | None = None
    system: Uri | None = None
    code: Code | None = None


class Period(Struct):
    start: DateTime | None = None
    end: DateTime | None = None


class ResourceMeta(Struct):
    lastUpdated: Instant | None = None


class ReferenceRange(Struct):
    high: Quantity | None = None


class TimingRepeat(Struct):
    boundsPeriod: Period | None = None


class Timing(Struct):
    repeat: TimingRepeat | None = None


class Dosage(Struct):
    timing: Timing | None = None


class DispenseRequest(Struct):
    validityPeriod: Period | None = None
    numberOfRepeatsAllowed: UnsignedInt | None = None
    expectedSupplyDuration: Quantity | None = None


class Ingredient(Struct):
    itemCodeableConcept: CodeableConcept | None = None
    itemReference: Reference | None = None

    def __post_init__(self) -> None:
        if self.itemCodeableConcept is not None and self.itemReference is not None:
            raise ValueError("item[x] is given more than once")


# Resources ---------------------------------------------------------------------------------
# Elements of type `Present` are only tested for presence (the other types of a choice
# element): their content is not read, not even parsed. `CHOICES` are the choice elements [x]
# the rules read: each may be given in one type only.
Present = Raw

_MEDICATION = _Choice("medication", "CodeableConcept", "Reference")
_EFFECTIVE = _Choice("effective", "DateTime", "Period")


class Observation(Struct):
    resource_type: ClassVar[str] = "Observation"
    CHOICES: ClassVar = (
        _Choice("effective", "DateTime", "Period", "Timing", "Instant"),
        _Choice(
            "value",
            *("Quantity", "CodeableConcept", "String", "Boolean", "Integer", "Range"),
            *("Ratio", "SampledData", "Time", "DateTime", "Period"),
        ),
    )
    # Elements that repeat, byte for byte, across a patient's results (the test's code, its
    # reference range, its interpretation): each distinct text is read once per request
    # (`ElementReader`), and the field then holds what was read (a missing list: ()).
    SHARED: ClassVar = (
        ("code", CodedConcept),
        ("interpretation", list[CodedConcept]),
        ("referenceRange", list[ReferenceRange]),
    )
    status: ObservationStatus
    code: Raw  # CodedConcept, read through SHARED
    id: FhirId | None = None
    meta: ResourceMeta | None = None
    effectiveDateTime: DateTime | None = None
    effectivePeriod: Period | None = None
    issued: Instant | None = None
    valueQuantity: Quantity | None = None
    valueCodeableConcept: CodeableConcept | None = None
    valueString: String | None = None
    valueInteger: Present = None
    valueRatio: Present = None
    valueBoolean: Present = None
    valueRange: Present = None
    valueSampledData: Present = None
    valueTime: Present = None
    valueDateTime: Present = None
    valuePeriod: Present = None
    effectiveTiming: Present = None
    effectiveInstant: Present = None
    dataAbsentReason: CodeableConcept | None = None
    interpretation: Raw = None  # list[CodedConcept], read through SHARED
    referenceRange: Raw = None  # list[ReferenceRange], read through SHARED


class Medication(Struct):
    resource_type: ClassVar[str] = "Medication"
    CHOICES: ClassVar = ()
    SHARED: ClassVar = ()
    id: FhirId | None = None
    meta: ResourceMeta | None = None
    code: CodeableConcept | None = None
    ingredient: list[Ingredient] = []


class _MedicationRecord(Struct):
    """What the three medication resources share: medication[x] and contained Medications
    (read only when a `#id` reference points to one)."""

    SHARED: ClassVar = ()
    id: FhirId | None = None
    meta: ResourceMeta | None = None
    medicationCodeableConcept: CodeableConcept | None = None
    medicationReference: Reference | None = None
    contained: list[Raw] = []

    def __post_init__(self) -> None:
        # Required by FHIR; declared in each resource with its own value set, so checked here.
        if getattr(self, "status", None) is None:
            raise ValueError("status is required")
        if self.medicationCodeableConcept is None and self.medicationReference is None:
            raise ValueError("medication[x] is required")


class MedicationStatement(_MedicationRecord):
    resource_type: ClassVar[str] = "MedicationStatement"
    CHOICES: ClassVar = (_MEDICATION, _EFFECTIVE)
    status: MedicationStatementStatus | None = None
    effectiveDateTime: DateTime | None = None
    effectivePeriod: Period | None = None


class MedicationRequest(_MedicationRecord):
    resource_type: ClassVar[str] = "MedicationRequest"
    CHOICES: ClassVar = (_MEDICATION,)
    status: MedicationRequestStatus | None = None
    intent: MedicationRequestIntent | None = None
    authoredOn: DateTime | None = None
    dispenseRequest: DispenseRequest | None = None
    dosageInstruction: list[Dosage] = []

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.intent is None:
            raise ValueError("intent is required")


class MedicationAdministration(_MedicationRecord):
    resource_type: ClassVar[str] = "MedicationAdministration"
    CHOICES: ClassVar = (_MEDICATION, _EFFECTIVE)
    status: MedicationAdministrationStatus | None = None
    effectiveDateTime: DateTime | None = None
    effectivePeriod: Period | None = None


class Procedure(Struct):
    resource_type: ClassVar[str] = "Procedure"
    CHOICES: ClassVar = (_Choice("performed", "DateTime", "Period", "String", "Age", "Range"),)
    SHARED: ClassVar = ()
    status: EventStatus
    id: FhirId | None = None
    meta: ResourceMeta | None = None
    code: CodeableConcept | None = None
    performedDateTime: DateTime | None = None
    performedPeriod: Period | None = None
    performedString: Present = None
    performedAge: Present = None
    performedRange: Present = None


class Condition(Struct):
    """§3.7: the problem-list entries that are evidence of WM (or of another disease)."""

    resource_type: ClassVar[str] = "Condition"
    CHOICES: ClassVar = ()
    SHARED: ClassVar = ()
    id: FhirId | None = None
    meta: ResourceMeta | None = None
    clinicalStatus: CodeableConcept | None = None
    verificationStatus: CodeableConcept | None = None
    code: CodeableConcept | None = None


RESOURCE_TYPES: dict[str, type[Struct]] = {
    model.resource_type: model
    for model in (
        Observation,
        MedicationStatement,
        MedicationRequest,
        MedicationAdministration,
        Procedure,
        Condition,
        Medication,
    )
}


class NotValidFhir(ValueError):
    """A read element breaks the FHIR R4 rules; the message names the element and the rule,
    never the value."""


_AT = re.compile(r"^(?P<message>.*) - at `\$(?P<path>[^`]*)`$", re.DOTALL)
_ENUM = re.compile(r"^Invalid enum value .*", re.DOTALL)
_REGEX = re.compile(r"`str` matching regex '(?P<pattern>.*)'", re.DOTALL)


def _reason(error: msgspec.ValidationError, element: str = "") -> str:
    """The reason a read element is refused; `element` is where a separately read part sits
    in its resource."""
    text = str(error)
    match = _AT.match(text)
    message, path = (match["message"], match["path"]) if match else (text, "")
    path = (element + path).lstrip(".")
    regex = _REGEX.search(message)
    if regex:
        pattern = regex["pattern"].encode().decode("unicode_escape")
        name = _TYPE_NAMES.get(pattern, "the required form")
        message = f"does not have the form of a FHIR {name}"
    elif _ENUM.match(message):
        message = "not a code of its required value set"
    return f"not valid FHIR R4: {path or '(resource)'}: {message[:120]}"


class ElementReader:
    """Reads the resources of one request (one reader per request: what it remembers is
    that request's data, and goes with it)."""

    def __init__(self) -> None:
        self._checked: dict[type, dict[str, _Checked]] = {Code: {}, Uri: {}, String: {}}
        self._decoders: dict[Any, msgspec.json.Decoder] = {}
        self._read_once: dict[str, dict[bytes, Any]] = defaultdict(dict)  # element -> text

    def read(self, resource: Resource | dict[str, Any], resource_type: str | None = None) -> Any:
        """The read elements of a resource of one of `RESOURCE_TYPES`, from its JSON text,
        checked; `NotValidFhir` names the first element that breaks the rules. The caller
        that has looked at the resource already passes its type."""
        text = resource if type(resource) is Raw else as_resource(resource)
        if text is None:
            raise NotValidFhir("not valid FHIR R4: (resource): not a JSON object")
        model = RESOURCE_TYPES[resource_type or _resource_type(text)]
        decoder = self._decoders.get(model) or self._decoder(model)
        try:
            result = decoder.decode(text)
        except msgspec.ValidationError as error:
            raise NotValidFhir(_reason(error)) from None
        except (msgspec.DecodeError, JsonRefused, RecursionError):
            raise NotValidFhir("not valid FHIR R4: (resource): not acceptable JSON") from None
        for element, wanted in model.SHARED:
            setattr(result, element, self._shared(element, wanted, getattr(result, element)))
        if model.CHOICES:
            _one_of(result)
        return result

    def _shared(self, element: str, wanted: Any, text: Raw | None) -> Any:
        if text is None:
            return ()  # an absent list (one shared, empty, immutable)
        read_once = self._read_once[element]
        key = bytes(text)
        known = read_once.get(key)
        if known is not None:
            return known
        try:
            value = self._decoder(wanted).decode(text)
        except msgspec.ValidationError as error:
            raise NotValidFhir(_reason(error, element)) from None
        except (msgspec.DecodeError, JsonRefused, RecursionError):
            raise NotValidFhir(f"not valid FHIR R4: {element}: not acceptable JSON") from None
        read_once[key] = value
        return value

    def _decoder(self, wanted: Any) -> msgspec.json.Decoder:
        decoder = self._decoders.get(wanted)
        if decoder is None:
            decoder = msgspec.json.Decoder(wanted, dec_hook=self._decode, float_hook=parse_float)
            self._decoders[wanted] = decoder
        return decoder

    def _decode(self, wanted: type, value: Any) -> Any:
        # Called for every code, uri, string and decimal read: the seen value is the fast path.
        if wanted is FhirDecimal:
            return _decimal(value)
        try:
            return self._checked[wanted][value]
        except KeyError:
            return self._check(wanted, value)
        except TypeError:  # an array or object where a primitive belongs
            raise TypeError(f"expected a FHIR {_type_name(wanted)}") from None

    def _check(self, wanted: type, value: Any) -> Any:
        if wanted not in self._checked:
            raise NotImplementedError
        if type(value) is not str:
            raise TypeError(f"expected a FHIR {wanted.fhir_type} (a JSON string)")
        if not wanted.pattern.search(value):
            raise ValueError(f"does not have the form of a FHIR {wanted.fhir_type}")
        known = self._checked[wanted][value] = wanted(value)
        return known


class _Head(Struct):
    resourceType: Any = None
    id: Any = None


_HEAD = msgspec.json.Decoder(_Head)


def _head(text: Raw) -> _Head | None:
    try:
        return _HEAD.decode(text)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None


def _resource_type(text: Raw) -> str:
    head = _head(text)
    if head is None or head.resourceType not in RESOURCE_TYPES:
        raise NotValidFhir("not valid FHIR R4: resourceType: not a type the rules read")
    return head.resourceType


def _type_name(wanted: type) -> str:
    return (
        "decimal (a JSON number)"
        if wanted is FhirDecimal
        else f"{wanted.fhir_type} (a JSON string)"
    )


def read_resource(resource: Resource | dict[str, Any]) -> Any:
    """One resource read on its own (a test, a tool)."""
    return ElementReader().read(resource)


def read_contained(contained: list[Raw], local_id: str) -> Medication | None:
    """The contained Medication with this id (a `#id` reference), read; None if there is
    none."""
    for text in contained:
        head = _head(text)
        if head is not None and head.resourceType == "Medication" and head.id == local_id:
            return ElementReader().read(text, "Medication")
    return None


# Dates ----------------------------------------------------------------------------------------


def parse_datetime(text: str) -> dt.date | dt.datetime | None:
    """A checked FHIR dateTime/instant as a day or, with a time, an aware datetime; None when
    it is less precise than a day (a year, a year and month). `ValueError` for a date the
    calendar does not have (the regexes allow 2024-02-30)."""
    if len(text) < 10:
        return None
    if len(text) == 10:
        return dt.date.fromisoformat(text)
    try:
        return dt.datetime.fromisoformat(text)  # Python 3.11 reads "Z" and fractions
    except ValueError:
        day = dt.date.fromisoformat(text[:10])  # a day the calendar lacks raises here
        if text[17:19] == "60":  # a leap second: the day is right, the time not representable
            return day
        raise
