"""Card ids: time-ordered UUIDs (RFC 9562 version 7), so that feedback about a card issued a
moment ago by another worker, whose record is not written yet, can be told apart from
feedback about a card this service never issued (the first is retried, the second refused).
The time in the id is only the issue time; the rest is random, as in any UUID.
"""

from __future__ import annotations

import os
import time
import uuid

VERSION_7 = 7


def new_card_uuid(now_ms: int | None = None) -> str:
    """A version 7 UUID: 48 bits of Unix time in milliseconds, then 74 random bits."""
    millis = int(time.time() * 1000) if now_ms is None else now_ms
    value = (millis & ((1 << 48) - 1)) << 80 | int.from_bytes(os.urandom(10), "big")
    value &= ~(0xF << 76)
    value |= VERSION_7 << 76  # version
    value &= ~(0b11 << 62)
    value |= 0b10 << 62  # the RFC variant
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def issued_ms(card: str) -> int | None:
    """The issue time (Unix milliseconds) of a version 7 card id; None for any other id."""
    try:
        parsed = uuid.UUID(card.lower().removeprefix("urn:uuid:"))
    except ValueError:
        return None
    if parsed.version != VERSION_7 or parsed.variant != uuid.RFC_4122:
        return None
    return parsed.int >> 80
