"""Function transforms in the JAX style, built on the tape: `grad(f)` returns a
function computing the gradient of `f`, `vjp`/`jvp` give vector-Jacobian and
Jacobian-vector products, `hessian_vector_product` and `jacobian` build on them.

Each call runs `f` on fresh tape inputs and asks `engine.grad` (PyTorch style:
outputs, inputs) for the gradient. Transforms nest (`grad(grad(f))`): when an
argument is itself on an outer tape (it requires grad), or `f` closes over
tensors that do, the gradient is built with `create_graph=True` so the outer
transform can differentiate it again; otherwise results come back detached.

>>> import tessera as ts
>>> df = ts.grad(lambda x: (x * x * x).sum())
>>> df(ts.asarray([1.0, 2.0])).tolist()
[3.0, 12.0]
>>> ts.grad(ts.grad(lambda x: x * x * x))(2.0).item()
12.0
"""
from __future__ import annotations

from .._config import STATE
from ..errors import GradError
from ..tensor import Tensor
from . import engine
from .grad_mode import _GradMode

__all__ = ["grad", "value_and_grad", "vjp", "jvp", "hessian_vector_product", "hvp",
           "jacobian"]


# -- plumbing -----------------------------------------------------------------
def _as_tensor(op, x):
    from ..ops.creation import asarray
    t = x if type(x) is Tensor else asarray(float(x) if isinstance(x, int) else x)
    if not t.dtype.is_differentiable:
        raise GradError(f"[{op}] can only differentiate with respect to floating or complex "
                        f"inputs; got {t.dtype.name} (shape {t.shape}). Cast it first.")
    return t


def _fresh(x):
    """A tape input standing for `x`: a new leaf when `x` is off the tape, else an
    identity node on top of `x`, so gradients w.r.t. it are exactly those flowing
    through this call (and still reach the outer tape through x)."""
    t = x.detach()
    if x.requires_grad and STATE.grad_enabled:
        engine.record("identity", (x,), t, lambda g: (g,))
    else:
        t.requires_grad = True
    return t


def _tensors(out):
    return [o for o in (out if isinstance(out, (tuple, list)) else (out,)) if type(o) is Tensor]


def _reaches_outside(outs, inner):
    """Whether the tape behind `outs` reaches a leaf other than the `inner` ones
    (f closed over a tensor that requires grad: an outer transform may need us)."""
    from .engine import AccumulateGrad, Node
    inner_ids = {id(t) for t in inner}
    seen, stack = set(), [o.grad_fn for o in outs if o.grad_fn is not None]
    for o in outs:
        if o.grad_fn is None and o.requires_grad and id(o) not in inner_ids:
            return True
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if type(n) is Node:
            for e in n.next:
                if e is not None:
                    if type(e[0]) is AccumulateGrad:
                        if id(e[0].leaf) not in inner_ids:
                            return True
                    else:
                        stack.append(e[0])
    return False


def _detach_tree(x):
    if type(x) is Tensor:
        return x.detach() if x.requires_grad else x
    if isinstance(x, tuple):
        return tuple(_detach_tree(v) for v in x)
    if isinstance(x, list):
        return [_detach_tree(v) for v in x]
    if isinstance(x, dict):
        return {k: _detach_tree(v) for k, v in x.items()}
    return x


class _Trace:
    """One run of `f` on fresh tape inputs: `args` (with the differentiated ones
    replaced), `inputs` (those tape inputs), `create_graph` (whether results must
    stay on an outer tape), and `out`/`aux` after `run`."""

    def __init__(self, op, f, args, argnums):
        self.op, self.f = op, f
        self.outer = STATE.grad_enabled
        args = list(args)
        self.inputs = []
        self.on_outer = False  # an argument is on an outer tape
        for i in argnums:
            if not -len(args) <= i < len(args):
                raise GradError(f"[{op}] argnums {i} is out of range for {len(args)} "
                                "positional argument(s)")
            x = _as_tensor(op, args[i])
            self.on_outer = self.on_outer or (self.outer and x.requires_grad)
            args[i] = _fresh(x)
            self.inputs.append(args[i])
        self.args = args

    def run(self, has_aux=False, kwargs=None):
        with _GradMode(True):
            res = self.f(*self.args, **(kwargs or {}))
        if has_aux:
            if not (isinstance(res, (tuple, list)) and len(res) == 2):
                raise GradError(f"[{self.op}] has_aux=True expects f to return a pair "
                                f"(output, aux), got {type(res).__name__}")
            res, self.aux = res
        else:
            self.aux = None
        self.out = res
        outs = [o for o in _tensors(res) if o.requires_grad]
        self.create_graph = self.outer and (self.on_outer or _reaches_outside(outs, self.inputs))
        return res

    def grads(self, outputs, cotangents, create_graph=None, retain=True):
        """d<outputs, cotangents>/d(inputs), zeros for inputs the outputs do not use."""
        from ..ops.creation import zeros_like
        cg = self.create_graph if create_graph is None else create_graph
        pairs = [(o, c) for o, c in zip(outputs, cotangents) if o.requires_grad]
        if not pairs:
            res = [None] * len(self.inputs)
        else:
            with _GradMode(True):
                res = engine.grad([o for o, _ in pairs], self.inputs, [c for _, c in pairs],
                                  retain_graph=retain or cg, create_graph=cg, allow_unused=True)
            if type(res) is not tuple:
                res = (res,)
        return tuple(zeros_like(x.detach()) if g is None else g for x, g in zip(self.inputs, res))

    def finish(self, value):
        return value if self.create_graph else _detach_tree(value)


