"""cards/text.py: EHR text made inert in markdown and HTML, without losing any of it."""

from __future__ import annotations

import html
import re

from hypothesis import given
from hypothesis import strategies as st

from cards.text import escape_markdown

MARKDOWN_SPECIAL = "\\`*_{}[]()#+!|~>-"
ZWSP = "\u200b"
# What GFM autolinks and linkify start from: a scheme, "www.", an address.
AUTOLINK_TRIGGER = re.compile(r"(?i)[a-z]://|\bwww\.|[\w.+-]@")


@given(
    st.text()
    | st.builds(
        "{}{}{}".format,
        st.text(max_size=5),
        st.sampled_from(["http://", "HTTPS://x", "www.", "WWW.", "a@b.c", "x.y+z@", "ftp://"]),
        st.text(max_size=5),
    )
)
def test_escaped_text_is_inert_and_loses_nothing(text):
    escaped = escape_markdown(text)
    # Inert in HTML: no tag or attribute can open.
    assert "<" not in escaped and '"' not in escaped and "'" not in escaped
    # Every markdown special character stands behind a backslash.
    unentity = html.unescape(escaped)
    assert not re.search(r"(?<!\\)(\\\\)*[`*_{}\[\]()#+!|~>-]", unentity)
    # Lossless: undoing both escapes gives the text, control characters as one space (and
    # zero-width spaces where a link would start).
    restored = re.sub(r"\\(.)", r"\1", unentity, flags=re.S).replace(ZWSP, "")
    assert restored == re.sub(r"[\x00-\x1f\x7f]+", " ", text).replace(ZWSP, "")
    assert not AUTOLINK_TRIGGER.search(unentity)
    assert "\n" not in escaped  # one line


def test_examples():
    assert escape_markdown("IgM <25 mg/dL") == "IgM &lt;25 mg/dL"
    assert escape_markdown("a > b") == "a \\&gt; b"
    assert escape_markdown("**bold** [x](y)") == "\\*\\*bold\\*\\* \\[x\\]\\(y\\)"
    assert escape_markdown("line\r\nbreak") == "line break"
    # contract v3: EHR text never becomes a link in `detail`
    assert escape_markdown("see https://evil.example") == f"see https{ZWSP}://evil.example"
    assert escape_markdown("www.evil.example") == f"www{ZWSP}.evil.example"
    assert escape_markdown("ratio 1:2, a @ b") == "ratio 1:2, a @ b"
