"""einsum, and the diagonal / trace it needs for repeated indices.

`einsum` is written entirely in tessera ops, so its gradient (and the gradient
of that) comes from the ops it is made of: `diagonal` for an index repeated
within one operand, `sum` for an index no other operand or the output needs,
and `matmul` for each pairwise contraction (operands permuted and reshaped to
(batch, free, contracted) x (batch, contracted, free)). Pairs are contracted
greedily, smallest intermediate first.

`diagonal` is the one primitive here; its adjoint writes the gradient onto the
diagonal of a zero tensor (`_diagonal_embed`), whose adjoint is `diagonal`.
"""
from __future__ import annotations

import string

from .. import dtypes as _dt
from .._config import STATE
from ..errors import ShapeError
from ._dispatch import apply_op, norm_axis, prod, same_device, to_tensor
from .movement import broadcast_to, permute_dims, reshape

__all__ = ["einsum", "diagonal", "trace"]


def diagonal(x, offset=0, axis1=-2, axis2=-1):
    """The diagonal over `axis1`/`axis2`, appended as the last axis, as
    `numpy.diagonal` (whose defaults are the Array API's `linalg.diagonal`:
    the last two axes). `offset` > 0 is above the main diagonal."""
    x = to_tensor("diagonal", x)
    if x.ndim < 2:
        raise ShapeError(f"[diagonal] needs at least 2 dimensions, got shape {x.shape}")
    a1 = norm_axis("diagonal", axis1, x.ndim, allow_none=False)
    a2 = norm_axis("diagonal", axis2, x.ndim, allow_none=False)
    if a1 == a2:
        raise ShapeError(f"[diagonal] axis1 and axis2 are the same axis {a1} (shape {x.shape})")
    offset = int(offset)
    xp = x.device.backend.xp
    shape = x.shape
    return apply_op("diagonal", (x,), lambda b: xp.diagonal(b, offset, a1, a2), x.dtype,
                    x.device, lambda g: (_diagonal_embed(g, shape, offset, a1, a2),),
                    view_of=x)


def _diagonal_embed(g, shape, offset, a1, a2):
    """zeros(shape) with `g` (diagonal last) written on the (a1, a2) diagonal."""
    b, dt = g.device.backend, g.dtype
    xp = b.xp

    def fwd(gb):
        out = b.zeros(shape, dt)
        r = xp.arange(gb.shape[-1])
        # moveaxis gives a writeable view, so this writes into `out`.
        xp.moveaxis(out, (a1, a2), (-2, -1))[..., r + max(-offset, 0), r + max(offset, 0)] = gb
        return out
    return apply_op("diagonal_embed", (g,), fwd, dt, g.device,
                    lambda gg: (diagonal(gg, offset, a1, a2),), shape=shape)


def trace(x, offset=0, axis1=-2, axis2=-1, *, dtype=None):
    """Sum of the diagonal, as the Array API `linalg.trace` (last two axes by
    default; `axis1`/`axis2` as `numpy.trace`)."""
    from .reduce import sum
    return sum(diagonal(x, offset, axis1, axis2), axis=-1, dtype=dtype)


# ---- einsum ------------------------------------------------------------------
_LETTERS = frozenset(string.ascii_letters)


def _parse_term(term, ndim, subscripts, i):
    """Labels of one operand: letters, and -k..-1 for its k ellipsis dimensions
    (right-aligned, so ellipsis dimensions broadcast as NumPy's do)."""
    bad = set(term.replace("...", "")) - _LETTERS
    if bad or term.count("...") > 1 or ("." in term.replace("...", "")):
        raise ShapeError(f"[einsum] invalid subscripts {term!r} in {subscripts!r}: use letters "
                         "and at most one '...'")
    if "..." not in term:
        if len(term) != ndim:
            raise ShapeError(f"[einsum] operand {i} has {ndim} dimension(s) but subscripts "
                             f"{term!r} name {len(term)} in {subscripts!r}")
        return list(term)
    head, tail = term.split("...")
    k = ndim - len(head) - len(tail)
    if k < 0:
        raise ShapeError(f"[einsum] operand {i} has {ndim} dimension(s), fewer than subscripts "
                         f"{term!r} name in {subscripts!r}")
    return list(head) + list(range(-k, 0)) + list(tail)


def _parse(subscripts, ops):
    s = subscripts.replace(" ", "")
    if s.count("->") > 1:
        raise ShapeError(f"[einsum] subscripts {subscripts!r} have more than one '->'")
    lhs, arrow, rhs = s.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ops):
        raise ShapeError(f"[einsum] subscripts {subscripts!r} name {len(terms)} operand(s), "
                         f"got {len(ops)}")
    labels = [_parse_term(t, o.ndim, subscripts, i) for i, (t, o) in enumerate(zip(terms, ops))]
    n_ell = max(sum(1 for l in ls if isinstance(l, int)) for ls in labels)
    ell = list(range(-n_ell, 0))
    if not arrow:
        counts = {}
        for ls in labels:
            for l in ls:
                if isinstance(l, str):
                    counts[l] = counts.get(l, 0) + 1
        return labels, ell + sorted(l for l, c in counts.items() if c == 1)
    if set(rhs.replace("...", "")) - _LETTERS or rhs.count("...") > 1 or \
            "." in rhs.replace("...", ""):
        raise ShapeError(f"[einsum] invalid output subscripts {rhs!r} in {subscripts!r}")
    if "..." in rhs:
        head, tail = rhs.split("...")
        out = list(head) + ell + list(tail)
    elif n_ell:
        raise ShapeError(f"[einsum] operands have '...' dimensions but the output {rhs!r} of "
                         f"{subscripts!r} has no '...' to put them in")
    else:
        out = list(rhs)
    seen = {l for ls in labels for l in ls}
    for l in out:
        if isinstance(l, str) and l not in seen:
            raise ShapeError(f"[einsum] output index {l!r} of {subscripts!r} is not in any input")
    if len(set(out)) != len(out):
        raise ShapeError(f"[einsum] output subscripts {rhs!r} of {subscripts!r} repeat an index")
    return labels, out


