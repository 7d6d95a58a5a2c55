"""The collector is paused during requests, and cycles never pile up under overlap."""

from __future__ import annotations

import gc
import weakref

from cds_service.web import gc_pause


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def test_paused_during_a_request_and_back_after():
    assert gc.isenabled()
    gc_pause.pause()
    assert not gc.isenabled()
    gc_pause.resume()
    assert gc.isenabled()


def test_overlapping_requests_still_have_their_cycles_collected():
    gc_pause.pause()  # a long request that stays open throughout
    try:
        refs = []
        for _ in range(gc_pause.COLLECT_EVERY):
            gc_pause.pause()
            refs.append(weakref.ref(Node()))
            gc_pause.resume()
        assert not gc.isenabled()  # the long request is still running
        assert all(ref() is None for ref in refs)  # yet the cycles are gone
    finally:
        gc_pause.resume()
    assert gc.isenabled()


def test_a_resume_without_a_pause_leaves_the_collector_on():
    gc_pause.resume()
    assert gc.isenabled()
