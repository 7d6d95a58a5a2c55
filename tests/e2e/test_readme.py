"""Every shell command the README and the docs show runs as shown (the safe ones, here; the
others are named with the reason). Servers a block starts are waited for, then stopped with
the block. The README links every doc, and every local link resolves."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from ..servers import stop, wait_ready

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^( *)```sh\n(.*?)^\1```", re.MULTILINE | re.DOTALL)
TRAILING_COMMENT = re.compile(r"\s+#\s.*$")
# Commands that start a server, and the URL that answers when it is ready.
SERVERS = {
    "make run": "http://127.0.0.1:8080/healthz",
    "cds-fixture-server": "http://127.0.0.1:8081/fhir/metadata",
}
# Commands not run by the tests, and why.
NOT_RUN = {
    "make test": "it is the test suite itself",
    "pip install .": "it would install into the environment running the tests",
    "gunicorn -c": "production: it binds 0.0.0.0 and needs an issuers file "
    "(its settings and refusals are tested in test_security and test_operations)",
}


DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LOCAL_LINK = re.compile(r"\]\(((?!https?:|#)[^)#\s]+)(#[^)\s]*)?\)")


def blocks() -> list[list[str]]:
    return [block for _, block in located_blocks()]


def located_blocks() -> list[tuple[str, list[str]]]:
    found = []
    for document in DOCUMENTS:
        for block in _blocks_of(document.read_text(encoding="utf-8")):
            found.append((str(document.relative_to(ROOT)), block))
    return found


def _blocks_of(text: str) -> list[list[str]]:
    found = []
    for match in FENCE.finditer(text):
        lines = [line.strip() for line in match.group(2).splitlines()]
        commands, pending = [], ""
        for line in lines:
            line = TRAILING_COMMENT.sub("", line)
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            if pending + line:
                commands.append(pending + line)
            pending = ""
        found.append(commands)
    return found


def _kind(command: str) -> str:
    if any(command.startswith(prefix) for prefix in NOT_RUN):
        return "not run"
    if any(keyword in command for keyword in SERVERS):
        return "server"
    return "run"


def _environment() -> dict[str, str]:
    # As a newcomer's shell: none of the test run's own CDS_ settings.
    return {k: v for k, v in os.environ.items() if not k.startswith("CDS_")}


def test_the_readme_shows_commands():
    readme = _blocks_of((ROOT / "README.md").read_text(encoding="utf-8"))
    assert sum(len(b) for b in readme) >= 8


def test_the_readme_links_every_doc_and_every_local_link_resolves():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = {m.group(1) for m in LOCAL_LINK.finditer(readme)}
    for document in DOCUMENTS[1:]:
        assert f"docs/{document.name}" in linked, document.name
    for document in DOCUMENTS:
        for match in LOCAL_LINK.finditer(document.read_text(encoding="utf-8")):
            target = (document.parent / match.group(1)).resolve()
            assert target.exists(), f"{document.name}: {match.group(1)}"
    assert len(readme.splitlines()) <= 250


@pytest.mark.parametrize(
    "index",
    range(len(blocks())),
    ids=[f"{name}-{i}" for i, (name, _) in enumerate(located_blocks())],
)
def test_readme_block_runs_as_shown(index, tmp_path):
    started: list[subprocess.Popen] = []
    try:
        for command in blocks()[index]:
            kind = _kind(command)
            if kind == "not run":
                continue
            if kind == "server":
                log = (tmp_path / f"server-{len(started)}.log").open("wb")
                started.append(
                    subprocess.Popen(
                        command.removesuffix("&").strip(),
                        shell=True,
                        cwd=ROOT,
                        env=_environment(),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
                url = next(url for keyword, url in SERVERS.items() if keyword in command)
                wait_ready(url, started[-1])
                continue
            result = subprocess.run(
                command,
                shell=True,
                cwd=ROOT,
                env=_environment(),
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}{result.stderr}"
    finally:
        for process in started:
            stop(process)  # the whole process group: make, cds-service, gunicorn, workers
