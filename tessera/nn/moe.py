"""Mixture-of-experts layers: `MoE` (top-k routed feed-forward experts), the
hierarchical (recursive) router `HierarchicalRouter` with `HierarchicalMoE`
(expert within expert), and `SpectralMoE` (each expert a spectral operator owning
a band of frequencies). The steps (route, plan, dispatch, grouped experts,
combine) are the functions of `moe_ops`; these modules own the parameters.

>>> import tessera as ts
>>> moe = ts.nn.MoE(8, 16, num_experts=4, k=2, capacity_factor=None)
>>> y = moe(ts.ones((5, 8)))
>>> y.shape, moe.stats["dropped"]
((5, 8), 0)
"""
from __future__ import annotations

import math
import warnings

from ..errors import ShapeError
from . import moe_ops as M
from .layers import _gen, _ts
from .module import Module, Parameter

__all__ = ["MoE", "HierarchicalRouter", "HierarchicalMoE", "SpectralMoE"]


def _uniform(g, shape, fan_in, dtype, device):
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return Parameter(g.uniform(shape, -bound, bound, dtype=dtype).to(device))


class _Experts(Module):
    """E two-layer feed-forward experts stored stacked: w1 (E, d, h), w2 (E, h, d),
    so that one grouped matmul per layer runs them all."""

    def __init__(self, num_experts, d_model, d_hidden, activation, dtype, device, g):
        super().__init__()
        self.activation = activation
        self.w1 = _uniform(g, (num_experts, d_model, d_hidden), d_model, dtype, device)
        self.b1 = _uniform(g, (num_experts, d_hidden), d_model, dtype, device)
        self.w2 = _uniform(g, (num_experts, d_hidden, d_model), d_hidden, dtype, device)
        self.b2 = _uniform(g, (num_experts, d_model), d_hidden, dtype, device)

    def forward(self, xs, p):
        return M.expert_ffn(xs, p, self.w1, self.b1, self.w2, self.b2, self.activation)

    def dense(self, x, e):
        """Expert e on tokens x, written plainly (the per-token reference)."""
        ts = _ts()
        h = ts.matmul(x, self.w1[e]) + self.b1[e]
        h = {"gelu": ts.gelu, "relu": ts.relu, "silu": ts.silu, None: lambda v: v}[self.activation](h)
        return ts.matmul(h, self.w2[e]) + self.b2[e]


class _RoutedLayer(Module):
    """Shared forward of the MoE layers: flatten tokens, route, plan with the
    capacity, dispatch, run the experts, combine; keep `aux_loss` and `stats`."""

    def _check_k(self, k, num_experts):
        if not isinstance(k, int) or not 1 <= k <= num_experts:
            raise ShapeError(f"[{type(self).__name__}] k={k!r} must be an integer in "
                             f"1..{num_experts} (the number of experts)")

    def dispatch(self, xt, p):
        return M.dispatch(xt, p)

    def combine(self, y, gates, p):
        return M.combine(y, gates, p)

    def forward(self, x):
        ts = _ts()
        if x.shape[-1] != self.d_model:
            raise ShapeError(f"[{type(self).__name__}] input {x.shape}: last dimension must be "
                             f"d_model={self.d_model}")
        lead = x.shape[:-1]
        xt = ts.reshape(x, (-1, self.d_model))
        r = self.route(xt)
        T = xt.shape[0]
        cap = M.capacity_for(T, self.num_experts, r.experts.shape[1], self.capacity_factor)
        if cap < 1:
            raise ShapeError(f"[{type(self).__name__}] capacity_factor={self.capacity_factor} gives "
                             f"{cap} slots per expert for {T} tokens, k={r.experts.shape[1]}, "
                             f"{self.num_experts} experts: every token would be dropped")
        p = M.plan(r.experts, self.num_experts, cap)
        y = self.combine(self.run_experts(self.dispatch(xt, p), p), r.gates, p)
        self.aux_loss = M.load_balancing_loss(r.probs, p)
        dropped = p.num_dropped
        self.stats = {"tokens": T, "assignments": T * r.experts.shape[1], "capacity": cap,
                      "dropped": dropped, "counts": p.counts.tolist(),
                      "dropped_per_expert": p.dropped.tolist()}
        if dropped and self.warn_dropped:
            warnings.warn(f"[{type(self).__name__}] dropped {dropped} of {T * r.experts.shape[1]} "
                          f"token assignments (capacity {cap} per expert; per expert "
                          f"{p.dropped.tolist()})", stacklevel=2)
        return ts.reshape(y, lead + (self.d_model,))


