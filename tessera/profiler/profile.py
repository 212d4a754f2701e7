"""`profile()` and `Recorder`: turn the event stream into a `Timeline`.

Host timing: `perf_counter_ns` at each begin mark (`op_start`, `fused_start`,
`backward_start`, `copy_start`) and at the matching end event, so an op's span
covers its compute and nothing else. Ops deferred into the fusion buffer appear
as short "lazy" spans (graph building); their compute is the "fused" span of the
group that ran them, named after its kernel. Compiles and cache hits come from
the kernel/fusion compile listeners, placed so that they end when reported.

Device timing (CUDA, when CuPy sees a GPU): a CUDA event is recorded on the
current stream at each begin and end mark -- no host synchronization per launch --
and all are resolved against one base event when the recording stops (one sync).
Device spans go on their own lane; `Timeline.summary()` then reports them.

    >>> import tessera as ts
    >>> from tessera.profiler import profile
    >>> with profile() as tl:
    ...     y = ts.exp(ts.ones((8, 8))) + 1
    >>> sorted({s.name for s in tl.filter(cat="op")})
    ['add', 'exp']

Graph replay (and any other runner) can reuse the same machinery:
`rec = Recorder(); rec.start(); ...; timeline = rec.stop()`.
"""
from __future__ import annotations

import contextlib
import threading
import time

from ..tensor import Tensor
from . import events
from .timeline import DEVICE, HOST, Span, Timeline

_BEGIN = {"op": "op_start", "fused": "fused_start", "backward": "backward_start",
          "copy": "copy_start"}
_now = time.perf_counter_ns
_ident = threading.get_ident


class _CudaClock:
    """CUDA events around device work, resolved in one go at the end."""

    def __init__(self):
        from ..backend.cupy_source import cupy  # lazy: only when profiling with a GPU present
        self.cp = cupy()
        self.base = self.mark()
        self.base_host = _now()

    def mark(self):
        ev = self.cp.cuda.Event()
        ev.record()
        return ev

    def resolve(self, pairs):
        """[(start event, end event)] -> [(ts ns from base, dur ns)], one sync."""
        last = self.mark()
        last.synchronize()
        el = self.cp.cuda.get_elapsed_time  # milliseconds between two recorded events
        return [(int(el(self.base, a) * 1e6), int(el(a, b) * 1e6)) for a, b in pairs]


_HAS_GPU = []


def _want_device_timing(flag):
    if flag is not None:
        return bool(flag)
    if not _HAS_GPU:  # probed once: without CuPy each probe searches sys.path again
        try:
            from ..device import cuda_is_available
            _HAS_GPU.append(cuda_is_available())
        except Exception:
            _HAS_GPU.append(False)
    return _HAS_GPU[0]


def _lop_bytes(ev):
    """Bytes a fused group reads and writes: its distinct leaf inputs plus outputs."""
    from ..fusion.lazy import LazyOp
    inside = {id(n) for n in ev["order"]}
    seen, n = set(), 0
    for lop in list(ev["order"]) + list(ev["outputs"]):
        for s in lop.srcs:
            if (type(s) is LazyOp and id(s) in inside) or not hasattr(s, "dtype") \
                    or id(s) in seen:
                continue
            seen.add(id(s))
            n += _size(s.shape) * s.dtype.itemsize
    for o in ev["outputs"]:
        n += _size(o.shape) * o.dtype.itemsize
    return n


def _size(shape):
    n = 1
    for d in shape:
        n *= d
    return n


