"""Caveat texts: one markdown file per caveat code in `cards/caveats/`.

The first paragraph of each file is the sentence a card shows; the whole file is the
page served at `/caveats/<code>`, rendered to self-contained HTML (EHR workstations are
often offline: no external scripts, fonts or stylesheets).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

from markdown_it import MarkdownIt

from cds_service.clinical.models import Caveat

_PAGE_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;max-width:46rem;
margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1b1b1b;background:#fff}
h1{font-size:1.5rem;line-height:1.25}h2{font-size:1.15rem;margin-top:1.6rem}
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #bbb;padding:.3rem .6rem;
text-align:left}th{background:#f0f0f0}a{color:#0645ad}.lead{font-size:1.05rem;
border-left:4px solid #3a6ea5;padding-left:.8rem}footer{margin-top:2rem;font-size:.85rem;color:#555}
"""


@dataclass(frozen=True)
class CaveatText:
    code: str
    title: str
    sentence: str
    markdown: str


@cache
def caveat_text(code: str) -> CaveatText:
    """KeyError for a code that is not a caveat."""
    if code not in {caveat.value for caveat in Caveat}:
        raise KeyError(code)
    markdown = resources.files("cards").joinpath(f"caveats/{code}.md").read_text(encoding="utf-8")
    lines = markdown.strip().splitlines()
    title = lines[0].lstrip("# ").strip()
    paragraph: list[str] = []
    for line in lines[1:]:
        if line.strip():
            paragraph.append(line.strip())
        elif paragraph:
            break
    return CaveatText(code=code, title=title, sentence=" ".join(paragraph), markdown=markdown)


@cache
def _renderer() -> MarkdownIt:
    # Only our own files are rendered here, but raw HTML stays off all the same.
    return MarkdownIt("commonmark", {"html": False}).enable("table")


def render_caveat_page(code: str) -> str:
    text = caveat_text(code)
    body = _renderer().render(text.markdown)
    # The first paragraph is the card's sentence: give it the lead style.
    body = body.replace("<p>", '<p class="lead">', 1)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{_escape(text.title)}</title><style>{_PAGE_STYLE}</style></head>"
        f"<body><main>{body}</main><footer>Caveat code <code>{code}</code> of the "
        "Waldenström macroglobulinemia IgM response service (IWWM-6).</footer></body></html>\n"
    )


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
