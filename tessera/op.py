"""The seed chapter's `op` namespace: `from tessera import op`, then `op.tensor`,
`op.matmul`, `op.cast`, `op.check_numerics`, `op.custom`, and every other op.

It is the `tessera` op set under one more name (nothing is defined here except
the seed's spellings that the Array API lacks, like `cast`).
"""
from .ops import *  # noqa: F401,F403
from .ops import tensor  # noqa: F401  (the seed's op.tensor(shape, dtype=...))
from .ops.elementwise import astype


def cast(x, dtype, rounding="nearest", saturate=None, generator=None):
    """Cast to `dtype` (the seed's `op.cast(x, "bf16")`). `rounding="nearest"`
    rounds to nearest even; `"stochastic"` and `saturate` come with the precision
    module when it is present."""
    if rounding == "nearest" and saturate is None:
        return astype(x, dtype)
    try:
        from .precision.cast import cast as _pcast
    except ImportError:
        raise NotImplementedError("[cast] stochastic rounding / saturate need tessera.precision") from None
    return _pcast(x, dtype, rounding=rounding, saturate=saturate, generator=generator)


def quantize(x, scheme="int8_per_channel", axis=None, group_size=None, symmetric=True, observer=None):
    """The seed's `op.quantize(x, scheme=...)`: see tessera.precision.quant.quantize."""
    from .precision.quant import quantize as _q
    return _q(x, scheme, axis, group_size, symmetric, observer)


def dequantize(q, dtype=None):
    """`op.dequantize(q)`: see tessera.precision.quant.dequantize."""
    from .precision.quant import dequantize as _dq
    return _dq(q, dtype)


def fake_quantize(x, scheme="int8_per_channel", axis=None, group_size=None, symmetric=True,
                  scale=None, observer=None):
    """`op.fake_quantize(x, scheme=...)`: see tessera.precision.fake_quant.fake_quantize."""
    from .precision.fake_quant import fake_quantize as _fq
    return _fq(x, scheme, axis, group_size, symmetric, scale, observer)


def check_numerics(t=None, message="", **kw):
    """Raise NumericsError if `t` holds a NaN or Inf, naming its producer; else
    return `t`. Without a tensor: the global checking mode (see tessera.numerics)."""
    from .numerics import check_numerics as _cn
    return _cn(t, message, **kw) if t is not None else _cn(**kw)


def custom(name, fn=None, **options):
    """Register a custom operator (the seed's `@op.custom("name")`): see tessera.custom.custom."""
    from .custom import custom as _custom
    return _custom(name, fn, **options)


def kernel(source, name, grid=None, block=256, args=None, shared_mem=0, options=()):
    """A CUDA/HIP kernel for `op.custom(name, kernel=op.kernel(...))`: see tessera.custom.Kernel."""
    from .custom import Kernel
    return Kernel(source, name, grid, block, args, shared_mem, options)


def gradcheck(fn, *args, **kw):
    """Check an op's adjoint against finite differences and by the dot-product test,
    naming the input that disagrees: see tessera.custom.gradcheck."""
    from .custom import gradcheck as _gc
    return _gc(fn, *args, **kw)
