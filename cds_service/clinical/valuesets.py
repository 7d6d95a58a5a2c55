"""Value sets: which codes and names mean what (clinical-rules.md §3). One place only.

Codes are those clinical-rules.md lists as verified; names (ingredient and brand) are the
safety net, as sites code medications inconsistently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .models import DrugClass, IfeReading, Series

LOINC_SYSTEM = "http://loinc.org"
RXNORM_SYSTEM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC_SYSTEM = "http://www.whocc.no/atc"
SNOMED_SYSTEM = "http://snomed.info/sct"
INTERPRETATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"

# §3.1 LOINC (loinc.org entries 2472-9, 33358-3, 51435-6, 25700-6, 3128-6).
SERIES_BY_LOINC: dict[str, Series] = {
    "2472-9": Series.TOTAL_IGM,  # IgM [Mass/volume] in Serum or Plasma
    # Protein.monoclonal [Mass/volume] in Serum or Plasma by Electrophoresis (and band 1)
    "33358-3": Series.M_SPIKE,
    "51435-6": Series.M_SPIKE,
}
# §3.1 one value per day: in the M-spike series, 33358-3 replaces 51435-6.
PREFERRED_M_SPIKE_LOINC = "33358-3"
IMMUNOFIXATION_LOINC = "25700-6"  # Immunofixation for Serum or Plasma
SERUM_VISCOSITY_LOINC = "3128-6"  # Viscosity of Serum (§7)
OBSERVATION_CODES = frozenset({*SERIES_BY_LOINC, IMMUNOFIXATION_LOINC, SERUM_VISCOSITY_LOINC})

# Counted laboratory statuses (§3.1).
COUNTED_OBSERVATION_STATUSES = frozenset({"final", "amended", "corrected"})
# §3.1: a result in these statuses was never a measurement: not even "measured but unusable".
NEVER_MEASURED_STATUSES = frozenset({"entered-in-error", "cancelled"})

# §3.2 serum immunofixation: SNOMED CT qualifier values (260385009 Negative, 260415000 Not
# detected, 10828004 Positive, 260373001 Detected) and v3 ObservationInterpretation codes.
IFE_NEGATIVE_CODES = frozenset({"260385009", "260415000"})
IFE_POSITIVE_CODES = frozenset({"10828004", "260373001"})
IFE_NEGATIVE_INTERPRETATIONS = frozenset({"NEG", "ND", "N"})
IFE_POSITIVE_INTERPRETATIONS = frozenset({"POS", "DET", "A", "AA"})

# §3.2 free text, clause by clause.
_CLAUSE_SPLIT = re.compile(r"[.;:,\n\r]+")
_FINDINGS = (
    "igm kappa",
    "igm lambda",
    "m-protein",
    "paraprotein",
    "monoclonal",
    "positive",
    "detected",
    "present",
    "identified",
    "seen",
    "band",
    "kappa",
    "lambda",
)
# Longest first, so that a finding inside a longer one is one finding.
_FINDING = re.compile(
    r"(?<![\w-])("
    + "|".join(re.escape(f) for f in sorted(_FINDINGS, key=len, reverse=True))
    + r")(?![\w-])"
)
_NEGATIONS = frozenset({"no", "not", "negative", "without", "absent", "none"})
_NEGATIVE_ENDINGS = ("not detected", "not seen", "not identified", "absent")
_ALWAYS_POSITIVE = re.compile(r"\b(present|positive|persists|unchanged|no change)\b")
_UNREADABLE = re.compile(
    r"\b(not performed|not done|insufficient|no sample|cancelled|canceled|pending"
    r"|see comment|polyclonal|oligoclonal)\b"
)
_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
# [design] §3.2: a negation among a clause's first 2 words makes it negative.
NEGATION_LEAD_WORDS = 2

# contract v3: a text scanned for drug names, regimens or procedures is read this far; EHR
# texts are short, and a long one must not make the scan costly.
MAX_SCANNED_CHARACTERS = 2000


def _read_clause(clause: str) -> IfeReading | None:
    """One clause: negative, positive, unreadable, or None when it says nothing."""
    if _UNREADABLE.search(clause):
        return IfeReading.UNREADABLE
    if _ALWAYS_POSITIVE.search(clause):
        return IfeReading.POSITIVE
    words = _WORD.findall(clause)
    if not words:
        return None
    has_finding = bool(_FINDING.search(clause))
    negated = [w for w in words if w in _NEGATIONS]
    if any(w in _NEGATIONS for w in words[:NEGATION_LEAD_WORDS]):
        return IfeReading.NEGATIVE
    if " ".join(words).endswith(_NEGATIVE_ENDINGS):
        return IfeReading.NEGATIVE
    if negated and not has_finding:
        return IfeReading.NEGATIVE
    if has_finding:
        return IfeReading.POSITIVE
    return None


def immunofixation_text_readings(text: str) -> list[IfeReading]:
    """What each clause of a free-text immunofixation result says (§3.2)."""
    lowered = text.lower()
    readings = []
    for clause in _CLAUSE_SPLIT.split(lowered):
        reading = _read_clause(" ".join(clause.split()))
        if reading is not None:
            readings.append(reading)
    return readings


def combine_ife_readings(readings: list[IfeReading]) -> IfeReading:
    """§3.2: positive if anything says positive; negative only when something says negative
    and nothing makes the result unreadable; otherwise unreadable."""
    if IfeReading.POSITIVE in readings:
        return IfeReading.POSITIVE
    if IfeReading.NEGATIVE in readings and IfeReading.UNREADABLE not in readings:
        return IfeReading.NEGATIVE
    return IfeReading.UNREADABLE


@dataclass(frozen=True)
class WmDrug:
    ingredient: str
    drug_class: DrugClass
    rxnorm: frozenset[str] = frozenset()
    atc: frozenset[str] = frozenset()
    brands: tuple[str, ...] = ()


def _drug(
    ingredient: str,
    drug_class: DrugClass,
    rxnorm: str = "",
    atc: str = "",
    brands: tuple[str, ...] = (),
) -> WmDrug:
    return WmDrug(
        ingredient,
        drug_class,
        frozenset(filter(None, [rxnorm])),
        frozenset(filter(None, [atc])),
        brands,
    )


# §3.3 table (RxNorm and ATC codes verified there: RxNav ingredient concepts; WHO ATC/DDD).
WM_DRUGS: tuple[WmDrug, ...] = (
    _drug("ibrutinib", DrugClass.BTKI, rxnorm="1442981", atc="L01EL01", brands=("Imbruvica",)),
    _drug("acalabrutinib", DrugClass.BTKI, atc="L01EL02", brands=("Calquence",)),
    _drug("zanubrutinib", DrugClass.BTKI, atc="L01EL03", brands=("Brukinsa",)),
    _drug("pirtobrutinib", DrugClass.BTKI, brands=("Jaypirca",)),
    _drug("tirabrutinib", DrugClass.BTKI, brands=("Velexbru",)),
    _drug("orelabrutinib", DrugClass.BTKI, brands=("Hibruka",)),
    _drug(
        "rituximab",
        DrugClass.ANTI_CD20,
        rxnorm="121191",
        atc="L01FA01",
        brands=(
            "Rituxan Hycela",
            "Rituxan",
            "MabThera",
            "Truxima",
            "Ruxience",
            "Riabni",
            "Rixathon",
        ),
    ),
    _drug("obinutuzumab", DrugClass.ANTI_CD20, atc="L01FA03", brands=("Gazyva", "Gazyvaro")),
    _drug("ofatumumab", DrugClass.ANTI_CD20, brands=("Arzerra",)),
    _drug("bortezomib", DrugClass.PROTEASOME_INHIBITOR, rxnorm="358258", brands=("Velcade",)),
    _drug("carfilzomib", DrugClass.PROTEASOME_INHIBITOR, rxnorm="1302966", brands=("Kyprolis",)),
    _drug("ixazomib", DrugClass.PROTEASOME_INHIBITOR, rxnorm="1723735", brands=("Ninlaro",)),
    _drug("everolimus", DrugClass.MTOR_INHIBITOR, brands=("Afinitor",)),
    _drug(
        "bendamustine",
        DrugClass.OTHER,
        brands=("Treanda", "Bendeka", "Belrapzo", "Vivimusta", "Levact"),
    ),
    _drug("cyclophosphamide", DrugClass.OTHER, rxnorm="3002", brands=("Cytoxan", "Endoxan")),
    _drug("fludarabine", DrugClass.OTHER, brands=("Fludara",)),
    _drug("cladribine", DrugClass.OTHER, brands=("Leustatin",)),
    _drug("chlorambucil", DrugClass.OTHER, brands=("Leukeran",)),
    _drug("venetoclax", DrugClass.OTHER, brands=("Venclexta", "Venclyxto")),
    _drug("doxorubicin", DrugClass.OTHER, brands=("Adriamycin",)),
    _drug("vincristine", DrugClass.OTHER, brands=("Oncovin",)),
    _drug("dexamethasone", DrugClass.PARTNER, brands=("Decadron", "Hemady")),
    _drug("carmustine", DrugClass.CONDITIONING, brands=("BiCNU",)),
    _drug("etoposide", DrugClass.CONDITIONING),
    _drug("cytarabine", DrugClass.CONDITIONING),
    _drug("melphalan", DrugClass.CONDITIONING, brands=("Alkeran",)),
    _drug("prednisone", DrugClass.PARTNER),
    _drug("prednisolone", DrugClass.PARTNER),
)
# §5 delayed-response: IgM responses to these are often slow (IWWM-6).
SLOW_RESPONSE_INGREDIENTS = frozenset({"bendamustine", "fludarabine", "cladribine"})

_BY_CODE: dict[tuple[str, str], WmDrug] = {
    **{(RXNORM_SYSTEM, code): drug for drug in WM_DRUGS for code in drug.rxnorm},
    **{(ATC_SYSTEM, code): drug for drug in WM_DRUGS for code in drug.atc},
}
_BY_NAME: dict[str, WmDrug] = {
    name.lower(): drug for drug in WM_DRUGS for name in (drug.ingredient, *drug.brands)
}
# Whole words, case-insensitive, longest name first: "Rituximab-abbs 500 mg", "BRUKINSA 160 mg"
# and "Rituxan Hycela" match; "ibrutinibum-like" text does not invent a drug.
_NAME_PATTERN = re.compile(
    r"\b(" + "|".join(re.escape(n) for n in sorted(_BY_NAME, key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)


_BY_INGREDIENT = {drug.ingredient: drug for drug in WM_DRUGS}
# §3.3 [design] regimen acronyms: each stands for its drugs (one episode of each).
REGIMEN_ACRONYMS: dict[str, tuple[str, ...]] = {
    "BR": ("bendamustine", "rituximab"),
    "Benda-R": ("bendamustine", "rituximab"),
    "DRC": ("dexamethasone", "rituximab", "cyclophosphamide"),
    "RCD": ("dexamethasone", "rituximab", "cyclophosphamide"),
    "BDR": ("bortezomib", "dexamethasone", "rituximab"),
    "VR": ("bortezomib", "rituximab"),
    "R-CHOP": ("rituximab", "cyclophosphamide", "doxorubicin", "vincristine", "prednisone"),
    "R-CVP": ("rituximab", "cyclophosphamide", "vincristine", "prednisone"),
    "CaRD": ("carfilzomib", "rituximab", "dexamethasone"),
    "IDR": ("ixazomib", "dexamethasone", "rituximab"),
    "FCR": ("fludarabine", "cyclophosphamide", "rituximab"),
    "BEAM": ("carmustine", "etoposide", "cytarabine", "melphalan"),
}
_ACRONYMS = {name.lower(): drugs for name, drugs in REGIMEN_ACRONYMS.items()}
# Whole words: not preceded or followed by a letter or digit.
_ACRONYM_PATTERN = re.compile(
    r"(?<![A-Za-z0-9])("
    + "|".join(re.escape(a) for a in sorted(REGIMEN_ACRONYMS, key=len, reverse=True))
    + r")(?![A-Za-z0-9])",
    re.IGNORECASE,
)


def drugs_of_acronyms(text: str) -> list[WmDrug]:
    """The drugs of every regimen acronym in `text` ("DRC regimen cycle 3 of 6")."""
    text = text[:MAX_SCANNED_CHARACTERS]
    return [
        _BY_INGREDIENT[name]
        for match in _ACRONYM_PATTERN.findall(text)
        for name in _ACRONYMS[match.lower()]
    ]


def drugs_in_text(text: str) -> list[WmDrug]:
    """Every WM drug a text names: by ingredient, brand name or regimen acronym (§3.3)."""
    text = text[:MAX_SCANNED_CHARACTERS]
    exact = _BY_NAME.get(text.strip().lower())
    if exact is not None:
        return [exact]  # the text is one drug's name ("rituximab"): nothing else to find
    return drugs_named_in(text) + drugs_of_acronyms(text)


def names_beam(text: str) -> bool:
    text = text[:MAX_SCANNED_CHARACTERS]
    return any(match.lower() == "beam" for match in _ACRONYM_PATTERN.findall(text))


# §3.3 [design] unrecognised anticancer therapy --------------------------------------------
_TRIAL_WORDS = re.compile(
    r"(?<![A-Za-z0-9])(investigational|study drug|blinded)(?![A-Za-z0-9])", re.IGNORECASE
)
_IMP = re.compile(r"(?<![A-Za-z0-9])IMP(?![A-Za-z0-9])")  # upper case only
_SPONSOR_CODE = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2,}-?\d{3,6}(?![A-Za-z0-9])")
_SUPPORTIVE_CARE = re.compile(
    r"(?<![A-Za-z0-9])(aciclovir|acyclovir|valaciclovir|allopurinol|rasburicase|co-trimoxazole"
    r"|sulfamethoxazole|fluconazole|posaconazole|ondansetron|omeprazole|pantoprazole"
    r"|filgrastim|pegfilgrastim|immunoglobulin|entecavir|tenofovir|lamivudine|letermovir)"
    r"(?![A-Za-z0-9])",
    re.IGNORECASE,
)
_ANTICANCER_WORDS = re.compile(
    r"(?<![A-Za-z0-9])(chemotherapy|chemo|regimen|cycle|conditioning|antineoplastic)"
    r"(?![A-Za-z0-9])",
    re.IGNORECASE,
)
_ANTICANCER_ENDINGS = re.compile(
    r"[a-z]*(tinib|ciclib|clax|zomib|lisib|tuximab|tuzumab|tumumab|tamab|domide|mustine|phalan"
    r"|platin|rubicin|poside|tabine|leucel)(?![A-Za-z0-9])",
    re.IGNORECASE,
)
ANTINEOPLASTIC_ATC_PREFIX = "L01"


def looks_investigational(texts: list[str], atc_codes: list[str]) -> bool:
    """§3.3: a record naming no WM drug that reads as a trial drug (investigational, study
    drug, blinded, IMP, or a sponsor code such as BGB-16673), unless it is coded outside the
    antineoplastic agents or names a supportive-care drug ("per protocol" is not enough)."""
    texts = [text[:MAX_SCANNED_CHARACTERS] for text in texts]
    if any(not code.startswith(ANTINEOPLASTIC_ATC_PREFIX) for code in atc_codes):
        return False
    if any(_SUPPORTIVE_CARE.search(text) for text in texts):
        return False
    return any(
        _TRIAL_WORDS.search(text) or _IMP.search(text) or _SPONSOR_CODE.search(text)
        for text in texts
    )


def looks_anticancer(texts: list[str], atc_codes: list[str]) -> bool:
    """§3.3: anticancer treatment that is not a WM drug: left out and reported."""
    texts = [text[:MAX_SCANNED_CHARACTERS] for text in texts]
    if any(code.startswith(ANTINEOPLASTIC_ATC_PREFIX) for code in atc_codes):
        return True
    return any(_ANTICANCER_WORDS.search(text) or _ANTICANCER_ENDINGS.search(text) for text in texts)


_HIGH_DOSE_TEXT = re.compile(r"(?<![A-Za-z0-9])(high-dose|high dose|HDM)(?![A-Za-z0-9])", re.I)
_DOSE_PER_M2 = re.compile(r"(\d+(?:\.\d+)?)\s*mg/m(?:2|²)", re.IGNORECASE)
MELPHALAN_HIGH_DOSE_MG_M2 = 140  # [design] §3.5: conditioning, not an oral WM regimen
_MOBILISATION = re.compile(r"mobili[sz]ation|priming", re.IGNORECASE)


def says_high_dose(texts: list[str]) -> bool:
    """§3.5: melphalan at least 140 mg/m2 (a number before mg/m2 in the text) or "high-dose"."""
    texts = [text[:MAX_SCANNED_CHARACTERS] for text in texts]
    for text in texts:
        if _HIGH_DOSE_TEXT.search(text):
            return True
        if any(float(n) >= MELPHALAN_HIGH_DOSE_MG_M2 for n in _DOSE_PER_M2.findall(text)):
            return True
    return False


def says_mobilisation(texts: list[str]) -> bool:
    texts = [text[:MAX_SCANNED_CHARACTERS] for text in texts]
    return any(
        ("mobili" in lowered or "priming" in lowered) and _MOBILISATION.search(lowered)
        for lowered in (text.lower() for text in texts)
    )


_AUTOLOGOUS = re.compile(r"autologous", re.IGNORECASE)
_TRANSPLANT = re.compile(r"transplant|stem cell", re.IGNORECASE)
_ASCT_WORDS = re.compile(r"(?<![A-Za-z0-9])(ASCT|autograft)(?![A-Za-z0-9])", re.IGNORECASE)
_COLLECTION_WORDS = re.compile(
    r"collection|harvest|apheresis|mobilisation|mobilization", re.IGNORECASE
)
_STEM_CELL_SOURCE = re.compile(r"stem cell|(?<![A-Za-z0-9])(PBSC|HPC)(?![A-Za-z0-9])", re.I)
_COLLECTING = re.compile(r"apheresis|collection|harvest", re.IGNORECASE)


def transplant_kind(text: str) -> str | None:
    """§3.5: "transplant" (an autologous transplant procedure), "collection" (a stem-cell
    collection), or None."""
    text = text[:MAX_SCANNED_CHARACTERS]
    if _STEM_CELL_SOURCE.search(text) and _COLLECTING.search(text):
        return "collection"
    if _COLLECTION_WORDS.search(text):
        return None
    if (_AUTOLOGOUS.search(text) and _TRANSPLANT.search(text)) or _ASCT_WORDS.search(text):
        return "transplant"
    return None


def drug_by_code(system: str | None, code: str | None) -> WmDrug | None:
    if system is None or code is None:
        return None
    return _BY_CODE.get((system, code))


def drugs_named_in(text: str) -> list[WmDrug]:
    """Every WM drug whose ingredient or brand name appears as a word in `text`."""
    text = text[:MAX_SCANNED_CHARACTERS]
    found = dict.fromkeys(_BY_NAME[match.lower()] for match in _NAME_PATTERN.findall(text))
    return list(found)


# §3.6 plasmapheresis: by words (no SNOMED CT code has been verified for the product yet).
_PLASMA_EXCHANGE = re.compile(r"\b(plasmapheresis|plasma exchange|tpe)\b", re.IGNORECASE)
_BARE_APHERESIS = re.compile(r"\bapheresis\b", re.IGNORECASE)
_OTHER_APHERESIS = re.compile(
    r"stem cell|progenitor|\bpbsc\b|\bhpc\b|leukapheresis|leukocytapheresis|lymphocyte|platelet"
    r"|red cell|red blood cell|\brbc\b|erythrocyt|photopheresis|\bldl\b|lipoprotein|donor"
    r"|donation|collection|harvest|car-t|car t",
    re.IGNORECASE,
)


def names_plasmapheresis(text: str) -> bool:
    text = text[:MAX_SCANNED_CHARACTERS]
    if _PLASMA_EXCHANGE.search(text):
        return True
    return bool(_BARE_APHERESIS.search(text)) and not _OTHER_APHERESIS.search(text)


# §3.7 evidence of WM [design] ---------------------------------------------------------------

WM_SNOMED_CODE = "35601003"  # Waldenström macroglobulinemia
WM_ICD10_PREFIX = "C88.0"  # and national extensions beginning with it
_WM_TEXT = re.compile(r"waldenstr[öo]m|macroglobulina?emia", re.IGNORECASE)
# Other diseases the same drugs treat (ICD-10): CLL, myeloma, mantle cell and other B-cell
# lymphomas, ITP, rheumatoid arthritis, granulomatosis with polyangiitis.
OTHER_DISEASE_ICD10_PREFIXES = (
    "C91.1",
    "C90.0",
    "C83.1",
    "C82",
    "C83.0",
    "C83.3",
    "C85",
    "C88.4",
    "D69.3",
    "M05",
    "M06",
    "M31.3",
)
ACTIVE_CONDITION_STATUSES = frozenset({"active", "recurrence", "relapse"})
NOT_A_DIAGNOSIS_STATUSES = frozenset({"entered-in-error", "refuted"})


def _icd10(system: str | None) -> bool:
    return system is not None and "icd-10" in system.lower()


def condition_kind(codings: list[tuple[str | None, str | None]], texts: list[str]) -> str | None:
    """ "wm" for Waldenström macroglobulinemia (ICD-10 C88.0*, SNOMED CT 35601003, or named
    in the text); "other" for another disease the WM drugs treat; None otherwise."""
    texts = [text[:MAX_SCANNED_CHARACTERS] for text in texts]
    for system, code in codings:
        if code and _icd10(system) and code.upper().startswith(WM_ICD10_PREFIX):
            return "wm"
        if code == WM_SNOMED_CODE and system == SNOMED_SYSTEM:
            return "wm"
    if any(_WM_TEXT.search(text) for text in texts if text):
        return "wm"
    for system, code in codings:
        if code and _icd10(system) and code.upper().startswith(OTHER_DISEASE_ICD10_PREFIXES):
            return "other"
    return None