def _argnums(argnums):
    return ((argnums,), True) if isinstance(argnums, int) else (tuple(argnums), False)


def _scalar_output(op, out):
    if type(out) is not Tensor:
        raise GradError(f"[{op}] f must return a scalar tensor, got {type(out).__name__}")
    if out.size != 1:
        raise GradError(f"[{op}] f must return a scalar (one element) to take its gradient; "
                        f"it returned shape {out.shape}. Use vjp or jacobian for vector outputs.")
    return out


# -- the transforms -----------------------------------------------------------
def value_and_grad(f, argnums=0, has_aux=False):
    """`f -> (lambda *args: (f(*args), grad f(*args)))`, as `jax.value_and_grad`.
    With `has_aux`, f returns `(out, aux)` and the result is `((out, aux), grads)`.
    `argnums` an int gives one gradient, a tuple gives a tuple of gradients."""
    nums, single = _argnums(argnums)

    def value_and_grad_f(*args, **kwargs):
        tr = _Trace("value_and_grad", f, args, nums)
        out = _scalar_output("value_and_grad", tr.run(has_aux, kwargs))
        from ..ops.creation import ones_like
        gs = tr.grads([out], [ones_like(out.detach())])
        value = (tr.finish(out), tr.finish(tr.aux)) if has_aux else tr.finish(out)
        return value, (gs[0] if single else gs)
    value_and_grad_f.__name__ = f"value_and_grad_{getattr(f, '__name__', 'f')}"
    return value_and_grad_f


def grad(f, argnums=0, has_aux=False):
    """`f -> grad f`, as `jax.grad`: the returned function takes f's arguments
    and returns the gradient of f's scalar output w.r.t. argument(s) `argnums`
    (a tuple of gradients when `argnums` is a tuple); with `has_aux`, f returns
    `(out, aux)` and the result is `(grads, aux)`. Nests: `grad(grad(f))`.

    >>> import tessera as ts
    >>> ts.grad(lambda x, y: (x * y).sum(), argnums=(0, 1))(2.0, 3.0)[1].item()
    2.0
    """
    vg = value_and_grad(f, argnums, has_aux)

    def grad_f(*args, **kwargs):
        value, g = vg(*args, **kwargs)
        return (g, value[1]) if has_aux else g
    grad_f.__name__ = f"grad_{getattr(f, '__name__', 'f')}"
    return grad_f


def vjp(f, *primals, has_aux=False):
    """`(f(*primals), vjp_fn)` with `vjp_fn(cotangent) -> tuple of one gradient per
    primal` (u^T J), as `jax.vjp`. For several outputs pass a tuple of cotangents.
    `vjp_fn` may be called many times (the tape is kept)."""
    tr = _Trace("vjp", f, primals, range(len(primals)))
    out = tr.run(has_aux)
    outs = _tensors(out)

    def vjp_fn(cotangent):
        from ..ops.creation import asarray
        cts = cotangent if isinstance(cotangent, (tuple, list)) else (cotangent,)
        if len(cts) != len(outs):
            raise GradError(f"[vjp] got {len(cts)} cotangent(s) for {len(outs)} output(s)")
        cts = [c if type(c) is Tensor else asarray(c, dtype=o.dtype, device=o.device)
               for c, o in zip(cts, outs)]
        for c, o in zip(cts, outs):
            if c.shape != o.shape:
                from ..errors import ShapeError
                raise ShapeError(f"[vjp] cotangent shape {c.shape} does not match the "
                                 f"output shape {o.shape}")
        return tr.grads(outs, cts)
    value = tr.finish(out)
    return (value, vjp_fn, tr.finish(tr.aux)) if has_aux else (value, vjp_fn)


