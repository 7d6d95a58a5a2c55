"""Step 1 of a call: check the JSON body against the project's CDS Hooks 2.0 schemas.

The schemas are package data (`cds_service/schemas/`), compiled once per process. Every
body is checked by a compiled validator (jsonschema-rs, about a hundred times faster here);
only a body it refuses is checked again by the reference validator (jsonschema), whose
errors name the first rule broken. A property test holds the two to the same verdicts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from importlib import resources
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

from ..fhir import strict_json

SCHEMA_NAMES = ("request", "response", "feedback")


class InvalidBody(ValueError):
    """The body is not acceptable; `location` is a JSON path such as `context.patientId`."""

    def __init__(self, message: str, location: str | None = None) -> None:
        super().__init__(message)
        self.location = location


def parse_json(body: bytes, loads: Callable[[bytes], Any] = strict_json.loads) -> Any:
    """Parse a request body strictly: UTF-8, no NaN/Infinity, decimals kept exact, numbers
    of sane size. `fhir.documents.loads_request` for CDS Hooks calls (prefetch resources stay
    JSON text until they are read)."""
    try:
        body.decode("utf-8")  # checked whole: parsing passes over resources' unread parts
    except UnicodeDecodeError as error:
        raise InvalidBody(f"body is not UTF-8: {error.reason} at byte {error.start}") from None
    try:
        return loads(body)
    except strict_json.JsonRefused as error:
        raise InvalidBody(f"body is not acceptable JSON: {error}") from None
    except json.JSONDecodeError as error:
        raise InvalidBody(
            f"body is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        ) from None
    except ValueError:  # e.g. an integer longer than Python converts
        raise InvalidBody("body is not acceptable JSON: a number cannot be read") from None


@cache
def schema(name: str) -> dict[str, Any]:
    text = resources.files("cds_service.hooks").joinpath(f"schemas/{name}.schema.json").read_text()
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
def _anchored(pattern: str) -> re.Pattern[str]:
    # JSON Schema patterns are ECMA 262: "$" ends the string. In Python "$" also matches
    # before a final newline, so "PID\n" would pass an id pattern: use "\Z" instead.
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Any:
    if validator.is_type(instance, "string") and not _anchored(pattern).search(instance):
        yield ValidationError("does not have the required form")


_Validator = validators.extend(Draft202012Validator, {"pattern": _pattern})


@cache
def _validator(name: str) -> Any:
    document = schema(name)
    return _Validator(_inline_refs(document, document.get("$defs", {})))


@cache
def _compiled(name: str) -> Any:
    # Its patterns are Rust regexes, where "$" ends the text (no final-newline exception).
    return jsonschema_rs.validator_for(schema(name))


_PATH_LIMIT = 120
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_\-]{1,64}")


def _path(error: ValidationError) -> str:
    parts = []
    for part in error.absolute_path:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:  # member names come from the client: only plain names are repeated
            parts.append(f".{part}" if _PLAIN_NAME.fullmatch(str(part)) else ".(member)")
    path = "".join(parts).lstrip(".") or "(root)"
    return path if len(path) <= _PATH_LIMIT else path[: _PATH_LIMIT - 3] + "..."


_TYPE_WORDS = {"object": "an object", "array": "an array", "string": "a string"}


def _rule(error: ValidationError) -> str:
    """The rule broken, in words taken from the schema, never from the value."""
    rule, expected = error.validator, error.validator_value
    if rule == "required":
        instance = error.instance if isinstance(error.instance, dict) else {}
        missing = [name for name in expected if name not in instance]
        return f"'{missing[0] if missing else expected[0]}' is required"
    if rule == "type":
        names = expected if isinstance(expected, list) else [expected]
        return "must be " + " or ".join(_TYPE_WORDS.get(n, f"a {n}") for n in names)
    if rule in ("enum", "const"):
        return "is not one of the allowed values"
    if rule in ("maxLength", "maxItems", "maxProperties"):
        return f"is too long (at most {expected})"
    if rule in ("minLength", "minItems", "minProperties"):
        return f"is too short (at least {expected})"
    if rule == "additionalProperties":
        return "has a member that is not allowed here"
    if rule == "format":
        return f"is not a valid {expected}"
    if rule == "dependentRequired":
        instance = error.instance if isinstance(error.instance, dict) else {}
        for present, needed in expected.items():
            missing = [name for name in needed if present in instance and name not in instance]
            if missing:
                return f"'{missing[0]}' is required with '{present}'"
    if rule in ("anyOf", "oneOf", "not", "if", "then", "else", "dependentRequired"):
        return "does not have an allowed form"
    if rule == "pattern":
        return "does not have the required form"
    return f"breaks the rule '{rule}'"


def _message(error: ValidationError) -> str:
    return _rule(error)


def validate(name: str, document: Any) -> None:
    """Raise `InvalidBody` naming the first (most relevant) schema error."""
    if _compiled(name).is_valid(document):
        return
    errors = sorted(_validator(name).iter_errors(document), key=_error_rank)
    if errors:
        error = errors[0]
        where = _path(error)
        raise InvalidBody(f"{where}: {_message(error)}", location=where)
    # The validators disagree (the property test says they do not): refuse, never weaker.
    raise InvalidBody("(root): does not have an allowed form", location="(root)")


# Members whose JSON `null` means "absent" (CDS Hooks: optional fields are omitted, but some
# clients send null); a null prefetch *value* is different and keeps its meaning, "no data".
_NULL_AS_ABSENT_IN = {
    "request": ("context", "fhirAuthorization"),
    "feedback": (),
}


def without_nulls(name: str, document: Any) -> Any:
    """The document with optional members sent as `null` left out (at the top level and in
    the objects `_NULL_AS_ABSENT_IN` names; for feedback, in each item and its override
    reason). A required member sent as `null` is then reported as missing."""
    if not isinstance(document, dict):
        return document
    cleaned = _no_nulls(document)
    for member in _NULL_AS_ABSENT_IN[name]:
        if isinstance(cleaned.get(member), dict):
            cleaned[member] = _no_nulls(cleaned[member])
    if name == "feedback" and isinstance(cleaned.get("feedback"), list):
        items = []
        for item in cleaned["feedback"]:
            if isinstance(item, dict):  # anything else is left for the schema to refuse
                item = _no_nulls(item)
                if isinstance(item.get("overrideReason"), dict):
                    item["overrideReason"] = _no_nulls(item["overrideReason"])
            items.append(item)
        cleaned["feedback"] = items
    return cleaned


def _no_nulls(members: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in members.items() if value is not None}


def verdicts(name: str, document: Any) -> tuple[bool, bool]:
    """(compiled, reference) verdicts on a document, for the test that they agree."""
    return _compiled(name).is_valid(document), _validator(name).is_valid(document)


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
    return [f"{_path(e)}: {_rule(e)}" for e in _validator(name).iter_errors(document)]
