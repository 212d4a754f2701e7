"""Linear algebra: matmul (batched, broadcasting), matrix_transpose, tensordot,
vecdot, einsum, outer, and `linear` (x @ W.T + b).

`matmul` is the primitive; the others are written in tessera ops and get their
gradients from it, except `linear` on the CPU: one GEMM with the bias added in
place and one tape node with its own adjoint, where the composite would record a
transpose, a product and an add (and undo the bias broadcast in backward).
On the GPU the backend picks tessera's tiled kernel or the vendor BLAS per shape
by measurement; on the CPU it is BLAS through NumPy.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes as _dt
from .._config import STATE
from ..errors import DTypeError, ShapeError, fmt_shapes_aligned
from ..autograd.engine import needs_grad, record
from ..backend.cpu_gemm import matmul as _cpu_matmul
from ..device import CPU as _CPU
from ..tensor import Tensor, _new
from .movement import permute_dims, reshape
from .reduce import sum as _sum
from ._dispatch import apply_op, broadcast_shapes, same_device, to_tensor


def matrix_transpose(x):
    """Swap the last two axes (a view), as the Array API `matrix_transpose`."""
    x = to_tensor("matrix_transpose", x)
    nd = len(x.shape)
    if nd < 2:
        raise ShapeError(f"[matrix_transpose] needs at least 2 dimensions, got shape {x.shape}")
    return permute_dims(x, _SWAP_LAST[nd] if nd < 33 else _swap_last(nd))


def _swap_last(nd):
    return tuple(range(nd - 2)) + (nd - 1, nd - 2)


_SWAP_LAST = [None, None] + [_swap_last(nd) for nd in range(2, 33)]  # by ndim, made once


def matmul(x1, x2):
    """Matrix product with NumPy's rules: 1-D operands are promoted to a row /
    column and the added axis removed, leading axes broadcast.

    >>> import tessera as ts
    >>> ts.matmul(ts.ones((2, 3)), ts.ones((3, 4))).shape
    (2, 4)
    """
    if type(x1) is Tensor and type(x2) is Tensor and x1.dtype is x2.dtype:
        out = _matmul_2d_cpu(x1, x2)
        if out is not None:
            return out
    if type(x1) is not Tensor or type(x2) is not Tensor:  # QuantizedTensor operands
        from ..precision.qmatmul import maybe_qmatmul
        r = maybe_qmatmul(x1, x2)
        if r is not None:
            return r
    a = x1 if type(x1) is Tensor else to_tensor("matmul", x1)
    b = x2 if type(x2) is Tensor else to_tensor("matmul", x2)
    dev = a.device if a.device is b.device else same_device("matmul", a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"[matmul] operands must be at least 1-D, got shapes {a.shape} and "
                         f"{b.shape}; use multiply for scalars")
    if a.dtype.kind == "b" and b.dtype.kind == "b":
        raise DTypeError("[matmul] is not defined for two bool tensors")
    if STATE.autocast is not None:
        a, b = STATE.autocast.cast_inputs("matmul", (a, b))
    if a.ndim == 1 or b.ndim == 1:
        a2 = reshape(a, (1, a.shape[0])) if a.ndim == 1 else a
        b2 = reshape(b, (b.shape[0], 1)) if b.ndim == 1 else b
        r = matmul(a2, b2)
        shape = r.shape[:-2] + (() if a.ndim == 1 else r.shape[-2:-1]) + \
            (() if b.ndim == 1 else r.shape[-1:])
        return reshape(r, shape)
    if a.shape[-1] != b.shape[-2]:
        raise ShapeError(f"[matmul] shapes {a.shape} and {b.shape}: inner dimensions "
                         f"{a.shape[-1]} and {b.shape[-2]} differ")
    batch = () if a.ndim == 2 and b.ndim == 2 else \
        broadcast_shapes("matmul", a.shape[:-2], b.shape[:-2])
    dt = _dt.promote(a.dtype, b.dtype)
    backend = dev.backend
    adt, bdt = a.dtype, b.dtype

    def fwd(xa, xb):
        if adt is not dt:
            xa = backend.cast(xa, adt, dt)
        if bdt is not dt:
            xb = backend.cast(xb, bdt, dt)
        return backend.matmul(xa, xb, dt)
    shape = batch + (a.shape[-2], b.shape[-1])
    ad, bd = (a.detach(), b.detach()) if (a.requires_grad or b.requires_grad) else (a, b)
    need_a, need_b = a.requires_grad, b.requires_grad  # at record time: see _record_matmul_2d

    def vjp(g):
        # complex (PyTorch's convention): the adjoint of B -> A B is A^H, not A^T
        if dt.kind == "c":
            from .complex import conj
            ga = matmul(g, matrix_transpose(conj(bd))) if need_a else None
            gb = matmul(matrix_transpose(conj(ad)), g) if need_b else None
            return ga, gb
        ga = matmul(g, matrix_transpose(bd)) if need_a else None
        gb = matmul(matrix_transpose(ad), g) if need_b else None
        return ga, gb
    if STATE.fusion_mode == "aggressive" and dt.kind == "f" and not STATE.event_sinks:
        # A pending product, so that a following `+ bias` and activation can run as
        # the GEMM's epilogue (one launch on CUDA; BLAS + one fused kernel on the
        # CPU). Not while capturing or profiling: those record ops as they run.
        from ..fusion.lazy import lazy_matmul
        from ..autograd.engine import record
        out = lazy_matmul(a, b, dt, shape, dev, fwd)
        if STATE.grad_enabled and (a.requires_grad or b.requires_grad):
            record("matmul", (a, b), out, vjp, (ad, bd))
        return out
    return apply_op("matmul", (a, b), fwd, dt, dev, vjp, (ad, bd), shape=shape)


_BLAS = frozenset((_dt.fp32, _dt.fp64))


def _matmul_2d_cpu(a, b):
    """`a @ b` for realized 2-D CPU tensors of one BLAS dtype (fp32/fp64): the same
    `numpy.matmul` call and tape node as the general path, without its closures.
    None: not handled (other dtypes, shapes or devices, autocast, event sinks,
    aggressive fusion, mismatched inner dimensions: the general path decides)."""
    sa, sb = a.shape, b.shape
    xa, xb = a._buf, b._buf
    if len(sa) != 2 or len(sb) != 2 or sa[1] != sb[0] or a.dtype not in _BLAS \
            or xa is None or xb is None or a.device is not _CPU or b.device is not _CPU \
            or STATE.event_sinks or STATE.autocast is not None \
            or STATE.fusion_mode == "aggressive":
        return None
    out = _new(_cpu_matmul(xa, xb), (sa[0], sb[1]), a.dtype, _CPU)
    out._name = "matmul"
    if STATE.grad_enabled and (a.requires_grad or b.requires_grad):
        _record_matmul_2d(a, b, out)
    return out


_ORIGINS_AB = (("in", 0), ("in", 1))
_ORIGINS_AA = (("in", 0), ("in", 0))


def _record_matmul_2d(a, b, out):
    """The tape node of `_matmul_2d_cpu` (a function of its own, so that the
    no-grad path makes no closure cells)."""
    ad, bd = a.detach(), b.detach()
    # Which gradients to make is read now, not in the vjp: an operand may be another
    # node's saved tensor, put on the tape only while that node's adjoint runs under
    # create_graph (engine._reattach), and off it again when this vjp runs.
    need_a, need_b = a.requires_grad, b.requires_grad

    def vjp(g):
        ga = matmul(g, matrix_transpose(bd)) if need_a else None
        gb = matmul(matrix_transpose(ad), g) if need_b else None
        return ga, gb
    # origins as engine._origin finds them (the first input with the saved tensor's
    # storage and version): bd is input 1, or input 0 for a @ a; else search
    org = _ORIGINS_AB if a._version is not b._version else _ORIGINS_AA if a is b else None
    record("matmul", (a, b), out, vjp, (ad, bd), origins=org)


def tensordot(x1, x2, axes=2):
    """As the Array API `tensordot`: contract the last `axes` of x1 with the first
    of x2, or the explicit axis lists given as a pair."""
    from .movement import permute_dims, reshape
    a = to_tensor("tensordot", x1)
    b = to_tensor("tensordot", x2)
    if isinstance(axes, int):
        if axes < 0 or axes > min(a.ndim, b.ndim):
            raise ShapeError(f"[tensordot] axes={axes} invalid for shapes {a.shape} and {b.shape}")
        ax_a = list(range(a.ndim - axes, a.ndim))
        ax_b = list(range(axes))
    else:
        ax_a, ax_b = [list(v) if isinstance(v, (list, tuple)) else [v] for v in axes]
        ax_a = [x % a.ndim for x in ax_a]
        ax_b = [x % b.ndim for x in ax_b]
    if len(ax_a) != len(ax_b) or any(a.shape[i] != b.shape[j] for i, j in zip(ax_a, ax_b)):
        raise ShapeError(f"[tensordot] contracted dimensions differ: {[a.shape[i] for i in ax_a]} "
                         f"vs {[b.shape[j] for j in ax_b]} (shapes {a.shape} and {b.shape})")
    free_a = [i for i in range(a.ndim) if i not in ax_a]
    free_b = [j for j in range(b.ndim) if j not in ax_b]
    k = 1
    for i in ax_a:
        k *= a.shape[i]
    am = reshape(permute_dims(a, free_a + ax_a), (-1, k))
    bm = reshape(permute_dims(b, ax_b + free_b), (k, -1))
    r = matmul(am, bm)
    return reshape(r, tuple(a.shape[i] for i in free_a) + tuple(b.shape[j] for j in free_b))


def vecdot(x1, x2, axis=-1):
    """Dot product of vectors along `axis` (conjugating x1), as the Array API `vecdot`."""
    from .reduce import sum
    a = to_tensor("vecdot", x1)
    b = to_tensor("vecdot", x2)
    if a.shape[axis] != b.shape[axis]:
        raise ShapeError(f"[vecdot] sizes along axis {axis} differ: {a.shape} and {b.shape}")
    if a.dtype.is_complex:
        from .complex import conj
        a = conj(a)
    return sum(a * b, axis=axis)


def outer(x1, x2):
    from .movement import reshape
    a = to_tensor("outer", x1)
    b = to_tensor("outer", x2)
    return reshape(a, (-1, 1)) * reshape(b, (1, -1))


def linear(x, weight, bias=None):
    """x @ weight.T + bias, as `torch.nn.functional.linear`: x of shape (..., in),
    weight (out, in) (or (in,): a vector product), bias broadcasting to the output
    (usually (out,)) or None.

    fp32/fp64 CPU operands of one dtype, x of 2+ dimensions and a bias of shape
    (out,) or None make one op and one tape node ("linear", see `_linear_op`);
    everything else takes the composite `matmul(x, weight.T) + bias` (other devices
    and dtypes, mixed dtypes, autocast, and fusion mode "aggressive", where the
    product stays pending so that the bias and activation run as the GEMM's
    epilogue).

    >>> import tessera as ts
    >>> ts.linear(ts.ones((2, 3)), ts.ones((4, 3)), ts.ones(4)).tolist()
    [[4.0, 4.0, 4.0, 4.0], [4.0, 4.0, 4.0, 4.0]]
    """
    x = to_tensor("linear", x)
    w = to_tensor("linear", weight)
    b = None if bias is None else to_tensor("linear", bias)
    out_shape = _linear_shape(x, w, b)
    if _linear_is_primitive(x, w, b):
        return _linear_op(x, w, b, out_shape)
    if STATE.autocast is not None:  # tessera.precision.autocast policy (bias lowered too)
        x, w, b = STATE.autocast.cast_inputs("linear", (x, w, b))
    y = matmul(x, matrix_transpose(w) if w.ndim == 2 else w)
    return y + b if b is not None else y


def _linear_shape(x, w, b):
    """The output shape of `linear`, or a ShapeError naming both shapes."""
    if x.ndim == 0 or w.ndim not in (1, 2):
        raise ShapeError(f"[linear] input {x.shape} and weight {w.shape}: the input needs at "
                         "least 1 dimension and the weight 1 or 2 (out_features, in_features)")
    if x.shape[-1] != w.shape[-1]:
        raise ShapeError(f"[linear] input {x.shape} and weight {w.shape}: in_features "
                         f"{x.shape[-1]} and {w.shape[-1]} differ (weight is (out_features, "
                         "in_features))")
    out = x.shape[:-1] + w.shape[:-1]
    if b is not None and b.shape != out[-1:] and (len(b.shape) > len(out) or any(
            d not in (1, o) for d, o in zip(b.shape[::-1], out[::-1]))):
        raise ShapeError(f"[linear] bias {b.shape} does not broadcast to the output {out} "
                         f"(input {x.shape}, weight {w.shape})")
    return out


def _linear_is_primitive(x, w, b):
    """Whether `linear` runs as its own op: fp32/fp64 CPU operands of one dtype,
    x of 2+ dimensions, weight 2-D, bias (out,) or None, no autocast policy and no
    aggressive fusion (both handled by the composite)."""
    dt = x.dtype
    return (dt in _BLAS and w.dtype is dt and x.device is _CPU and w.device is _CPU
            and x.ndim >= 2 and w.ndim == 2
            and (b is None or b.dtype is dt and b.device is _CPU and b.shape == w.shape[:1])
            and STATE.autocast is None and STATE.fusion_mode != "aggressive")


def _linear_fwd_for(dt):
    """The forward of `linear` on buffers of dtype `dt`: x @ W.T (+ b). A function of
    the buffers only, so that graph capture replays it."""
    def linear_fwd(xb, wb, bb=None):
        if xb.ndim > 2:  # one GEMM over the folded leading axes, not a batch of small ones
            out = linear_fwd(xb.reshape(-1, xb.shape[-1]), wb, bb)
            return out.reshape(xb.shape[:-1] + (wb.shape[0],))
        m, n = xb.shape[0], wb.shape[0]
        if bb is not None and m <= SMALL_BATCH and n >= 2 * m:
            # A small batch through a wide layer: OpenBLAS runs W @ x^T faster than
            # x @ W^T (it packs W better as the left operand: 64x784 -> 256 took
            # 202 us instead of 223, 32x512 -> 512 146 instead of 214); the bias add
            # writes the transposed product into a C-ordered output in its one pass.
            out = np.empty((m, n), xb.dtype)
            np.add(_CPU.backend.matmul(wb, xb.T, dt).T, bb, out=out)
            return out
        out = _CPU.backend.matmul(xb, wb.T, dt)  # BLAS reads the transposed view: no copy
        if bb is not None:
            np.add(out, bb, out=out)  # into the fresh product: no second temporary
        return out
    return linear_fwd


SMALL_BATCH = 64  # rows up to which linear computes (W x^T)^T (see linear_fwd)
_LINEAR_FWD = {dt: _linear_fwd_for(dt) for dt in _BLAS}


def _linear_op(x, w, b, out_shape):
    """`linear` as one op: one GEMM with the bias added in place, one tape node.
    Through `apply_op` while event sinks listen (capture replays `fwd`, the profiler
    times it); else the same calls without its generality, as `_matmul_2d_cpu`."""
    dt = x.dtype
    fwd = _LINEAR_FWD[dt]
    if STATE.event_sinks:
        vjp, saved = _linear_adjoint(x, w, b) if needs_grad(x, w, b) else (None, ())
        return apply_op("linear", (x, w, b), fwd, dt, _CPU, vjp, saved, shape=out_shape)
    out = _new(fwd(x.data, w.data) if b is None else fwd(x.data, w.data, b.data),
               out_shape, dt, _CPU)
    out._name = "linear"
    if STATE.grad_enabled and (x.requires_grad or w.requires_grad
                               or b is not None and b.requires_grad):
        vjp, saved = _linear_adjoint(x, w, b)
        # origins as engine._origin finds them: x is input 0 and W input 1, unless
        # they share storage (linear(w, w)): then the engine searches
        org = None if x._version is w._version else \
            _LINEAR_ORIGINS[w.requires_grad, x.requires_grad]
        record("linear", (x, w, b), out, vjp, saved, origins=org)
    return out


# the saved tensors' origins by (W requires grad: x saved, x requires grad: W saved)
_LINEAR_ORIGINS = {(True, True): (("in", 0), ("in", 1)), (True, False): (("in", 0),),
                   (False, True): (("in", 1),), (False, False): ()}


def _linear_adjoint(x, w, b):
    """(vjp, saved) of `linear`: gx = g W, gW = g^T x over the folded leading axes,
    gb = g summed over the leading axes; each only for an input that requires grad,
    and only x (for gW) and W (for gx) saved."""
    need_x, need_w = x.requires_grad, w.requires_grad
    need_b = b is not None and b.requires_grad
    xd = x.detach() if need_w else None
    wd = w.detach() if need_x else None

    def vjp(g):
        if not STATE.grad_enabled and not STATE.event_sinks and g._buf is not None \
                and g.dtype is wd_or_xd.dtype and g.device is _CPU:
            return _linear_adjoint_buffers(g, xd, wd, need_b)
        gx = matmul(g, wd) if need_x else None
        gw = None
        if need_w:
            g2, x2 = g, xd
            if g.ndim > 2:
                g2, x2 = reshape(g, (-1, g.shape[-1])), reshape(xd, (-1, xd.shape[-1]))
            gw = matmul(matrix_transpose(g2), x2)
        gb = _sum(g, axis=_LEAD_AXES[g.ndim]) if need_b else None
        return gx, gw, gb
    wd_or_xd = wd if wd is not None else xd if xd is not None else x
    saved = (xd, wd) if need_w and need_x else (xd,) if need_w else (wd,) if need_x else ()
    return vjp, saved


def _linear_adjoint_buffers(g, xd, wd, need_b):
    """`linear`'s adjoint on the CPU buffers, for a plain backward (no graph of the
    backward being built, nothing recording ops): the same products and sum as the
    tessera-op form above, without three op front ends and a transpose view each."""
    gb_ = g._buf
    g2 = gb_.reshape(-1, gb_.shape[-1]) if gb_.ndim > 2 else gb_
    dt = g.dtype
    gx = gw = gb = None
    if wd is not None:
        shape = g.shape[:-1] + (wd.shape[1],)
        gx = _new(_cpu_matmul(g2, wd._buf).reshape(shape), shape, dt, _CPU)
    if xd is not None:
        xb = xd._buf
        x2 = xb.reshape(-1, xb.shape[-1]) if xb.ndim > 2 else xb
        gw = _new(_cpu_matmul(g2.T, x2), (g2.shape[1], x2.shape[1]), dt, _CPU)
    if need_b:
        gb = _new(g2.sum(axis=0), (g2.shape[1],), dt, _CPU)
    return gx, gw, gb


_LEAD_AXES = [tuple(range(n - 1)) for n in range(33)]  # the axes gb sums over, by g.ndim
