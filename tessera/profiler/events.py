"""The one subscription point for tessera's event stream.

Every dispatch point calls each function in `STATE.event_sinks` as
`sink(kind, payload)`, and only when that list is non-empty, so nothing is paid
while nobody listens. The profiler, `check_numerics` and graph capture all attach
here, through `subscribe`, never by editing `STATE.event_sinks` themselves: the
list is replaced (copy on write), never mutated, so a sink may unsubscribe while
an event is being delivered.

    >>> import tessera as ts
    >>> from tessera.profiler import events
    >>> seen = []
    >>> with events.subscribe(lambda kind, payload: seen.append(kind), kinds=("op",)):
    ...     _ = ts.asarray([1.0, 2.0]) * 2
    >>> seen
    ['op']

Event kinds and payloads (`KINDS` holds the same table):

=============  =============================================================
op_start       `name` -- an op is about to compute (eager ops only)
op             `(name, inputs, out)` from elementwise ops, `(name, inputs,
               out, fwd)` from `apply_op`; `out` is lazy (`out._buf is None`)
               when the op was deferred into the fusion buffer
fused_start    dict {outputs, order, shape, device, reduce}: a fused group is
               about to run (its `LazyOp`s still hold their sources)
fused          dict {ops, outputs, shape, reason, site, kernel, info}: it ran
tape           `node`: an op was put on the autograd tape
backward_start `node`: its adjoint is about to run
backward       `(node, in_grads)`: its adjoint ran
inplace        `(name, tensor, write, sources)`: a tensor was written in place
               (`write(buf, *source_bufs)` re-applies the write, for capture)
copy_start     `src`: a cross-device copy is about to start
copy           `(src, dst)`: it finished
compile        dict {kind: "compile"|"cache_hit"|"disk_hit", name, seconds,
               ...}: a kernel was compiled or found in a cache (forwarded from
               `tessera.kernels.loader` and `tessera.fusion` compile listeners)
=============  =============================================================

A sink that raises stops the op that emitted the event (that is how
`check_numerics` reports); sinks are called in subscription order.
"""
from __future__ import annotations

from .._config import STATE

KINDS = {
    "op_start": "name", "op": "(name, inputs, out[, fwd])", "fused_start": "dict",
    "fused": "dict", "tape": "node", "backward_start": "node",
    "backward": "(node, in_grads)", "inplace": "(name, tensor, write, sources)",
    "copy_start": "src", "copy": "(src, dst)", "compile": "dict",
}


class Subscription:
    """A handle on one subscribed sink: `remove()` it, or use it as a context
    manager (`with subscribe(fn): ...` removes it at exit). Removing twice is a
    no-op."""
    __slots__ = ("fn", "sink", "active")

    def __init__(self, fn, sink):
        self.fn, self.sink, self.active = fn, sink, True

    def remove(self):
        if not self.active:
            return
        self.active = False
        STATE.event_sinks = [s for s in STATE.event_sinks if s is not self.sink]
        _subs.discard(self)
        if not _subs:
            _bridge_compile(False)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False

    def __repr__(self):
        state = "active" if self.active else "removed"
        return f"<Subscription {getattr(self.fn, '__qualname__', self.fn)!r} {state}>"


_subs: set = set()


def subscribe(fn, kinds=None) -> Subscription:
    """Call `fn(kind, payload)` for every event (or only those whose kind is in
    `kinds`) until the returned handle is removed."""
    if kinds is not None:
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"[profiler.subscribe] unknown event kinds {sorted(unknown)}; "
                             f"known: {sorted(KINDS)}")
        wanted = frozenset(kinds)

        def sink(kind, payload):
            if kind in wanted:
                fn(kind, payload)
    else:
        sink = fn
    sub = Subscription(fn, sink)
    STATE.event_sinks = STATE.event_sinks + [sink]
    if not _subs:
        _bridge_compile(True)
    _subs.add(sub)
    return sub


def subscribers():
    """The active subscriptions (for debugging a leaked listener)."""
    return list(_subs)


def emit(kind, payload):
    """Deliver one event to every sink (for code outside the dispatch points,
    e.g. graph replay reporting its own launches)."""
    for s in STATE.event_sinks:
        s(kind, payload)


# -- compile events: the kernel loader and the fusion compiler keep their own
# listener lists (they must not import the profiler); one bridge forwards both
# into the event stream while anyone is subscribed.
def _on_compile(ev):
    for s in STATE.event_sinks:
        s("compile", ev)


def _compile_sources():
    mods = []
    for name in ("tessera.kernels.loader", "tessera.fusion.compile_c"):
        try:
            mods.append(__import__(name, fromlist=["add_compile_listener"]))
        except Exception:  # a half-written or broken module must not break profiling
            continue
    return mods


def _bridge_compile(on):
    for mod in _compile_sources():
        add = getattr(mod, "add_compile_listener", None)
        rem = getattr(mod, "remove_compile_listener", None)
        if on and add is not None:
            add(_on_compile)
        elif not on and rem is not None:
            rem(_on_compile)
