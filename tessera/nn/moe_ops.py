"""The functional steps of a mixture of experts, each a separate function so that
expert parallelism can later put an all-to-all between them:

    route     -> top-k (optionally noisy) softmax routing: gates and expert ids
    plan      -> sort the (token, choice) assignments by expert, apply the capacity,
                 count what is dropped (integer bookkeeping, no gradient)
    dispatch  -> gather the tokens into expert-sorted rows
    grouped_matmul / expert_ffn -> every expert on its rows in ONE grouped matmul
                 (grouped_matmul.cu on the GPU, one BLAS call per group on the CPU)
    combine   -> scatter the gate-weighted expert outputs back to their tokens
    load_balancing_loss -> the Switch Transformer auxiliary loss

Shapes stay static: the plan keeps all T*k assignments, the kept ones packed at
the front in expert order and the dropped ones after `offsets[-1]`, where the
grouped matmul writes zeros. So nothing waits on the host for a count.

>>> import tessera as ts
>>> from tessera.nn import moe_ops as M
>>> x = ts.asarray([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
>>> r = M.route(x, ts.asarray([[1.0, -1.0], [-1.0, 1.0]]), k=1)
>>> r.experts.reshape((-1,)).tolist()
[0, 1, 0]
>>> p = M.plan(r.experts, num_experts=2, capacity=1)
>>> p.offsets.tolist(), p.dropped.tolist()
([0, 1, 2], [1, 0])
"""
from __future__ import annotations

import math
from collections import namedtuple

import numpy as np

from .. import dtypes as _dt
from ..errors import DTypeError, ShapeError

__all__ = ["Routing", "Plan", "route", "capacity_for", "plan", "dispatch", "combine",
           "grouped_matmul", "grouped_matmul_wgrad", "expert_ffn", "load_balancing_loss"]

Routing = namedtuple("Routing", ["gates", "experts", "probs", "logits"])
Routing.__doc__ = """gates (T, k) float (differentiable), experts (T, k) int64,
probs (T, E) the full softmax (for the balancing loss), logits (T, E)."""


class Plan(namedtuple("Plan", ["token", "assign", "expert", "kept", "offsets", "counts",
                               "dropped", "capacity", "num_tokens", "k"])):
    """Rows of the expert-sorted layout (all length T*k): `token` (which token),
    `assign` (flat index token*k + choice into the gates), `expert`, `kept` (1.0 /
    0.0); `offsets` (E+1,): expert e's kept rows are offsets[e]:offsets[e+1];
    `counts` (E,) assignments routed to each expert before the capacity, `dropped`
    (E,) those over it."""

    @property
    def num_dropped(self):
        return int(self.dropped.sum().item())


def _ts():
    import tessera
    return tessera


# -- routing ---------------------------------------------------------------------------
def route(x, w_gate, k, noise_weight=None, training=False, normalize=True, generator=None):
    """Top-k softmax routing of tokens x (T, d) over E experts with router weight
    w_gate (d, E), as Switch/GShard: probs = softmax(x @ w_gate); the k largest are
    the gates, renormalized to sum to 1 when `normalize` (Mixtral's convention).
    Noisy top-k (Shazeer et al. 2017): with `noise_weight` (d, E) and `training`,
    the logits get N(0, 1) * softplus(x @ noise_weight) before the selection."""
    ts = _ts()
    if x.ndim != 2 or w_gate.ndim != 2 or w_gate.shape[0] != x.shape[1]:
        raise ShapeError(f"[moe.route] tokens {x.shape} and router weight {w_gate.shape}: "
                         "need (T, d) and (d, E)")
    E = w_gate.shape[1]
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= E:
        raise ShapeError(f"[moe.route] k={k!r} must be an integer in 1..{E} (the number of experts)")
    logits = ts.matmul(x, w_gate)
    if noise_weight is not None and training:
        from ..random import default_generator
        g = generator if generator is not None else default_generator(x.device)
        eps = g.normal(logits.shape, dtype=logits.dtype.name).to(x.device)
        logits = logits + eps * ts.softplus(ts.matmul(x, noise_weight))
    probs = ts.softmax(logits, axis=-1)
    gates, experts = ts.topk(probs, int(k), axis=-1)
    if normalize and k > 1:
        gates = gates / ts.sum(gates, axis=-1, keepdims=True)
    return Routing(gates, experts, probs, logits)