class MoE(_RoutedLayer):
    """A mixture of `num_experts` feed-forward experts (d_model -> d_hidden ->
    d_model) with top-`k` softmax routing (GShard / Switch Transformer):

    - `noisy=True`: noisy top-k gating (Shazeer et al. 2017) while training;
    - `capacity_factor`: each expert takes ceil(cf * T * k / E) assignments, the
      rest are dropped (their contribution is 0) and counted in `stats`;
      None means unlimited;
    - after each call, `aux_loss` holds the load-balancing loss (add it, scaled,
      to the training loss) and `stats` the routed and dropped counts.

    Experts run on the expert-sorted tokens with one grouped matmul per layer.
    Reference semantics: out[t] = sum_j gate[t, j] * expert_{e[t, j]}(x[t]) over
    the kept choices (`dense_reference`)."""

    def __init__(self, d_model, d_hidden, num_experts, k=2, capacity_factor=1.25, noisy=False,
                 activation="gelu", normalize=True, warn_dropped=False, dtype="fp32", device=None,
                 generator=None):
        super().__init__()
        self._check_k(k, num_experts)
        self.d_model, self.d_hidden, self.num_experts, self.k = d_model, d_hidden, num_experts, k
        self.capacity_factor, self.noisy, self.normalize = capacity_factor, noisy, normalize
        self.warn_dropped = warn_dropped
        g = _gen(generator, device)
        self._gen = generator
        self.w_gate = _uniform(g, (d_model, num_experts), d_model, dtype, device)
        if noisy:
            self.w_noise = _uniform(g, (d_model, num_experts), d_model, dtype, device)
        self.experts = _Experts(num_experts, d_model, d_hidden, activation, dtype, device, g)
        self.aux_loss, self.stats = None, {}

    def route(self, xt):
        return M.route(xt, self.w_gate, self.k, getattr(self, "w_noise", None) if self.noisy else None,
                       training=self.training, normalize=self.normalize, generator=self._gen)

    def run_experts(self, xs, p):
        return self.experts(xs, p)

    def dense_reference(self, x):
        """The same layer as a plain loop over tokens' choices with unlimited
        capacity (noise off): for tests and for reading."""
        ts = _ts()
        xt = ts.reshape(x, (-1, self.d_model))
        r = M.route(xt, self.w_gate, self.k, normalize=self.normalize)
        out = ts.zeros(xt.shape, dtype=xt.dtype, device=xt.device)
        for j in range(self.k):
            for e in range(self.num_experts):
                m = ts.astype(r.experts[:, j] == e, xt.dtype) * r.gates[:, j]
                out = out + ts.reshape(m, (-1, 1)) * self.experts.dense(xt, e)
        return ts.reshape(out, x.shape)

    def extra_repr(self):
        return (f"d_model={self.d_model}, d_hidden={self.d_hidden}, num_experts={self.num_experts}, "
                f"k={self.k}, capacity_factor={self.capacity_factor}, noisy={self.noisy}")


