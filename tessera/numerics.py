"""`check_numerics`: find the op that first made a NaN or an Inf.

One name, two uses:

- `check_numerics(t, message="")` checks one tensor: returns `t` when every
  element is finite, else raises `NumericsError` with the counts of NaN, +Inf
  and -Inf, the index of the first bad element, the op that produced `t` and the
  user's source line.
- `check_numerics()` (no tensor) is the global mode, as a context manager or a
  decorator (`with check_numerics():`, `@check_numerics()`), or switched with
  `check_numerics.enable()` / `.disable()` / `set_check_numerics(True)`. It checks
  the output of every op, every adjoint in backward (naming the forward op), every
  in-place write (optimizer updates included) and every fused group. When a fused
  group's output is bad, the group is re-run op by op from its inputs to find the
  FIRST op that made the bad value (all inputs finite, output not), reported with
  its source line, fused kernel, dtype, shape and its inputs' ranges.
  `check_numerics(overflow=("fp16", "bf16"))` also reports fp32/fp64 values that
  would overflow those dtypes if cast to them (mixed-precision debugging).

    >>> import tessera as ts
    >>> from tessera.numerics import check_numerics
    >>> x = ts.asarray([1.0, 2.0])
    >>> check_numerics(x) is x
    True
    >>> with check_numerics():
    ...     ts.log(ts.asarray([1.0, -1.0]))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tessera.errors.NumericsError: [check_numerics] log produced 1 NaN, 0 +Inf, 0 -Inf ...

Off, it costs nothing: no sink is attached, and `STATE.check_numerics` is False.

GPU design (the `_DeviceFlags` path, CUDA tensors only): a host check per op
would synchronize after every launch. Instead each checked output adds one tiny
`isfinite(...).all()` reduction on the stream, which writes the sequence number
of the first bad output into a device word; the outputs stay referenced in a
bounded ring. The word is read at the next natural sync -- a host read of a GPU
tensor (`.numpy()`, and so `.item()`, `float(t)`, `.tolist()`: `sync_point()`),
a device->host copy, leaving the mode -- or every `SYNC_EVERY` checks; a
non-zero value names the ring entry, whose full report (counts, index, the
unfused re-run) is then computed on the host. A later step may write generated
kernels that set the flag themselves.

This module owns the mode and its event sink; what is scanned and how the error
reads is in `tessera._numerics_report`.
"""
from __future__ import annotations

import contextlib
import functools
import weakref
from math import isfinite as _isfinite

from ._config import STATE
from ._numerics_report import (LAZY_NAMES, LIMITS, finite_fast, host_view, is_bad,  # noqa: F401
                               limit_for, make_error, report, rerun_unfused, value_range)
from ._srcloc import fmt_site, user_site
from .tensor import Tensor

__all__ = ["check_numerics", "set_check_numerics", "is_check_numerics_enabled"]

SYNC_EVERY = 64


def _fail(*args, **kw):
    _reset()  # a raise leaves no half-open fused/backward marks behind
    raise make_error(*args, **kw)


# -- the op-level check ----------------------------------------------------------------
def _check_tensor(t, message, overflow):
    lop = t._lazy if t._buf is None else None
    producer = (LAZY_NAMES.get(lop.op, lop.op) if lop is not None else None) or t._name or \
        (t.grad_fn.name if t.grad_fn is not None else "<input>")
    site = (lop.site if lop is not None else None) or user_site()
    if t.dtype.kind not in "fc":
        return t
    x = host_view(t.data, t.dtype, t.device)
    limit = limit_for(t.dtype, overflow)
    if is_bad(x, limit):
        rep = report(x, limit)
        if rep is not None:
            _fail(producer, t.dtype, t.shape, rep, limit, site, message=message,
                  forward_op=None, kernel=None)
    return t