class Recorder:
    """Collects spans from the event stream between `start()` and `stop()`.
    `record_shapes` adds shapes, dtypes and bytes (for bandwidth) to each span."""

    def __init__(self, device_timing=None, record_shapes=True):
        self.device_timing = device_timing
        self.record_shapes = record_shapes
        self.raw = []          # (name, cat, t0, t1, nbytes, args, (ev0, ev1) | None)
        self._stacks = {}
        self._sub = None
        self._clock = None

    def start(self):
        if self._sub is not None:
            raise RuntimeError("[profiler] this recorder is already recording")
        if _want_device_timing(self.device_timing):
            self._clock = _CudaClock()
        self.origin = _now()
        self._sub = events.subscribe(self._on_event)
        return self

    def stop(self) -> Timeline:
        """Stop listening; CUDA events are resolved now (one sync), Span objects are
        built when the Timeline is first read."""
        if self._sub is not None:
            self._sub.remove()
            self._sub = None
        raw, origin = self.raw, self.origin
        self.raw = []
        device = None
        if self._clock is not None:
            pairs = [r[6] for r in raw if r[6] is not None]
            if pairs:
                device = (self._clock.resolve(pairs), self._clock.base_host - origin)

        def build():
            spans, owners = [], []
            metas = {}  # (shape, dtype) -> its args dict, shared by the spans that have it
            for name, cat, t0, t1, nb, args, evs in raw:
                if type(args) is tuple:  # (shape, dtype), kept raw on the hot path
                    m = metas.get(args)
                    if m is None:
                        m = metas[args] = {"shape": list(args[0]), "dtype": args[1].name}
                    args = m
                spans.append(Span(name, cat, t0 - origin, t1 - t0, HOST, nb, args))
                if evs is not None:
                    owners.append(spans[-1])
            if device is not None:
                times, shift = device
                for (ts, dur), host in zip(times, owners):
                    spans.append(Span(host.name, host.cat, ts + shift, dur, DEVICE,
                                      host.nbytes, host.args))
            return spans
        tl = Timeline((), {"device_timing": self._clock is not None})
        tl._defer(build, len(raw) + (len(device[0]) if device else 0))
        return tl

    # -- the sink: op_start/op come once per op, so they take the short path --------
    def _stack(self):
        st = self._stacks.get(_ident())
        if st is None:
            st = self._stacks[_ident()] = []
        return st

    def _pop(self, begin):
        st = self._stacks.get(_ident())
        while st:
            e = st.pop()
            if e[0] == begin:
                return e
        return None  # the begin mark was lost (an exception in between): no span

    def _on_event(self, kind, p):
        # op_start/op come once per op: they are tested first and kept short (no
        # properties, no list building; bytes from the buffers' own nbytes)
        now = _now()
        if kind == "op_start":
            st = self._stacks.get(_ident())
            if st is None:
                st = self._stack()
            st.append(("op_start", now, self._clock.mark() if self._clock is not None else None))
        elif kind == "op":
            st = self._stacks.get(_ident())
            b = st.pop() if st and st[-1][0] == "op_start" else self._pop("op_start")
            if b is None:
                return
            out = p[2]
            buf = out._buf
            nb = meta = None
            if self.record_shapes:
                meta = (out.shape, out.dtype)
                if buf is not None:
                    nb = buf.nbytes
                    for t in p[1]:
                        if type(t) is Tensor:
                            tb = t._buf
                            nb += tb.nbytes if tb is not None else t.size * t.dtype.itemsize
            evs = None
            if self._clock is not None and buf is not None and out.device.type != "cpu":
                evs = (b[2], self._clock.mark())
                self._mark_gpu()
            self.raw.append((p[0], "op" if buf is not None else "lazy", b[1], now, nb, meta, evs))
        elif kind in ("fused_start", "backward_start", "copy_start"):
            extra = _lop_bytes(p) if kind == "fused_start" and self.record_shapes else None
            # [kind, t0, device mark, bytes, kernel name, ran on a GPU]: a span gets a
            # device-lane twin only for GPU work (a CPU group on a GPU host has none)
            gpu = (p["device"].type != "cpu" if kind == "fused_start" else
                   p.device.type != "cpu" if kind == "copy_start" else False)
            self._stack().append([kind, now, self._clock.mark() if self._clock else None,
                                  extra, None, gpu])
        elif kind == "compile":
            st = self._stack()
            if st and st[-1][0] == "fused_start":
                st[-1][4] = p.get("name")  # name the running fused group after its kernel
            t0 = now - int(float(p.get("seconds") or 0.0) * 1e9)
            args = {k: v for k, v in p.items() if k not in ("kind", "name", "seconds")}
            self.raw.append((p.get("name", "?"), p.get("kind", "compile"), t0, now, None,
                             args, None))
        elif kind == "inplace":
            t = p[1]
            self.raw.append((p[0], "inplace", now, now, None, (t.shape, t.dtype), None))
        elif kind in ("fused", "backward", "copy"):
            self._end(kind, p, now)

    def _mark_gpu(self):
        """GPU work ran: every open span around it (a backward, say) did GPU work."""
        for e in self._stacks.get(_ident(), ()):
            if type(e) is list:
                e[5] = True

    def _end(self, kind, p, now):
        b = self._pop(_BEGIN[kind])
        if b is None:
            return
        gpu = b[5] or (kind == "copy" and p[1].device.type != "cpu")
        evs = (b[2], self._clock.mark()) if self._clock is not None and gpu else None
        if gpu:
            self._mark_gpu()
        nb = args = None
        if kind == "fused":
            cat = "fused"
            name = p.get("kernel") or b[4] or "fused[" + "+".join(p["ops"]) + "]"
            nb = b[3]
            args = {"ops": list(p["ops"]), "shape": list(p["shape"]), "reason": p["reason"]}
        elif kind == "backward":
            name, cat = p[0].name + ".backward", "backward"
        else:  # copy
            src, dst = p
            name, cat = f"copy {src.device}->{dst.device}", "copy"
            nb = src.nbytes  # bytes moved across the link (not read + written)
        self.raw.append((name, cat, b[1], now, nb, args, evs))


@contextlib.contextmanager
def profile(device_timing=None, record_shapes=True):
    """Record every op, fused kernel, adjoint, copy, compile and cache hit run in
    the block; yields a `Timeline` that is filled in when the block exits.

        with tessera.profiler.profile() as tl:
            loss = step(x)
        tl.summary(); tl.save("trace.json"); tl.plot()
    """
    rec = Recorder(device_timing, record_shapes)
    tl = Timeline()
    rec.start()
    try:
        yield tl
    finally:
        done = rec.stop()
        tl.__dict__.update(done.__dict__)  # the deferred spans too: nothing built yet
