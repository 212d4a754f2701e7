"""`HODLR`: a hierarchical off-diagonal low-rank operator (the simplest H-matrix).

H_n = [[H_{n/2},  U0 V0^T],
       [U1 V1^T,  H'_{n/2}]]     down to dense leaf blocks,

so a matvec costs O(n r log n) instead of O(n^2). The adjoint comes from the
same recursion: H^H = [[H^H_{n/2}, conj(V1) U1^H], [conj(V0) U0^H, H'^H_{n/2}]].
The recursion is evaluated a depth at a time (every node of a level in one
batched einsum). Factors are tensors that require grad (learnable), or come from
a matrix by truncated SVD of each off-diagonal block (`HODLR.from_dense`).

>>> import numpy as np, tessera as ts
>>> from tessera.recursive import HODLR
>>> i = np.arange(16.0)
>>> K = 1.0 / (1.0 + np.abs(i[:, None] - i[None, :]))
>>> H = HODLR.from_dense(ts.asarray(K), rank=3, leaf=4)
>>> bool(np.abs(H.to_dense().numpy() - K).max() < 1e-3)
True
"""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..linop.base import LinearOperator

__all__ = ["HODLR"]


def _ts():
    import tessera
    return tessera


class HODLR(LinearOperator):
    """Hierarchical low-rank operator on vectors of length n = leaf * 2^L with
    off-diagonal rank `rank`. Tensors: `leaves` (2^L, leaf, leaf) and, per level l,
    `u{l}`, `v{l}` of shape (2^l, 2, n/2^(l+1), rank) (index 0: the upper-right
    block, mapping the bottom half to the top; 1: the lower-left one)."""

    def __init__(self, n, rank, leaf, dtype="fp32", device=None, seed=0, tensors=None):
        ts = _ts()
        if leaf < 1 or n % leaf or (n // leaf) & (n // leaf - 1):
            raise ShapeError(f"[HODLR] n={n} must be leaf * 2^L (leaf={leaf})")
        L = (n // leaf).bit_length() - 1
        if L and not 1 <= rank <= n >> L:
            raise ShapeError(f"[HODLR] rank={rank} must be in 1..{n >> L} (the smallest "
                             f"off-diagonal block of n={n}, leaf={leaf})")
        self.n, self.rank, self.leaf, self.levels = n, rank, leaf, L
        if tensors is None:
            rng = np.random.default_rng(seed)
            s = 1.0 / np.sqrt(leaf)
            tensors = {"leaves": rng.standard_normal((1 << L, leaf, leaf)) * s}
            for lvl in range(L):
                m = n >> (lvl + 1)
                for nm in "uv":
                    tensors[f"{nm}{lvl}"] = rng.standard_normal((1 << lvl, 2, m, rank)) / np.sqrt(m)
            tensors = {k: ts.asarray(v, dtype=dtype, device=device, requires_grad=True)
                       for k, v in tensors.items()}
        for k, v in tensors.items():
            setattr(self, k, v)
        self._tensor_attrs = tuple(tensors)
        super().__init__((n,), (n,), tensors["leaves"].dtype)

    @classmethod
    def from_dense(cls, M, rank, leaf):
        """Compress the (n, n) tensor M: each off-diagonal block by its rank-`rank`
        truncated SVD (U S^1/2, V S^1/2), the diagonal leaf blocks kept dense."""
        ts = _ts()
        A = M.numpy() if isinstance(M, ts.Tensor) else np.asarray(M)
        n = A.shape[0]
        if A.shape != (n, n):
            raise ShapeError(f"[HODLR.from_dense] needs a square matrix, got {A.shape}")
        if leaf < 1 or n % leaf or (n // leaf) & (n // leaf - 1) or (n > leaf and not 1 <= rank <= leaf):
            raise ShapeError(f"[HODLR.from_dense] n={n}, leaf={leaf}, rank={rank}: need n = leaf * 2^L "
                             f"and 1 <= rank <= leaf (the smallest off-diagonal block)")
        nb = n // leaf
        L = nb.bit_length() - 1
        t = {"leaves": np.stack([A[j * leaf:(j + 1) * leaf, j * leaf:(j + 1) * leaf] for j in range(nb)])}
        for lvl in range(L):
            m = n >> (lvl + 1)
            u = np.zeros((1 << lvl, 2, m, rank), dtype=A.dtype)
            v = np.zeros_like(u)
            for j in range(1 << lvl):
                o = j * 2 * m
                for side, (r0, c0) in enumerate(((o, o + m), (o + m, o))):
                    W, S, Vh = np.linalg.svd(A[r0:r0 + m, c0:c0 + m])
                    sq = np.sqrt(S[:rank])
                    u[j, side], v[j, side] = W[:, :rank] * sq, Vh[:rank].T * sq
            t[f"u{lvl}"], t[f"v{lvl}"] = u, v
        dev = M.device if isinstance(M, ts.Tensor) else None
        dt = M.dtype.name if isinstance(M, ts.Tensor) else "fp64"
        return cls(n, rank, leaf, tensors={k: ts.asarray(v, dtype=dt, device=dev) for k, v in t.items()})

    def apply(self, x, adjoint=False):
        """H x (or H^H x) along the last axis of x (..., n)."""
        ts = _ts()
        if x.shape[-1:] != (self.n,):
            raise ShapeError(f"[HODLR] input {x.shape}: last dimension must be n={self.n}")
        n, lead = self.n, x.shape[:-1]
        cj = ts.conj if (x.dtype.kind == "c" or self.dtype.kind == "c") else (lambda t: t)
        xl = ts.reshape(x, lead + (1 << self.levels, self.leaf))
        lv = cj(self.leaves) if adjoint else self.leaves
        y = ts.reshape(ts.einsum("...ja,jab->...jb" if adjoint else "...ja,jba->...jb", xl, lv),
                       lead + (n,))
        for lvl in range(self.levels):   # every node at this depth of the recursion at once
            m = n >> (lvl + 1)
            xr = ts.reshape(x, lead + (1 << lvl, 2, m))
            top, bot = xr[..., 0, :], xr[..., 1, :]
            U, V = getattr(self, f"u{lvl}"), getattr(self, f"v{lvl}")
            if adjoint:
                U, V = cj(V), cj(U)      # (U V^T)^H = conj(V) U^H
                # block 0 (top-right, bot -> top) becomes bot <- top, and vice versa
                src = (top, bot)
            else:
                src = (bot, top)
            lr = [ts.einsum("...jr,jmr->...jm", ts.einsum("...jm,jmr->...jr", src[s], V[:, s]), U[:, s])
                  for s in (0, 1)]
            # forward: top gets block 0 applied to bot, bot gets block 1 applied to top;
            # adjoint: bot gets block 0^H applied to top, top gets block 1^H applied to bot
            pair = (lr[0], lr[1]) if not adjoint else (lr[1], lr[0])
            y = y + ts.reshape(ts.stack(pair, axis=-2), lead + (n,))
        return y

    def _matvec(self, x):
        return self.apply(x)

    def _rmatvec(self, y):
        return self.apply(y, adjoint=True)

    def _default_name(self):
        return f"HODLR({self.n}, rank={self.rank}, leaf={self.leaf})"