def _sizes(subscripts, ops, labels):
    """Size per label; a size of 1 broadcasts against any other, as in NumPy."""
    sizes = {}
    for i, (o, ls) in enumerate(zip(ops, labels)):
        own = {}
        for l, d in zip(ls, o.shape):
            if own.setdefault(l, d) != d:
                raise ShapeError(f"[einsum] index {l!r} is repeated in operand {i} (shape "
                                 f"{o.shape}) with different sizes {own[l]} and {d}")
            cur = sizes.setdefault(l, d)
            if d != cur and 1 not in (d, cur):
                name = repr(l) if isinstance(l, str) else "'...'"
                raise ShapeError(f"[einsum] index {name} of {subscripts!r} has size {cur} in one "
                                 f"operand and {d} in operand {i}; shapes: "
                                 + ", ".join(str(t.shape) for t in ops))
            if cur == 1:
                sizes[l] = d
    return sizes


def _take_diagonals(t, ls):
    """Replace each index repeated within one operand by its diagonal."""
    while len(set(ls)) != len(ls):
        l = next(l for l in ls if ls.count(l) > 1)
        i = ls.index(l)
        j = ls.index(l, i + 1)
        t = diagonal(t, 0, i, j)
        ls = [m for k, m in enumerate(ls) if k not in (i, j)] + [l]
    return t, ls


def _sum_out(t, ls, keep):
    from .reduce import sum
    axes = tuple(i for i, l in enumerate(ls) if l not in keep)
    if not axes:
        return t, ls
    return sum(t, axis=axes), [l for l in ls if l in keep]


def _aligned(t, ls, order, sizes):
    """`t` permuted to the label order `order`, shared labels broadcast to size."""
    t = permute_dims(t, tuple(ls.index(l) for l in order))
    want = tuple(sizes[l] for l in order)
    return broadcast_to(t, want) if t.shape != want else t


def _contract(a, la, b, lb, keep, sizes):
    """One pairwise contraction as a batched matmul."""
    a, la = _sum_out(a, la, keep | set(lb))
    b, lb = _sum_out(b, lb, keep | set(la))
    shared = [l for l in la if l in lb]
    batch = [l for l in shared if l in keep]
    con = [l for l in shared if l not in keep]
    fa = [l for l in la if l not in lb]
    fb = [l for l in lb if l not in la]
    from .linalg import matmul
    bs, m, n, k = (prod(sizes[l] for l in g) for g in (batch, fa, fb, con))
    am = reshape(_aligned(a, la, batch + fa + con, sizes), (bs, m, k))
    bm = reshape(_aligned(b, lb, batch + con + fb, sizes), (bs, k, n))
    r = matmul(am, bm)
    out = batch + fa + fb
    return reshape(r, tuple(sizes[l] for l in out)), out


def einsum(subscripts, *operands):
    """Einstein summation, as `numpy.einsum`: implicit ('ij,jk') and explicit
    ('ij,jk->ik') output, '...' broadcasting, repeated indices within an operand
    (diagonals: 'ii->i', 'ii'), size-1 dimensions broadcasting. Gradients of any
    order come from the ops it is written in.

    >>> import tessera as ts
    >>> ts.einsum("ij,jk->ik", ts.ones((2, 3)), ts.ones((3, 4))).shape
    (2, 4)
    """
    if not isinstance(subscripts, str):
        raise ShapeError(f"[einsum] subscripts must be a string such as 'ij,jk->ik', got "
                         f"{type(subscripts).__name__}")
    if not operands:
        raise ShapeError("[einsum] needs at least one operand")
    dev = same_device("einsum", *operands)
    ops = [to_tensor("einsum", o, device=dev) for o in operands]
    if STATE.autocast is not None:  # tessera.precision.autocast policy
        ops = list(STATE.autocast.cast_inputs("einsum", tuple(ops)))
    labels, out = _parse(subscripts, ops)
    sizes = _sizes(subscripts, ops, labels)
    dt = _dt.result_type(*(o.dtype for o in ops))
    if dt.kind == "b":  # bool einsum is any-of-all: count in int64, test != 0 at the end
        ops = [o.astype(_dt.int64) for o in ops]
    terms = [_take_diagonals(o, ls) for o, ls in zip(ops, labels)]
    outs = set(out)
    terms = [_sum_out(t, ls, outs | {l for j, (_, m) in enumerate(terms) if j != i for l in m})
             for i, (t, ls) in enumerate(terms)]
    while len(terms) > 1:
        best = None
        for i in range(len(terms)):
            for j in range(i + 1, len(terms)):
                keep = outs | {l for k, (_, m) in enumerate(terms) if k not in (i, j) for l in m}
                res = [l for l in dict.fromkeys(terms[i][1] + terms[j][1]) if l in keep]
                cost = prod(sizes[l] for l in res)
                if best is None or cost < best[0]:
                    best = (cost, i, j, keep)
        _, i, j, keep = best
        (a, la), (b, lb) = terms[i], terms[j]
        terms = [t for k, t in enumerate(terms) if k not in (i, j)] + \
            [_contract(a, la, b, lb, keep, sizes)]
    t, ls = _sum_out(*terms[0], outs)
    if ls != out:
        t = permute_dims(t, tuple(ls.index(l) for l in out))
    if dt.kind == "b":
        return t != 0
    return t if t.dtype is dt else t.astype(dt)
