"""Step 1 of a call: check the JSON body against the project's CDS Hooks 2.0 schemas.

The schemas are package data (`cds_service/schemas/`), compiled once per process.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

SCHEMA_NAMES = ("request", "response", "feedback")


class InvalidBody(ValueError):
    """The body is not acceptable; `location` is a JSON path such as `context.patientId`."""

    def __init__(self, message: str, location: str | None = None) -> None:
        super().__init__(message)
        self.location = location


def _reject_constant(name: str) -> Any:
    raise InvalidBody(f"{name} is not valid JSON (JSON has no NaN or Infinity)")


def parse_json(body: bytes) -> Any:
    """Parse a request body strictly: UTF-8, no NaN/Infinity, decimals kept exact."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidBody(f"body is not UTF-8: {error.reason} at byte {error.start}") from None
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise InvalidBody(
            f"body is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        ) from None
    except RecursionError:
        raise InvalidBody("body is nested too deeply") from None


@cache
def schema(name: str) -> dict[str, Any]:
    text = resources.files("cds_service").joinpath(f"schemas/{name}.schema.json").read_text()
    return json.loads(text)


def _inline_refs(node: Any, definitions: dict[str, Any]) -> Any:
    """The schema with its local `#/$defs/...` references written out: the same schema,
    validated about a third faster (every request goes through it)."""
    if isinstance(node, dict):
        reference = node.get("$ref")
        if len(node) == 1 and isinstance(reference, str) and reference.startswith("#/$defs/"):
            return _inline_refs(definitions[reference.removeprefix("#/$defs/")], definitions)
        return {key: _inline_refs(value, definitions) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline_refs(value, definitions) for value in node]
    return node


@cache
def _validator(name: str) -> Draft202012Validator:
    document = schema(name)
    return Draft202012Validator(_inline_refs(document, document.get("$defs", {})))


def _path(error: ValidationError) -> str:
    parts = []
    for part in error.absolute_path:
        parts.append(f"[{part}]" if isinstance(part, int) else f".{part}")
    return "".join(parts).lstrip(".") or "(root)"


def _message(error: ValidationError) -> str:
    message = error.message
    return message if len(message) <= 300 else message[:297] + "..."


def validate(name: str, document: Any) -> None:
    """Raise `InvalidBody` naming the first (most relevant) schema error."""
    validator = _validator(name)
    if validator.is_valid(document):
        return
    errors = sorted(validator.iter_errors(document), key=_error_rank)
    if errors:
        error = errors[0]
        where = _path(error)
        raise InvalidBody(f"{where}: {_message(error)}", location=where)


_RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")


def check_prefetch_values(request: Mapping[str, Any], keys: Iterable[str]) -> None:
    """Each prefetch value the service will read is null or a FHIR resource: an object with a
    `resourceType`. (Its content is validated as FHIR later, resource by resource.)"""
    prefetch = request.get("prefetch") or {}
    for key in keys:
        if key not in prefetch or prefetch[key] is None:
            continue
        value = prefetch[key]
        where = f"prefetch.{key}"
        if not isinstance(value, dict):
            raise InvalidBody(f"{where}: a FHIR resource or null, not {_json_type(value)}", where)
        resource_type = value.get("resourceType")
        if not isinstance(resource_type, str) or not _RESOURCE_TYPE.fullmatch(resource_type):
            where += ".resourceType"
            raise InvalidBody(f"{where}: missing or not a FHIR resource type", where)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    return "a number"


def _error_rank(error: ValidationError) -> tuple[int, str]:
    # Prefer the shallowest error: "context: 'patientId' is a required property" is more
    # useful than an error deep inside one branch of an anyOf.
    return (len(error.absolute_path), _path(error))


def schema_errors(name: str, document: Any) -> list[str]:
    """All schema errors, for tests that check what the service itself sends."""
    return [f"{_path(e)}: {e.message}" for e in _validator(name).iter_errors(document)]