# -- the global mode: an event sink --------------------------------------------------------
class _Checker:
    """The sink. Stacks pair begin/end events: fused groups (with the group's
    structure, kept for the unfused re-run) and adjoints (to name the forward op)."""

    def __init__(self):
        self.fused, self.bwd, self.kernel = [], [], None
        self.node_site = weakref.WeakKeyDictionary()   # tape node -> forward site
        self.lazy_bwd = weakref.WeakKeyDictionary()    # LazyOp made in an adjoint -> node

    def __call__(self, kind, p):
        if kind == "op":
            out = p[2]
            buf = out._buf
            if buf is None:
                if self.bwd:
                    self.lazy_bwd[out._lazy] = self.bwd[-1]
                return  # checked when its group runs
            dt = out.dtype
            if dt.kind not in "fc":  # ints and bools cannot hold NaN/Inf: nothing to scan
                return
            # the common case, inline: a CPU fp32/fp64 output (one BLAS pass)
            if (dt.itemsize >= 4 and dt.kind == "f" and out.device.type == "cpu"
                    and STATE.check_numerics_opts is None and finite_fast(buf)):
                return
            self.check_eager(p[0], p[1], out)
        elif kind == "op_start":
            return
        elif kind == "fused_start":
            self.kernel = None
            self.fused.append((p, [(n, n.srcs) for n in p["order"]],
                               [(o, o.srcs) for o in p["outputs"] if o.axes is not None]))
        elif kind == "fused":
            if self.fused:
                self.check_fused(self.fused.pop(), p.get("kernel") or self.kernel)
        elif kind == "compile":
            self.kernel = p.get("name")
        elif kind == "tape":
            self.node_site[p] = user_site()
        elif kind == "backward_start":
            self.bwd.append(p)
        elif kind == "backward":
            while self.bwd and self.bwd.pop() is not p[0]:
                pass
        elif kind == "inplace":
            t = p[1]
            self.check_eager(p[0] + " (in place)", (), t)
        elif kind == "copy":
            sync_point()

    def context(self, node):
        if node is None:
            return None
        return (f"in backward: the adjoint of '{node.name}' (forward op at "
                f"{fmt_site(self.node_site.get(node))})")

    def check_eager(self, name, inputs, out):
        dt = out.dtype
        if dt.kind not in "fc":
            return
        limit = limit_for(dt, STATE.check_numerics_opts)
        x = host_view(out._buf, dt, out.device)
        node = self.bwd[-1] if self.bwd else None
        if out.device.type != "cpu":
            site = user_site()
            _device_flags(out.device).add(
                x, limit, lambda: self.report_eager(name, inputs, out, x, limit, node, site))
        elif is_bad(x, limit):
            self.report_eager(name, inputs, out, x, limit, node)

    def report_eager(self, name, inputs, out, x, limit, node, site=None):
        rep = report(x, limit)
        if rep is None:
            return
        ins = [a if type(a) is not Tensor else host_view(a.data, a.dtype, a.device)
               for a in inputs]
        pre = [i for i, v in enumerate(ins) if not isinstance(v, (bool, int, float, complex))
               and is_bad(v, None)]
        extra = ["input ranges: " + ", ".join(f"#{i} {value_range(v)}" for i, v in enumerate(ins))
                 if ins else "", self.context(node),
                 f"note: input(s) {pre} already held NaN/Inf: the bad value came from "
                 "outside the checked ops (data, or made while the mode was off)" if pre else ""]
        _fail(name, out.dtype, out.shape, rep, limit, site or user_site(), extra,
              forward_op=node.name if node is not None else None, kernel=None)

    def check_fused(self, snap, kernel):
        ev, order, reduces = snap
        for o in ev["outputs"]:
            if o.dtype.kind not in "fc" or o.buf is None:
                continue
            limit = limit_for(o.dtype, STATE.check_numerics_opts)
            x = host_view(o.buf, o.dtype, o.device)
            if o.device.type != "cpu":  # the group stays referenced until the flag is read
                _device_flags(o.device).add(
                    x, limit, lambda: self.locate(ev, order, reduces, kernel))
            elif is_bad(x, limit):
                self.locate(ev, order, reduces, kernel)

    def locate(self, ev, order, reduces, kernel):
        """Re-run the group op by op; report the first op with finite inputs and a bad output."""
        first_bad = rerun_unfused(ev, order, reduces, STATE.check_numerics_opts)
        if first_bad is None:
            return
        lop, name, args, x, limit, clean = first_bad
        node = self.lazy_bwd.get(lop)
        ops = [n.op for n, _ in order] + [LAZY_NAMES.get(o.op, o.op) for o, _ in reduces]
        extra = ["input ranges: " + ", ".join(f"#{i} {value_range(a)}"
                                              for i, a in enumerate(args)),
                 f"ran in fused kernel {kernel or '(unnamed)'} with ops [{', '.join(ops)}] over "
                 f"shape {tuple(ev['shape'])}; found by re-running the group op by op",
                 self.context(node),
                 "" if clean else "note: an input of the group already held NaN/Inf"]
        _fail(name, lop.dtype, lop.shape, report(x, limit), limit, lop.site, extra,
              forward_op=node.name if node is not None else None, kernel=kernel)


