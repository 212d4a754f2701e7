"""Autodiff across the PyTorch boundary, both ways.

`torch_function(fn)` turns a tessera function into a `torch.autograd.Function`:
torch tensors go in as zero-copy tessera views, `fn` runs on tessera's tape, and
torch's backward runs tessera's reverse sweep for the cotangents torch hands it
(tessera parameters that `fn` closes over get their `.grad`).
`from_torch_function(fn)` is the mirror image: a PyTorch function called on
tessera tensors puts one node on tessera's tape whose adjoint is
`torch.autograd.backward` over the graph torch recorded in the forward pass
(torch parameters inside `fn` get their `.grad`).

Both are first-order: the adjoint on the other side is a black box, so the
gradient they produce cannot be differentiated again (torch raises for
`create_graph=True` through a `torch_function`; tessera treats the torch
adjoint as a constant).

Memory is shared, not copied, so in-place writes are checked as each side
checks its own: torch's version counters guard the inputs of a
`torch_function`, tessera's guard those of a `from_torch_function`.

>>> import torch, tessera as ts
>>> from tessera import interop
>>> sq = interop.torch_function(lambda x: (x * x).sum())
>>> t = torch.tensor([1.0, 2.0], requires_grad=True)
>>> sq(t).backward(); t.grad.tolist()
[2.0, 4.0]
"""
from __future__ import annotations

import functools

from ..errors import DTypeError
from ..tensor import Tensor
from ._optional import require
from .torch import from_torch, to_torch


def _as_tuple(out, op):
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return tuple(outs), not isinstance(out, (tuple, list))


def torch_function(fn, name=None):
    """Wrap tessera function `fn(*tensors) -> tensor or tuple of tensors` so that
    PyTorch can call and differentiate it. Non-tensor arguments pass through.

    >>> import torch
    >>> from tessera import interop, tanh
    >>> f = interop.torch_function(tanh)
    >>> x = torch.zeros(2, requires_grad=True)
    >>> f(x).sum().backward(); x.grad.tolist()
    [1.0, 1.0]
    """
    torch = require("torch", "torch_function")
    from ..autograd.engine import backward as ts_backward
    from ..autograd.grad_mode import enable_grad
    from torch.autograd.function import once_differentiable
    op = name or getattr(fn, "__name__", "fn")

    class TesseraFunction(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *args):
            ts_args, diff = [], []
            for i, a in enumerate(args):
                if isinstance(a, torch.Tensor):
                    x = from_torch(a)
                    if a.requires_grad and x.dtype.is_differentiable:
                        x = x.detach().requires_grad_(True)
                        diff.append(i)
                    ts_args.append(x)
                else:
                    ts_args.append(a)
            with enable_grad():
                outs, single = _as_tuple(fn(*ts_args), op)
            for o in outs:
                if not isinstance(o, Tensor):
                    raise DTypeError(f"[torch_function] {op} returned a {type(o).__name__}; it must "
                                     "return tessera tensors (or a tuple of them)")
            ctx.ts_args, ctx.ts_outs, ctx.diff, ctx.single = ts_args, outs, diff, single
            # torch checks these for in-place writes when backward reads them
            ctx.save_for_backward(*(a for a in args if isinstance(a, torch.Tensor)))
            res = tuple(to_torch(o.detach()) for o in outs)
            ctx.mark_non_differentiable(*(r for r, o in zip(res, outs) if not o.dtype.is_differentiable))
            return res[0] if single else res

        @staticmethod
        @once_differentiable
        def backward(ctx, *grads):
            ctx.saved_tensors  # noqa: B018 - raises if an input was modified in place
            pairs = [(o, from_torch(g)) for o, g in zip(ctx.ts_outs, grads)
                     if g is not None and o.requires_grad]
            out = [None] * len(ctx.ts_args)
            if not pairs:
                return tuple(out)
            # A full tessera backward, not grad(): tessera parameters closed over
            # by `fn` get their .grad as they would in an all-tessera model.
            # retain_graph: torch may call this backward again (gradcheck, its own
            # retain_graph); tessera's graph is freed with ctx, when torch frees its own.
            ts_backward([o for o, _ in pairs], [g for _, g in pairs], retain_graph=True)
            for i in ctx.diff:
                x = ctx.ts_args[i]
                out[i] = None if x.grad is None else to_torch(x.grad)
                x.grad = None
            return tuple(out)

    TesseraFunction.__name__ = TesseraFunction.__qualname__ = f"TesseraFunction_{op}"

    @functools.wraps(fn)
    def call(*args):
        return TesseraFunction.apply(*args)
    call.autograd_function = TesseraFunction
    return call


def from_torch_function(fn, name=None):
    """Wrap PyTorch function `fn(*torch_tensors) -> tensor or tuple` so that it
    takes tessera tensors and sits on tessera's tape as one op named
    `torch:<name>` (its adjoint runs `torch.autograd.backward`).

    >>> import torch, tessera as ts
    >>> from tessera import interop
    >>> f = interop.from_torch_function(torch.sin)
    >>> x = ts.asarray([0.0], requires_grad=True)
    >>> f(x).sum().backward(); x.grad.tolist()
    [1.0]
    """
    torch = require("torch", "from_torch_function")
    from ..autograd.engine import needs_grad, record
    op = f"torch:{name or getattr(fn, '__name__', 'fn')}"

    @functools.wraps(fn)
    def call(*args):
        inputs = [a for a in args if isinstance(a, Tensor)]
        track = needs_grad(*inputs)
        t_args = []
        for a in args:
            if isinstance(a, Tensor):
                t = to_torch(a.detach())
                if track and a.requires_grad:
                    t = t.detach().requires_grad_(True)
                t_args.append(t)
            else:
                t_args.append(a)
        with torch.enable_grad() if track else torch.no_grad():
            touts, single = _as_tuple(fn(*t_args), op)
        for o in touts:
            if not isinstance(o, torch.Tensor):
                raise DTypeError(f"[from_torch_function] {op} returned a {type(o).__name__}; it "
                                 "must return torch tensors (or a tuple of them)")
        outs = tuple(from_torch(o) for o in touts)
        if track and any(o.requires_grad for o in touts):
            t_in = [t_args[i] for i, a in enumerate(args) if isinstance(a, Tensor)]

            def vjp(*gs):
                sel = [(o, to_torch(g.detach())) for o, g in zip(touts, gs) if o.requires_grad]
                # backward, not grad(): torch parameters inside `fn` accumulate .grad
                # as in an all-torch model; retain_graph because tessera may run this
                # adjoint again (retain_graph on its side).
                torch.autograd.backward([o for o, _ in sel], [g for _, g in sel],
                                        retain_graph=True)
                res = []
                for t in t_in:
                    g = t.grad if t.requires_grad else None
                    t.grad = None
                    res.append(None if g is None else from_torch(g))
                return tuple(res)

            record(op, inputs, outs[0] if single else outs, vjp,
                   saved=tuple(a.detach() for a in inputs))
        return outs[0] if single else outs
    return call
