"""The matmul epilogue hook (fusion mode "aggressive").

A pending `matmul` is a `LazyOp` whose op is "matmul" (made by `lazy.lazy_matmul`;
`arg` is the function computing the product from the operands' buffers).  When a
group reads one, `match` recognizes the epilogue the GEMM kernel can apply itself:

    y = act(matmul(a, b) + bias)      act in {None, relu, gelu, silu}, bias of shape (N,)

written exactly as tessera.relu / gelu / silu spell it (structural comparison of
the group's hash-consed IR against templates built from the same spellings).  On
CUDA, `lazy` then realizes the whole group as one launch of
tessera/kernels/launchers/matmul.matmul(a, b, bias=, activation=); on the CPU the
product runs on BLAS and the epilogue as one fused kernel (what `match` returns
is still recorded, so `explain` shows the group that would be absorbed).
"""
from __future__ import annotations

from . import ir

_SLOT_PRE = 1 << 20   # placeholder slot standing for the pre-activation value


def _templates(dt):
    """activation name -> IR of act(P) with P the placeholder, as tessera.nn spells it."""
    P = ir.Node("input", dt, (), _SLOT_PRE)

    def c(v):
        return ir.Node("const", dt, (), v)
    relu = ir.Node("maximum", dt, (P, c(0)))
    erf = ir.Node("erf", dt, (ir.Node("multiply", dt, (P, c(0.7071067811865476))),))
    gelu = ir.Node("multiply", dt, (ir.Node("multiply", dt, (P, ir.Node("add", dt, (erf, c(1))))),
                                    c(0.5)))
    silu = ir.Node("multiply", dt, (P, ir.Node("sigmoid", dt, (P,))))
    return {None: P, "relu": relu, "gelu": gelu, "silu": silu}


_COMMUTATIVE = {"add", "multiply", "maximum", "minimum"}


def _same(n, t, pre):
    """Does IR node `n` match template `t` (the placeholder matching `pre`)?"""
    if t.op == "input" and t.arg == _SLOT_PRE:
        return n is pre
    if n.op != t.op or n.dtype != t.dtype or len(n.srcs) != len(t.srcs):
        return False
    if t.op == "const":
        return float(n.arg) == float(t.arg)
    if all(_same(a, b, pre) for a, b in zip(n.srcs, t.srcs)):
        return True
    return (n.op in _COMMUTATIVE and len(n.srcs) == 2
            and _same(n.srcs[0], t.srcs[1], pre) and _same(n.srcs[1], t.srcs[0], pre))


def match(outputs, order):
    """(matmul LazyOp, bias source, activation) if the group is act(matmul + bias), else None."""
    from .execute import build_ir
    from .lazy import LazyOp
    if len(outputs) != 1 or outputs[0].axes is not None or not order:
        return None
    mms = [s for n in order for s in n.srcs if type(s) is LazyOp and s.op == "matmul"]
    if len(mms) != 1:
        return None
    mm = mms[0]
    add = next((n for n in order if n.op == "add" and any(s is mm for s in n.srcs)), None)
    if add is None or len(add.srcs) != 2:
        return None
    bias = add.srcs[1] if add.srcs[0] is mm else add.srcs[0]
    n_cols = mm.shape[-1]
    if getattr(bias, "shape", None) not in ((n_cols,), (1, n_cols)) or bias is mm:
        return None
    if bias.dtype is not mm.dtype or add.dtype is not mm.dtype:
        return None
    memo = {}
    roots, _ = build_ir(outputs, order, outputs[0].shape, structure=memo)
    pre = memo[id(add)]
    for act, t in _templates(mm.dtype.name).items():
        if _same(roots[0], t, pre):
            return mm, bias, act
    return None


def runner(backend, epi):
    """The one-launch GEMM+epilogue for `epi` on this backend, or None (CPU, or a shape or
    dtype the tiled kernel does not take): fn(a, b, bias, act, dtype) -> buffer."""
    mm = epi[0]
    if getattr(backend, "name", None) != "cuda" and type(backend).__name__.lower().find("cuda") < 0:
        return None
    if len(mm.shape) != 2:
        return None
    from ..kernels.launchers.registry import MATMUL_DTYPES
    if mm.dtype.name not in MATMUL_DTYPES:
        return None

    def run(a, b, bias, act, dtype):
        from ..kernels.launchers.matmul import matmul
        ta, a = backend._as_operand(a)
        tb, b = backend._as_operand(b)
        return matmul(a, b, trans_a=ta, trans_b=tb, bias=bias, activation=act, dtype=dtype.name)
    return run