class _DeviceFlags:
    """CUDA: accumulate 'first bad output' on the device; read it at a sync (see the
    module docstring). Only built for CUDA tensors; not reachable on the CPU."""

    def __init__(self, xp):
        self.xp = xp
        self.word = xp.zeros((), xp.int64)
        self.ring = []

    def add(self, x, limit, report):
        """Queue the check of `x`; `report()` raises the full error if it is the first bad."""
        xp = self.xp
        bad = ~xp.isfinite(x).all()
        if limit is not None:
            bad |= (xp.abs(x) > limit).any()
        self.ring.append(report)
        # write our sequence number unless an earlier entry already did (no sync)
        self.word = xp.where((self.word == 0) & bad, len(self.ring), self.word)
        if len(self.ring) >= SYNC_EVERY:
            self.poll()

    def poll(self):
        k = int(self.word)  # the one device->host read
        ring, self.ring = self.ring, []
        self.word = self.xp.zeros((), self.xp.int64)
        if k:
            ring[k - 1]()


_flags = None


def _device_flags(device):
    global _flags
    if _flags is None:
        _flags = _DeviceFlags(device.backend.xp)
    return _flags


def sync_point():
    """A natural synchronization (a host read of a GPU tensor, a device->host copy):
    read the device flag of the checks queued since the last one, and raise the
    first bad op's report. Free when nothing is queued (always, on the CPU)."""
    if _flags is not None and _flags.ring:
        _flags.poll()


# -- switching the mode -----------------------------------------------------------------
_checker = _Checker()
_sub = None


def _reset():
    _checker.fused.clear()
    _checker.bwd.clear()


def set_check_numerics(enabled=True, overflow=None):
    """Turn the global mode on or off (`overflow`: dtype names, see the module doc)."""
    global _sub
    if enabled:
        STATE.check_numerics_opts = tuple(overflow) if overflow else None
        STATE.check_numerics = True
        if _sub is None:
            from .profiler.events import subscribe
            _reset()
            _sub = subscribe(_checker)
    else:
        try:
            # What was computed inside the checked scope is checked: lazy groups
            # still pending (every elementwise result on a GPU) run now, while
            # the checker listens, instead of unchecked at a later read.
            from .fusion.lazy import flush_pending
            flush_pending("check_numerics scope exit")
            sync_point()  # a pending device-side finding is reported now
        finally:
            if _sub is not None:
                _sub.remove()
                _sub = None
            STATE.check_numerics = False
            STATE.check_numerics_opts = None


def is_check_numerics_enabled():
    return STATE.check_numerics


class _Mode(contextlib.ContextDecorator):
    """`with check_numerics():` / `@check_numerics()`: the mode inside, the previous
    setting restored at exit (nests; re-entrant)."""

    def __init__(self, overflow=None):
        self.overflow = overflow
        self.saved = []

    def __enter__(self):
        self.saved.append((STATE.check_numerics, STATE.check_numerics_opts))
        set_check_numerics(True, self.overflow)
        return self

    def __exit__(self, *exc):
        on, opts = self.saved.pop()
        set_check_numerics(on, opts)
        return False


def check_numerics(t=None, message="", *, overflow=None):
    """Check tensor `t` (returns it when finite), or with no tensor return the
    global mode as a context manager / decorator. See the module docstring."""
    if t is None:
        return _Mode(overflow)
    if type(t) is not Tensor:
        raise TypeError(f"[check_numerics] expects a tessera Tensor, got {type(t).__name__}")
    return _check_tensor(t, message, overflow)


check_numerics.enable = functools.partial(set_check_numerics, True)
check_numerics.disable = functools.partial(set_check_numerics, False)
