"""Quantization-aware training: `fake_quantize(x, scheme=...)` returns
dequantize(quantize(x)) in x's dtype, with the straight-through estimator as its
gradient (the gradient passes where x lies inside the representable range and is
zero where the code saturated, as `torch.fake_quantize_per_channel_affine`).

With `scale=` a tensor that requires grad, the scale is learned (LSQ, Esser et al.
2020): d out / d scale = round(x/s) - x/s inside the range and qmin/qmax where
clipped, summed over the elements that share the scale.

    >>> import tessera as ts
    >>> x = ts.asarray([0.1, 0.49, -2.0], requires_grad=True)
    >>> y = ts.op.fake_quantize(x, scheme="int8_per_tensor")
    >>> ts.sum(y).backward(); x.grad.tolist()
    [1.0, 1.0, 1.0]
"""
from __future__ import annotations

from ..autograd.engine import needs_grad, record
from ..autograd.grad_mode import no_grad
from ..errors import ShapeError
from ..ops import elementwise as ew
from ..ops._dispatch import to_tensor
from .quant import _grouped, quantize, resolve

__all__ = ["fake_quantize"]


def fake_quantize(x, scheme="int8_per_channel", axis=None, group_size=None, symmetric=True,
                  scale=None, observer=None):
    """x rounded through `scheme` and back (same shape and dtype as x); gradient by
    the straight-through estimator. `scale`: a fixed or learnable (requires_grad)
    scale broadcastable to x (per-group: to the (..., n/g, g) view), int schemes only."""
    x = to_tensor("fake_quantize", x)
    s, ax, gs = resolve("fake_quantize", x, scheme, axis, group_size, symmetric)
    if scale is None:
        q = quantize(x.detach(), scheme, axis, group_size, symmetric, observer=observer)
        with no_grad():
            out = q.dequantize(x.dtype)
            xg = _grouped(x.detach(), gs) if gs else x.detach()
            sc = q.scale.reshape(q.scale.shape + (1,)) if gs else q.scale
            if s.kind == "fp8":  # saturates only beyond +-max * scale
                mask = xg.abs() <= sc * s.fmax
            else:  # inside the code range, with the half step that rounds onto its ends
                lo, hi = s.qrange(symmetric)
                zp = q.zero_point
                if zp is not None and gs:
                    zp = zp.reshape(zp.shape + (1,))
                v = xg / sc + (0 if zp is None else zp)
                mask = (v >= lo - 0.5) & (v <= hi + 0.5)
            if gs:
                mask = mask.reshape(x.shape)
        if needs_grad(x):
            md = mask.detach()
            record("fake_quantize", (x,), out, lambda g: (ew.where(md, g, 0.0),), saved=(md,))
        return out
    # learned scale: written in tessera ops, the rounding made transparent with
    # a detached residual so that autodiff gives the STE and LSQ gradients
    if s.kind != "int":
        raise ShapeError(f"[fake_quantize] a given scale is supported for int schemes, not {scheme}")
    sc = to_tensor("fake_quantize", scale, device=x.device)
    lo, hi = s.qrange(symmetric)
    xg = _grouped(x, gs) if gs else x
    v = xg / sc
    r = v + (ew.round(v) - v).detach()       # forward: round(v); backward: identity
    c = ew.clip(r, lo, hi)                   # clip's gradient is 0 outside [lo, hi]
    out = c * sc
    if gs:
        out = out.reshape(x.shape)
    return out if out.dtype is x.dtype else out.astype(x.dtype)
