"""The cyclic garbage collector is paused while a request is handled.

A request builds one short-lived tree of objects proportional to its prefetch (parsed JSON,
read elements, mapped results), all freed by reference counting when it ends. With the
collector on, each of those objects is traversed by several collections while the request
runs, for nothing: at 5,000 results that was a fifth of the request's time. Paused per
request, the collector still runs between requests (and frees any cycle a request made).

A threaded worker under steady load may never be between requests: then a full collection
is run every `COLLECT_EVERY` requests that ended while others ran, so cycles cannot pile up.
"""

from __future__ import annotations

import gc
import threading

COLLECT_EVERY = 100

_lock = threading.Lock()
_active = 0  # requests being handled in this process (threaded workers run several)
_ended_while_busy = 0


def pause() -> None:
    global _active
    with _lock:
        _active += 1
        gc.disable()


def resume(_error: BaseException | None = None) -> None:
    global _active, _ended_while_busy
    with _lock:
        _active = max(_active - 1, 0)
        if _active == 0:
            _ended_while_busy = 0
            gc.enable()
            return
        _ended_while_busy += 1
        collect = _ended_while_busy >= COLLECT_EVERY
        if collect:
            _ended_while_busy = 0
    if collect:
        gc.collect()
