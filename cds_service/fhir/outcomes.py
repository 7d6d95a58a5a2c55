"""FHIR `OperationOutcome` bodies for error answers (CDS Hooks 3.0 ballot practice)."""

from __future__ import annotations

from typing import Any

# FHIR R4 IssueType codes used here: http://hl7.org/fhir/R4/valueset-issue-type.html
INVALID = "invalid"
NOT_FOUND = "not-found"
INCOMPLETE = "incomplete"
SECURITY = "security"


def operation_outcome(
    diagnostics: str, code: str = INVALID, severity: str = "error", expression: str | None = None
) -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}
