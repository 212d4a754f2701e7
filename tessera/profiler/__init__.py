"""Observing tessera: the event stream (`events.subscribe`), the profiler
(`profile()`, `Recorder`, `Timeline`).

    >>> import tessera as ts
    >>> with ts.profiler.profile() as tl:
    ...     _ = ts.ones((4, 4)) @ ts.ones((4, 4))
    >>> [s.name for s in tl.filter(cat="op")]
    ['matmul']
"""
from . import events
from .events import KINDS, Subscription, subscribe
from .profile import Recorder, profile
from .timeline import Span, Summary, Timeline

__all__ = ["events", "subscribe", "Subscription", "KINDS", "profile", "Recorder", "Timeline",
           "Span", "Summary"]