def capacity_for(num_tokens, num_experts, k, capacity_factor):
    """Slots per expert: ceil(capacity_factor * T * k / E); None means unlimited."""
    if capacity_factor is None:
        return num_tokens * k
    return int(math.ceil(capacity_factor * num_tokens * k / num_experts))


# -- planning (integer bookkeeping on the device's array module) -----------------------
def _plan_buffers(xp, e, num_experts, capacity):
    T, k = e.shape
    A = T * k
    ef = e.T.reshape(-1)  # choice-major: every first choice is served before any second one
    # unique keys make any sort order the stable one (CuPy's argsort takes no kind)
    order = xp.argsort(ef * A + xp.arange(A))
    es = ef[order]
    counts = xp.bincount(ef, minlength=num_experts)[:num_experts]
    starts = xp.cumsum(counts) - counts
    kept = (xp.arange(A) - starts[es]) < capacity
    final = order[xp.argsort((~kept).astype(np.int64) * A + xp.arange(A))]
    kept_counts = xp.minimum(counts, capacity)
    offsets = xp.concatenate([xp.zeros(1, dtype=np.int64), xp.cumsum(kept_counts)])
    token, choice = final % T, final // T
    rows = xp.stack([token, token * k + choice, ef[final], xp.sort(~kept).astype(np.int64) ^ 1])
    return xp.concatenate([rows.reshape(-1), offsets, counts, counts - kept_counts]).astype(np.int64)


def plan(experts, num_experts, capacity):
    """The expert-sorted layout of the assignments `experts` (T, k) int64 with
    `capacity` slots per expert (>= 1): within an expert, earlier choices beat
    later ones, then earlier tokens win (GShard's priority)."""
    from ..ops._dispatch import apply_op
    ts = _ts()
    if experts.ndim != 2 or experts.dtype.kind not in "iu":
        raise DTypeError(f"[moe.plan] expert ids must be an integer (T, k) tensor, got "
                         f"{experts.dtype.name} {experts.shape}")
    if capacity < 1:
        raise ShapeError(f"[moe.plan] capacity {capacity} drops every token ({experts.shape[0]} "
                         f"tokens, k={experts.shape[1]}, {num_experts} experts); raise "
                         "capacity_factor so that each expert has at least one slot")
    T, k = experts.shape
    A, E = T * k, num_experts
    xp = experts.device.backend.xp
    packed = apply_op("moe.plan", (experts,),
                      lambda b: _plan_buffers(xp, b.astype(np.int64), E, capacity),
                      _dt.int64, experts.device, shape=(4 * A + 3 * E + 1,))
    rows = ts.reshape(packed[:4 * A], (4, A))
    tail = packed[4 * A:]
    return Plan(rows[0], rows[1], rows[2], ts.astype(rows[3], "fp32"), tail[:E + 1],
                tail[E + 1:2 * E + 1], tail[2 * E + 1:], int(capacity), T, k)


# -- dispatch / experts / combine ------------------------------------------------------
def dispatch(x, p):
    """Tokens (T, d) -> expert-sorted rows (T*k, d): row i is x[p.token[i]]."""
    return _ts().take(x, p.token, axis=0)


def combine(y, gates, p):
    """Expert-sorted outputs (T*k, d) -> tokens (T, d): out[t] = sum over t's kept
    rows of gate * y_row. Dropped rows weigh 0 (their token gets nothing from
    that expert; a residual connection around the layer carries it)."""
    ts = _ts()
    w = ts.take(ts.reshape(gates, (-1,)), p.assign) * ts.astype(p.kept, gates.dtype)
    out = ts.zeros((p.num_tokens, y.shape[1]), dtype=y.dtype, device=y.device)
    return ts.index_add(out, p.token, y * ts.reshape(w, (-1, 1)))


