"""Automatic precision lowering: `tessera.autocast("bf16")` as a context manager or
decorator, and the one policy table it follows.

The protocol: while a policy is active, `STATE.autocast` holds it and each listed
op calls `STATE.autocast.cast_inputs(op_name, inputs)` on its tensor inputs before
computing (one attribute test when autocast is off). The table maps op names to
  "lower"    float inputs go to the autocast dtype (matmul, einsum, linear: the
             backend accumulates bf16/fp16 GEMMs in fp32 and rounds once);
  "fp32"     bf16/fp16 inputs go up to fp32 (reductions, softmax, log_softmax,
             layer_norm, cross_entropy, exp, log: ops whose range or accumulated
             error a 8-bit mantissa cannot carry);
  "promote"  float inputs go to the widest float among them;
  None       left alone.
Casts are ordinary differentiable casts, so parameters stay fp32 and their
gradients arrive in fp32 (the cast's adjoint casts back). This follows PyTorch's
torch.autocast op lists in spirit, readable and overridable per op.

    >>> import tessera as ts
    >>> a, b = ts.ones((4, 8)), ts.ones((8, 2))
    >>> with ts.autocast("bf16"):
    ...     c = a @ b
    ...     s = ts.softmax(c)
    >>> c.dtype.name, s.dtype.name
    ('bf16', 'fp32')
"""
from __future__ import annotations

import contextlib

from .. import dtypes as _dt
from .._config import STATE
from ..errors import DTypeError
from ..tensor import Tensor

__all__ = ["autocast", "AutocastPolicy", "DEFAULT_POLICY", "is_autocast_enabled", "get_autocast_dtype"]

DEFAULT_POLICY = {
    # run in the low-precision dtype, accumulating in fp32 (linear: nn.Linear and
    # ops.linear, whose bias is lowered too)
    "matmul": "lower", "einsum": "lower", "linear": "lower",
    # keep in fp32 (mean/var/std are sums, so they follow "sum")
    "sum": "fp32", "prod": "fp32", "logsumexp": "fp32", "softmax": "fp32",
    "log_softmax": "fp32", "layer_norm": "fp32", "cross_entropy": "fp32",
    "exp": "fp32", "log": "fp32", "pow": "fp32",
    # mixed inputs go to the widest float (what promotion does anyway; listed so
    # that an override can change it)
    "add": "promote", "subtract": "promote", "multiply": "promote", "divide": "promote",
    "where": "promote",
}
KINDS = ("lower", "fp32", "promote", None)
_LOW = (_dt.bf16, _dt.fp16)


class AutocastPolicy:
    """The active autocast state: the low dtype and the op table (DEFAULT_POLICY
    updated with the user's overrides)."""

    __slots__ = ("dtype", "table")

    def __init__(self, dtype="bf16", overrides=None):
        dt = _dt.get_dtype(dtype)
        if dt not in _LOW:
            raise DTypeError(f"[autocast] dtype must be bf16 or fp16, got {dt.name}")
        table = dict(DEFAULT_POLICY)
        for op, kind in (overrides or {}).items():
            if kind not in KINDS:
                raise ValueError(f"[autocast] policy for {op!r} must be one of {KINDS}, got {kind!r}")
            table[op] = kind
        self.dtype, self.table = dt, table

    def target(self, op, dtypes):
        """The dtype the float inputs of `op` run in, or None to leave them alone."""
        kind = self.table.get(op)
        if kind is None:
            return None
        if kind == "lower":
            return self.dtype
        if kind == "fp32":
            return _dt.fp32
        floats = [d for d in dtypes if d.kind == "f"]
        return _dt.result_type(*floats) if floats else None

    def cast_inputs(self, op, inputs):
        """`inputs` (a tuple of tensors; None and Python scalars pass through) cast as the table says for `op`."""
        kind = self.table.get(op)
        if kind is None:
            return inputs
        dts = [t.dtype for t in inputs if type(t) is Tensor]
        dst = self.target(op, dts)
        if dst is None:
            return inputs
        out = []
        for t in inputs:
            if type(t) is not Tensor or t.dtype is dst or t.dtype.kind != "f":
                out.append(t)
            elif kind == "fp32" and t.dtype is _dt.fp64:
                out.append(t)  # never lower fp64 to fp32
            else:
                out.append(t.astype(dst))
        return tuple(out)

    def __repr__(self):
        return f"AutocastPolicy({self.dtype.name})"


class autocast(contextlib.ContextDecorator):
    """Run ops at the precision of the policy table: `with tessera.autocast("bf16"):`
    or `@tessera.autocast("fp16")`. `enabled=False` turns autocast off inside;
    `policy={"softmax": None, ...}` overrides entries of DEFAULT_POLICY."""

    def __init__(self, dtype="bf16", enabled=True, policy=None):
        self.policy = AutocastPolicy(dtype, policy) if enabled else None
        self._saved = []

    def __enter__(self):
        self._saved.append(STATE.autocast)
        STATE.autocast = self.policy
        return self.policy

    def __exit__(self, *exc):
        STATE.autocast = self._saved.pop()
        return False


def is_autocast_enabled():
    return STATE.autocast is not None


def get_autocast_dtype():
    return None if STATE.autocast is None else STATE.autocast.dtype
