"""Card ids (`cards/card_ids.py`): RFC 9562 version 7 UUIDs whose first 48 bits are the
issue time in Unix milliseconds."""

from __future__ import annotations

import time
import uuid

from cards.card_ids import issued_ms, new_card_uuid


def test_a_card_id_is_a_version_7_rfc_uuid_carrying_its_issue_time():
    before = int(time.time() * 1000)
    card = new_card_uuid()
    after = int(time.time() * 1000)
    parsed = uuid.UUID(card)
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert before <= issued_ms(card) <= after
    assert issued_ms(f"urn:uuid:{card.upper()}") == issued_ms(card)


def test_ids_are_unique_and_ordered_by_issue_time():
    ids = [new_card_uuid(now_ms=1_700_000_000_000 + step) for step in range(0, 5000, 7)]
    assert sorted(ids) == ids
    assert len({new_card_uuid(now_ms=1_700_000_000_000) for _ in range(1000)}) == 1000


def test_other_ids_carry_no_time():
    assert issued_ms(str(uuid.uuid4())) is None
    assert issued_ms("not-a-uuid") is None
    assert issued_ms("") is None
