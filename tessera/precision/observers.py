"""Calibration observers: they watch sample activations and choose the range that
`quantize(x, observer=obs)` turns into scales (per tensor, channel or group as the
observer's scheme says).

  MinMaxObserver          running min / max (PyTorch's MinMaxObserver)
  MovingAverageObserver   exponential moving average of each batch's min / max
  PercentileObserver      the `percentile` of |x| (clips rare outliers), averaged
                          over batches

`observer("minmax" | "moving_average" | "percentile", scheme=..., ...)` builds one.

    >>> import tessera as ts
    >>> obs = observer("minmax", scheme="int8_per_tensor")
    >>> _ = obs.observe(ts.asarray([-1.0, 2.0])); _ = obs.observe(ts.asarray([4.0]))
    >>> round(float(ts.op.quantize(ts.asarray([4.0]), observer=obs).scale) * 127, 4)
    4.0
"""
from __future__ import annotations

import numpy as np

from ..autograd.grad_mode import no_grad
from ..errors import NumericsError
from ..ops import reduce as rd
from ..ops._dispatch import to_tensor
from .quant import _grouped, _reduce_axes, resolve

__all__ = ["Observer", "MinMaxObserver", "MovingAverageObserver", "PercentileObserver", "observer"]


class Observer:
    """Base: keeps `lo`/`hi` tensors of the reduced (keepdims) shape."""

    def __init__(self, scheme="int8_per_tensor", axis=None, group_size=None, symmetric=True):
        self.scheme, self.axis, self.group_size, self.symmetric = scheme, axis, group_size, symmetric
        self.lo = self.hi = None
        self.count = 0

    def _prep(self, x):
        x = to_tensor("observer", x)
        s, ax, gs = resolve("observer", x, self.scheme, self.axis, self.group_size, self.symmetric)
        xf = x.astype("fp32") if x.dtype.name in ("bf16", "fp16") else x
        xg = _grouped(xf, gs) if gs else xf
        return xg, _reduce_axes(s, xf.ndim, ax)

    def _batch_range(self, xg, axes):
        return rd.min(xg, axis=axes, keepdims=True), rd.max(xg, axis=axes, keepdims=True)

    def _merge(self, lo, hi):
        from ..ops.elementwise import maximum, minimum
        self.lo = lo if self.lo is None else minimum(self.lo, lo)
        self.hi = hi if self.hi is None else maximum(self.hi, hi)

    def observe(self, x):
        """Take one batch of sample data into account."""
        with no_grad():
            xg, axes = self._prep(x)
            lo, hi = self._batch_range(xg, axes)
            if not (np.isfinite(lo.numpy().astype(np.float64)).all()
                    and np.isfinite(hi.numpy().astype(np.float64)).all()):
                raise NumericsError(f"[observer] {type(self).__name__} saw NaN/Inf in a calibration "
                                    f"batch of shape {tuple(x.shape)}")
            self._merge(lo.realize(), hi.realize())
            self.count += 1
        return x

    __call__ = observe

    def range(self, shape, axes, device):
        """(lo, hi) for quantize; raises if nothing was observed or shapes disagree."""
        if self.lo is None:
            raise ValueError(f"[quantize] observer {type(self).__name__} has not observed any data")
        want = tuple(1 if i in axes else d for i, d in enumerate(shape))
        if tuple(self.hi.shape) != want:
            raise ValueError(f"[quantize] observer range has shape {tuple(self.hi.shape)}, the "
                             f"tensor needs {want} (data shape {tuple(shape)})")
        return self.lo, self.hi

    def __repr__(self):
        return f"{type(self).__name__}(scheme={self.scheme}, batches={self.count})"


class MinMaxObserver(Observer):
    pass


class MovingAverageObserver(Observer):
    def __init__(self, scheme="int8_per_tensor", axis=None, group_size=None, symmetric=True,
                 momentum=0.1):
        super().__init__(scheme, axis, group_size, symmetric)
        self.momentum = float(momentum)

    def _merge(self, lo, hi):
        if self.lo is None:
            self.lo, self.hi = lo, hi
        else:
            m = self.momentum
            self.lo = (self.lo * (1 - m) + lo * m).realize()
            self.hi = (self.hi * (1 - m) + hi * m).realize()


class PercentileObserver(Observer):
    """Range +-percentile(|x|) per batch, averaged over batches (symmetric schemes)."""

    def __init__(self, scheme="int8_per_tensor", axis=None, group_size=None, symmetric=True,
                 percentile=99.99):
        super().__init__(scheme, axis, group_size, symmetric)
        if not 0 < percentile <= 100:
            raise ValueError(f"[observer] percentile must be in (0, 100], got {percentile}")
        self.percentile = float(percentile)

    def _batch_range(self, xg, axes):
        from ..ops.creation import asarray
        a = np.abs(xg.numpy().astype(np.float64))
        p = np.percentile(a, self.percentile, axis=axes, keepdims=True).astype(np.float32)
        hi = asarray(p, device=xg.device)
        return -hi, hi

    def _merge(self, lo, hi):
        if self.lo is None:
            self.lo, self.hi = lo, hi
        else:
            n = self.count
            self.hi = ((self.hi * n + hi) / (n + 1)).realize()
            self.lo = -self.hi


_KINDS = {"minmax": MinMaxObserver, "moving_average": MovingAverageObserver,
          "percentile": PercentileObserver}


def observer(kind="minmax", **kw):
    """An observer by name: 'minmax', 'moving_average' or 'percentile'."""
    cls = _KINDS.get(kind)
    if cls is None:
        raise ValueError(f"[observer] unknown kind {kind!r}; accepted: {', '.join(_KINDS)}")
    return cls(**kw)
