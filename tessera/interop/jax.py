"""JAX <-> tessera tensors over DLPack.

`from_jax(a)` views a JAX array's buffer. JAX hands out a legacy capsule with no
read-only flag, so the view is writable; JAX assumes its arrays never change,
so pass `copy=True` before writing into one. `to_jax(x)` hands tessera's
buffer to JAX; XLA on the CPU adopts it without a copy only when it is
64-byte aligned and C-contiguous, otherwise JAX copies (pass `copy=False` to be
told instead). bf16, fp8 and bool keep their dtype.

>>> import jax.numpy as jnp
>>> from tessera import interop
>>> interop.from_jax(jnp.ones((2, 2))).shape
(2, 2)
"""
from __future__ import annotations

from ..errors import DTypeError
from ..tensor import Tensor
from ._optional import require
from .dlpack import from_dlpack


def from_jax(a, *, device=None, copy=None):
    """A tessera tensor viewing JAX array `a`'s buffer (`copy=True` for a private copy)."""
    jax = require("jax", "from_jax")
    if not isinstance(a, jax.Array):
        raise DTypeError(f"[from_jax] expected a jax.Array, got {type(a).__name__}")
    return from_dlpack(a, device=device, copy=copy)


def to_jax(x, *, copy=None):
    """A JAX array over tessera tensor `x`'s buffer, as `jax.numpy.from_dlpack`."""
    jnp = require("jax.numpy", "to_jax")
    if not isinstance(x, Tensor):
        raise DTypeError(f"[to_jax] expected a tessera.Tensor, got {type(x).__name__}")
    return jnp.from_dlpack(x, copy=copy)
