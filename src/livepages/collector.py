"""The garbage collector, set once per process for a server that holds many streams.

Every open stream keeps about fifty objects that CPython's cyclic collector
tracks, most of them the server's (uvicorn's protocol, parser and transport,
the request's task and its coroutines). With CPython's defaults a young
collection runs every 700 new objects, and a full one, which walks every
tracked object of the process, each time the tracked heap has grown by a
quarter: while 10,000 streams connect that is six full collections, a quarter
of the connect time (benchmarks/fanout/README.md, "Per-stream cost").

:func:`prepare_for_streams`, called when an app has started, does two things:

- once per process, it collects and then freezes (``gc.freeze()``) everything
  alive: modules, classes, templates, the app. It lives as long as the process,
  so later full collections skip it;
- it raises the collector's first threshold to ``Settings.gc_threshold`` (never
  lowering one set higher): a young collection every 10,000 new objects instead
  of 700, so that a burst of connects runs few collections, and few full ones.
  Cyclic garbage waits a little longer to be freed; nothing else changes.

``Settings(gc_threshold=0)`` leaves the collector as the process set it.
"""

from __future__ import annotations

import gc

__all__ = ["prepare_for_streams"]

_frozen = False


def prepare_for_streams(threshold: int) -> None:
    """Freeze start-up's objects (once per process) and raise the first threshold to
    ``threshold``; nothing at all for 0."""
    global _frozen
    if threshold <= 0:
        return
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()
    first, *rest = gc.get_threshold()
    if first < threshold:
        gc.set_threshold(threshold, *rest)
