"""FHIR `OperationOutcome` bodies for error answers (CDS Hooks 3.0 ballot practice)."""

from __future__ import annotations

from typing import Any

# FHIR R4 IssueType codes used here: http://hl7.org/fhir/R4/valueset-issue-type.html
INVALID = "invalid"
NOT_FOUND = "not-found"
INCOMPLETE = "incomplete"
TIMEOUT = "timeout"
SECURITY = "security"


def operation_outcome(
    diagnostics: str, code: str = INVALID, severity: str = "error", expression: str | None = None
) -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def outcome_diagnostics(resource: Any) -> str:
    """The human text of an OperationOutcome a client put in prefetch (for logs and errors)."""
    if not isinstance(resource, dict):
        return ""
    texts = []
    for issue in resource.get("issue") or []:
        if isinstance(issue, dict):
            text = issue.get("diagnostics") or (issue.get("details") or {}).get("text")
            if isinstance(text, str):
                texts.append(text[:200])
    return "; ".join(texts)