class HierarchicalRouter(Module):
    """A recursive router: level 0 picks k[0] of branching[0] groups, level l picks
    k[l] of the branching[l] children of each chosen node, so a leaf (expert) is a
    path and its gate the product of the gates along it (expert within expert).
    Leaf e = ((i0 * b1 + i1) * b2 + i2) ...; `probs` (T, E) is the full leaf
    distribution (the product of each level's softmax), used by the balancing loss.

    >>> import tessera as ts
    >>> r = ts.nn.HierarchicalRouter(4, branching=(2, 3), k=(1, 2))(ts.ones((5, 4)))
    >>> r.experts.shape, r.probs.shape
    ((5, 2), (5, 6))
    """

    def __init__(self, d_model, branching=(2, 4), k=(1, 2), normalize=True, dtype="fp32",
                 device=None, generator=None):
        super().__init__()
        if len(branching) != len(k) or not branching:
            raise ShapeError(f"[HierarchicalRouter] branching {tuple(branching)} and k {tuple(k)} "
                             "need one entry per level")
        for b, kk in zip(branching, k):
            if not isinstance(kk, int) or not 1 <= kk <= b:
                raise ShapeError(f"[HierarchicalRouter] k={tuple(k)} must satisfy 1 <= k[l] <= "
                                 f"branching[l] = {tuple(branching)}")
        self.branching, self.k, self.normalize = tuple(branching), tuple(k), normalize
        self.num_experts = math.prod(branching)
        g = _gen(generator, device)
        nodes = 1
        for lvl, b in enumerate(branching):
            nodes *= b  # level l scores every child of every node above it
            setattr(self, f"w{lvl}", _uniform(g, (d_model, nodes), d_model, dtype, device))

    def forward(self, x):
        ts = _ts()
        T = x.shape[0]
        parent = ts.zeros((T, 1), dtype="int64", device=x.device)   # chosen nodes so far
        gate = ts.ones((T, 1), dtype=x.dtype, device=x.device)
        full = ts.ones((T, 1), dtype=x.dtype, device=x.device)      # marginal over all nodes
        n_par = 1
        for lvl, (b, kk) in enumerate(zip(self.branching, self.k)):
            logits = ts.reshape(ts.matmul(x, getattr(self, f"w{lvl}")), (T, n_par, b))
            pr = ts.softmax(logits, axis=-1)                         # (T, parents, b)
            full = ts.reshape(ts.reshape(full, (T, n_par, 1)) * pr, (T, n_par * b))
            kp = parent.shape[1]
            sel = ts.take_along_axis(pr, ts.broadcast_to(ts.reshape(parent, (T, kp, 1)), (T, kp, b)),
                                     axis=1)                           # (T, kp, b)
            g2, i2 = ts.topk(sel, kk, axis=-1)
            if self.normalize and kk > 1:
                g2 = g2 / ts.sum(g2, axis=-1, keepdims=True)
            parent = ts.reshape(ts.reshape(parent, (T, kp, 1)) * b + i2, (T, kp * kk))
            gate = ts.reshape(ts.reshape(gate, (T, kp, 1)) * g2, (T, kp * kk))
            n_par *= b
        return M.Routing(gate, parent, full, None)


class HierarchicalMoE(_RoutedLayer):
    """`MoE` whose router is a `HierarchicalRouter`: prod(branching) experts, each
    token reaching prod(k) of them through nested choices."""

    def __init__(self, d_model, d_hidden, branching=(2, 4), k=(1, 2), capacity_factor=1.25,
                 activation="gelu", warn_dropped=False, dtype="fp32", device=None, generator=None):
        super().__init__()
        g = _gen(generator, device)
        self.router = HierarchicalRouter(d_model, branching, k, dtype=dtype, device=device, generator=g)
        self.d_model, self.d_hidden = d_model, d_hidden
        self.num_experts, self.k = self.router.num_experts, math.prod(k)
        self.capacity_factor, self.warn_dropped = capacity_factor, warn_dropped
        self.experts = _Experts(self.num_experts, d_model, d_hidden, activation, dtype, device, g)
        self.aux_loss, self.stats = None, {}

    def route(self, xt):
        return self.router(xt)

    def run_experts(self, xs, p):
        return self.experts(xs, p)


