"""The clinical core stays pure: no web, HTTP or FHIR-library imports, no clock reads."""

from __future__ import annotations

import ast
from pathlib import Path

import cds_service.clinical

CORE = Path(cds_service.clinical.__file__).parent
FORBIDDEN = ("flask", "werkzeug", "requests", "fhir", "cds_service.web.routes", "cds_service.app")


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_core_imports_nothing_from_the_web_or_fhir_layers():
    files = sorted(CORE.rglob("*.py"))
    assert len(files) >= 7
    for path in files:
        for name in imported_modules(path):
            assert not name.startswith(FORBIDDEN), f"{path.name} imports {name}"


def test_core_never_reads_the_clock():
    for path in CORE.rglob("*.py"):
        text = path.read_text()
        for call in ("date.today(", "datetime.now(", "datetime.utcnow(", "time.time("):
            assert call not in text, f"{path.name} calls {call}"
