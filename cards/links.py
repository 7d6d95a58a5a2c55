"""Every URL a card can carry, for EHR link allowlists (contract v3, "Link manifest").

Some EHRs (Oracle Health among them) show only the card links they have registered and drop
the others. A card can carry: the caveat pages this service serves (`links`), the SMART
launch URL of the trend app (a `smart` link, when the app is configured), its `source` URL,
and the literature its `detail` cites. The first two depend on the public base URL; the
literature is every https URL written in the card builders and their templates (the caveat
pages' own sources are on the pages, not on cards). A test holds this list to every link on
every fixture's cards.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from cds_service.clinical.models import Caveat

from .build import caveat_url

# Literature links are https; code systems (http://loinc.org, http://snomed.info/sct) are not
# links. A markdown link ends at its closing parenthesis, a string at its quote.
_LITERATURE = re.compile(r"https://[a-z0-9.-]+\.[a-z]{2,}(?:/[^\s\"'<>()]*)?")
_SCANNED = (".py", ".j2")


@dataclass(frozen=True)
class CardLink:
    url: str
    kind: str  # "caveat page", "app", "source"
    note: str = ""


def _literature() -> list[str]:
    found: dict[str, None] = {}
    package = resources.files("cards")
    for folder in (package, package / "templates"):
        for item in sorted(folder.iterdir(), key=lambda entry: entry.name):
            if item.is_file() and item.name.endswith(_SCANNED):
                for url in _LITERATURE.findall(item.read_text(encoding="utf-8")):
                    found[url] = None
    return sorted(found)


def card_links(base_url: str) -> list[CardLink]:
    """`base_url`: the service's public base URL (absolute, no trailing slash)."""
    links = [CardLink(caveat_url(base_url, caveat), "caveat page") for caveat in Caveat]
    links.append(
        CardLink(
            f"{base_url}/smart/launch",
            "app",
            "the trend app's launch URL (a smart link), on cards when CDS_SMART_CLIENT_ID is set",
        )
    )
    links.extend(CardLink(url, "source") for url in _literature())
    return links