def _check_grouped(op, x, w, offsets, trans_w):
    if x.ndim != 2 or w.ndim != 3:
        raise ShapeError(f"[{op}] needs x (R, K) and w (G, K, N), got {x.shape} and {w.shape}")
    kin = w.shape[2] if trans_w else w.shape[1]
    if kin != x.shape[1] or offsets.shape != (w.shape[0] + 1,):
        raise ShapeError(f"[{op}] x {x.shape}, w {w.shape} (trans_w={trans_w}) and offsets "
                         f"{offsets.shape}: need w (G, {x.shape[1]}, N) "
                         f"{'stored (G, N, K) ' if trans_w else ''}and G + 1 offsets")
    if x.dtype is not w.dtype or x.dtype.kind != "f":
        raise DTypeError(f"[{op}] needs one floating dtype, got {x.dtype.name} and {w.dtype.name}")
    if x.device is not w.device or offsets.device is not x.device:
        from ..errors import DeviceError
        raise DeviceError(f"[{op}] operands on {x.device}, {w.device} and {offsets.device}")


def grouped_matmul(x, w, offsets, trans_w=False):
    """y[r] = x[r] @ w[g] for the rows r in offsets[g]:offsets[g+1] (w (G, K, N));
    with `trans_w`, w is (G, N, K) and y[r] = x[r] @ w[g].T. Rows past offsets[-1]
    are 0. Reference: a loop of `numpy.matmul` over the groups.

    >>> import tessera as ts
    >>> from tessera.nn.moe_ops import grouped_matmul
    >>> w = ts.asarray([[[1.0]], [[2.0]]])
    >>> grouped_matmul(ts.ones((3, 1)), w, ts.asarray([0, 1, 3])).tolist()
    [[1.0], [2.0], [2.0]]
    """
    from ..ops._dispatch import apply_op
    _check_grouped("grouped_matmul", x, w, offsets, trans_w)
    b, dt = x.device.backend, x.dtype

    def fwd(xb, wb, ob):
        return b.grouped_matmul(xb, wb, ob, dt, trans_w)

    def vjp(g):
        dx = grouped_matmul(g, w_, offsets, trans_w=not trans_w)
        dw = grouped_matmul_wgrad(g, x_, offsets) if trans_w else grouped_matmul_wgrad(x_, g, offsets)
        return dx, dw, None
    x_, w_ = x.detach(), w.detach()
    return apply_op("grouped_matmul", (x, w, offsets), fwd, dt, x.device, vjp, saved=(x_, w_))


def grouped_matmul_wgrad(a, b, offsets):
    """dw[g] = a[rows of g].T @ b[rows of g], (G, K, N): the weight gradient of
    `grouped_matmul`, itself differentiable (its adjoints are grouped matmuls)."""
    from ..ops._dispatch import apply_op
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0] or offsets.ndim != 1:
        raise ShapeError(f"[grouped_matmul_wgrad] needs a (R, K), b (R, N) and offsets (G+1,), "
                         f"got {a.shape}, {b.shape}, {offsets.shape}")
    be, dt = a.device.backend, a.dtype

    def vjp(g):
        return (grouped_matmul(b_, g, offsets, trans_w=True), grouped_matmul(a_, g, offsets), None)
    a_, b_ = a.detach(), b.detach()
    return apply_op("grouped_matmul_wgrad", (a, b, offsets),
                    lambda ab, bb, ob: be.grouped_matmul_wgrad(ab, bb, ob, dt), dt, a.device, vjp,
                    saved=(a_, b_))


def expert_ffn(xs, p, w1, b1, w2, b2, activation="gelu"):
    """Every expert's feed-forward act(x W1[e] + b1[e]) W2[e] + b2[e] on its rows
    of the sorted layout, with one grouped matmul per layer (no loop over experts)."""
    ts = _ts()
    h = grouped_matmul(xs, w1, p.offsets)
    if b1 is not None:
        h = h + ts.take(b1, p.expert, axis=0)
    h = {"gelu": ts.gelu, "relu": ts.relu, "silu": ts.silu, None: lambda v: v}[activation](h)
    y = grouped_matmul(h, w2, p.offsets)
    if b2 is not None:
        y = y + ts.take(b2, p.expert, axis=0)
    return y


def load_balancing_loss(probs, p):
    """Switch Transformer's auxiliary loss E * sum_e f_e P_e: f_e the fraction of
    the T*k assignments routed to expert e (before the capacity), P_e the mean
    router probability of e. 1.0 when balanced; the gradient flows through P."""
    ts = _ts()
    E = probs.shape[-1]
    f = ts.astype(p.counts, probs.dtype) / float(p.num_tokens * p.k)
    return float(E) * ts.sum(f * ts.mean(probs, axis=0))
