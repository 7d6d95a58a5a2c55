"""The patient's name and birth date for the trend app's banner (SMART `need_patient_banner`):
so a clinician can see the page is about the patient they opened. Read strictly; anything
unreadable leaves the banner out rather than guessing."""

from __future__ import annotations

import re
from typing import Any

from .documents import Resource, resource_members

_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")
_PRINTABLE = re.compile(r"[^\x00-\x1f\x7f]{1,100}")
# Bidirectional controls (which can reorder what a name appears to say: "Trojan Source") and
# C1 controls: taken out of a name before it is shown (contract v3).
_INVISIBLE = re.compile("[\u0080-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def patient_name(resource: dict[str, Any]) -> str | None:
    """The name to show for a Patient (its current one), read strictly, or None."""
    return _name(resource)


def _name(resource: dict[str, Any]) -> str | None:
    names = resource.get("name")
    if not isinstance(names, list):
        return None
    for name in names:
        if not isinstance(name, dict) or name.get("use") in ("old", "anonymous"):
            continue
        text = name.get("text")
        if not isinstance(text, str):
            given = name.get("given") if isinstance(name.get("given"), list) else []
            parts = [*given, name.get("family")]
            text = " ".join(p for p in parts if isinstance(p, str) and p)
        text = _INVISIBLE.sub("", text).strip() if text else text
        if text and _PRINTABLE.fullmatch(text):
            return text
    return None


def patient_banner(resources: list[Resource | dict[str, Any]], patient_id: str) -> str | None:
    """'Jane Doe, born 1950-01-02', from the Patient resource with this id, or None."""
    for text in resources:
        resource = resource_members(text)
        if resource is None or resource.get("resourceType") != "Patient":
            continue
        if resource.get("id") != patient_id:
            continue  # never another patient's name
        name = _name(resource)
        born = resource.get("birthDate")
        born_text = f"born {born}" if isinstance(born, str) and _DATE.fullmatch(born) else None
        parts = [part for part in (name, born_text) if part]
        return ", ".join(parts) if parts else None
    return None
