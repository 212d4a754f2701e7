"""A list of callbacks for compile events (kernel compiles, cache and disk hits).

The kernel loader and the fusion compiler each keep one; the profiler subscribes
to both through `tessera.profiler.events`. Notifying an empty list costs one
truth test, so the compile paths call it unconditionally."""


class Listeners:
    __slots__ = ("_fns",)

    def __init__(self):
        self._fns = []

    def add(self, fn):
        """Call `fn(event_dict)` on every event; returns fn (usable as a decorator)."""
        self._fns.append(fn)
        return fn

    def remove(self, fn):
        if fn in self._fns:
            self._fns.remove(fn)

    def notify(self, event):
        for fn in list(self._fns):  # a listener may remove itself while notified
            fn(event)

    def __bool__(self):
        return bool(self._fns)

    def __contains__(self, fn):
        return fn in self._fns