class SpectralMoE(MoE):
    """Experts that are spectral operators, each owning a band of frequencies.

    A token is a signal of length n = d_model. Its rfft modes 0..E*b-1 are split
    into E bands of b = (n//2+1) // E modes; expert e is a learnable real-linear
    map of band e's coefficients (a (2b, 2b) matrix on [Re, Im]). The router
    sends each token to k experts; the output is irfft of the gate-weighted bands
    the chosen experts produced (bands nobody was routed to are 0, modes past
    E*b are cut, as an FNO truncates). Dispatch gathers the (token, band) rows;
    all experts run in one grouped matmul.

    >>> import tessera as ts
    >>> ts.nn.SpectralMoE(16, num_experts=3, k=2)(ts.ones((4, 16))).shape
    (4, 16)
    """

    def __init__(self, d_model, num_experts, k=1, capacity_factor=None, noisy=False,
                 warn_dropped=False, dtype="fp32", device=None, generator=None):
        _RoutedLayer.__init__(self)
        self._check_k(k, num_experts)
        self.band = (d_model // 2 + 1) // num_experts
        if self.band < 1:
            raise ShapeError(f"[SpectralMoE] {num_experts} experts cannot split the "
                             f"{d_model // 2 + 1} rfft modes of length {d_model}")
        self.d_model, self.num_experts, self.k = d_model, num_experts, k
        self.capacity_factor, self.noisy, self.normalize = capacity_factor, noisy, True
        self.warn_dropped, self._gen = warn_dropped, generator
        g = _gen(generator, device)
        self.w_gate = _uniform(g, (d_model, num_experts), d_model, dtype, device)
        if noisy:
            self.w_noise = _uniform(g, (d_model, num_experts), d_model, dtype, device)
        b2 = 2 * self.band
        eye = _ts().reshape(_ts().eye(b2, dtype=dtype), (1, b2, b2))
        self.w = Parameter((eye + g.uniform((num_experts, b2, b2), -0.1, 0.1, dtype=dtype)).to(device))
        self.aux_loss, self.stats = None, {}

    def _bands(self, xt):
        """(T, E, 2b): each band's [Re, Im] coefficients."""
        ts = _ts()
        E, b = self.num_experts, self.band
        X = ts.fft.rfft(xt, axis=-1)[:, :E * b]
        X = ts.reshape(X, (xt.shape[0], E, b))
        return ts.concat([ts.real(X), ts.imag(X)], axis=-1)

    def dispatch(self, xt, p):
        ts = _ts()
        feats = ts.reshape(self._bands(xt), (-1, 2 * self.band))
        return ts.take(feats, p.token * self.num_experts + p.expert, axis=0)

    def run_experts(self, xs, p):
        return M.grouped_matmul(xs, self.w, p.offsets)

    def combine(self, y, gates, p):
        ts = _ts()
        T, E, b = p.num_tokens, self.num_experts, self.band
        w = ts.take(ts.reshape(gates, (-1,)), p.assign) * ts.astype(p.kept, gates.dtype)
        out = ts.zeros((T * E, 2 * b), dtype=y.dtype, device=y.device)
        out = ts.index_add(out, p.token * E + p.expert, y * ts.reshape(w, (-1, 1)))
        out = ts.reshape(out, (T, E, 2 * b))
        spec = ts.reshape(ts.make_complex(out[..., :b], out[..., b:]), (T, E * b))
        spec = ts.pad(spec, [(0, 0), (0, self.d_model // 2 + 1 - E * b)])
        return ts.fft.irfft(spec, n=self.d_model, axis=-1)

    def dense_reference(self, x):
        """Per token: irfft of sum_j gate_j * (band e_j mapped by expert e_j)."""
        ts = _ts()
        xt = ts.reshape(x, (-1, self.d_model))
        r = M.route(xt, self.w_gate, self.k)
        bands = self._bands(xt)                                    # (T, E, 2b)
        mapped = ts.einsum("tei,eio->teo", bands, self.w)          # every expert on its band
        T, E, b = xt.shape[0], self.num_experts, self.band
        sel = ts.zeros((T, E), dtype=xt.dtype, device=xt.device)
        for j in range(self.k):
            for e in range(E):
                m = ts.astype(r.experts[:, j] == e, xt.dtype) * r.gates[:, j]
                sel = sel + ts.reshape(m, (-1, 1)) * ts.astype(ts.arange(E) == e, xt.dtype)
        out = mapped * ts.reshape(sel, (T, E, 1))
        spec = ts.reshape(ts.make_complex(out[..., :b], out[..., b:]), (T, E * b))
        spec = ts.pad(spec, [(0, 0), (0, self.d_model // 2 + 1 - E * b)])
        return ts.reshape(ts.fft.irfft(spec, n=self.d_model, axis=-1), x.shape)