def jvp(f, primals, tangents):
    """`(f(*primals), J @ tangents)`, as `jax.jvp`, by the double-VJP trick: with u
    a dummy cotangent, g(u) = J^T u is linear in u, and d<g(u), v>/du = J v."""
    from ..ops.creation import asarray, zeros_like
    from ..ops.reduce import sum as _sum
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise GradError(f"[jvp] {len(primals)} primal(s) but {len(tangents)} tangent(s)")
    tr = _Trace("jvp", f, primals, range(len(primals)))
    out = tr.run()
    outs = _tensors(out)
    vs = []
    for x, v in zip(tr.inputs, tangents):
        v = v if type(v) is Tensor else asarray(v, dtype=x.dtype, device=x.device)
        if v.shape != x.shape:
            from ..errors import ShapeError
            raise ShapeError(f"[jvp] tangent shape {v.shape} does not match the primal "
                             f"shape {x.shape}")
        vs.append(v)
    us = [zeros_like(o.detach()).requires_grad_(True) for o in outs]
    with _GradMode(True):
        gs = tr.grads(outs, us, create_graph=True)
        inner = None
        for g, v in zip(gs, vs):
            if g.requires_grad:
                term = _sum(g * v)
                inner = term if inner is None else inner + term
    if inner is None:
        touts = [zeros_like(o.detach()) for o in outs]
    else:
        with _GradMode(True):
            res = engine.grad(inner, us, retain_graph=tr.create_graph,
                              create_graph=tr.create_graph, allow_unused=True)
        res = res if type(res) is tuple else (res,)
        touts = [zeros_like(o.detach()) if t is None else t for t, o in zip(res, outs)]
    tout = touts[0] if type(out) is Tensor else type(out)(touts)
    return tr.finish(out), tr.finish(tout)


def hessian_vector_product(f, x, v):
    """H v with H the Hessian of scalar `f` at `x`: the gradient of <grad f(x), v>
    (reverse over reverse). Costs about two backward passes, never forms H."""
    from ..ops.creation import asarray
    from ..ops.reduce import sum as _sum
    tr = _Trace("hessian_vector_product", f, (x,), (0,))
    out = _scalar_output("hessian_vector_product", tr.run())
    xi = tr.inputs[0]
    v = v if type(v) is Tensor else asarray(v, dtype=xi.dtype, device=xi.device)
    if v.shape != xi.shape:
        from ..errors import ShapeError
        raise ShapeError(f"[hessian_vector_product] v has shape {v.shape}, x has {xi.shape}")
    from ..ops.creation import ones_like
    (g,) = tr.grads([out], [ones_like(out.detach())], create_graph=True)
    with _GradMode(True):
        s = _sum(g * v)
    (hv,) = tr.grads([s], [ones_like(s.detach())])
    return tr.finish(hv)


hvp = hessian_vector_product


def jacobian(f, x):
    """The Jacobian of `f` at `x`, shape `out.shape + x.shape` (a tuple of them
    when `x` is a tuple), built row by row from vector-Jacobian products, as
    `torch.autograd.functional.jacobian`."""
    from ..ops.creation import zeros
    from ..ops.movement import reshape
    xs = tuple(x) if isinstance(x, (tuple, list)) else (x,)
    tr = _Trace("jacobian", f, xs, range(len(xs)))
    out = tr.run()
    if type(out) is not Tensor:
        raise GradError(f"[jacobian] f must return one tensor, got {type(out).__name__}")
    m = out.size
    rows = [[] for _ in xs]
    flat = reshape(out, (m,)) if out.requires_grad else out
    for i in range(m):
        e = zeros((m,), dtype=out.dtype, device=out.device)
        e[i] = 1.0
        gs = tr.grads([flat], [e])
        for k, g in enumerate(gs):
            rows[k].append(g)
    jacs = tuple(reshape(_stack(r, xi), out.shape + xi.shape) for r, xi in zip(rows, tr.inputs))
    jacs = tr.finish(jacs)
    return jacs if isinstance(x, (tuple, list)) else jacs[0]


def _stack(rows, like):
    """Stack equal-shaped tensors along a new axis 0, differentiably (uses
    `tessera.stack` when present, else a sum of one-hot outer products)."""
    import tessera as ts
    if hasattr(ts, "stack"):
        return ts.stack(rows, axis=0)
    from ..ops.creation import zeros
    from ..ops.movement import expand_dims, reshape
    m = len(rows)
    out = None
    for i, r in enumerate(rows):
        e = zeros((m,), dtype=like.dtype, device=like.device)
        e[i] = 1.0
        term = reshape(e, (m,) + (1,) * r.ndim) * expand_dims(r, 0)
        out = term if out is None else out + term
    return out
