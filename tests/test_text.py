"""cards/text.py: EHR text made inert in markdown and HTML, without losing any of it."""

from __future__ import annotations

import html
import re

from hypothesis import given
from hypothesis import strategies as st

from cards.text import escape_markdown

MARKDOWN_SPECIAL = "\\`*_{}[]()#+!|~>-"


@given(st.text())
def test_escaped_text_is_inert_and_loses_nothing(text):
    escaped = escape_markdown(text)
    # Inert in HTML: no tag or attribute can open.
    assert "<" not in escaped and '"' not in escaped and "'" not in escaped
    # Every markdown special character stands behind a backslash.
    unentity = html.unescape(escaped)
    assert not re.search(r"(?<!\\)(\\\\)*[`*_{}\[\]()#+!|~>-]", unentity)
    # Lossless: undoing both escapes gives the text, control characters as one space.
    restored = re.sub(r"\\(.)", r"\1", unentity, flags=re.S)
    assert restored == re.sub(r"[\x00-\x1f\x7f]+", " ", text)
    assert "\n" not in escaped  # one line


def test_examples():
    assert escape_markdown("IgM <25 mg/dL") == "IgM &lt;25 mg/dL"
    assert escape_markdown("a > b") == "a \\&gt; b"
    assert escape_markdown("**bold** [x](y)") == "\\*\\*bold\\*\\* \\[x\\]\\(y\\)"
    assert escape_markdown("line\r\nbreak") == "line break"
