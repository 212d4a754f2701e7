"""`Optimizer`: parameter groups, per-parameter state and the state-dict format
shared by the optimizers, as `torch.optim.Optimizer`.

A subclass implements `_update(group, p, g, state)` (the per-op update, in
tessera ops) and may implement `_fused_update(...)` (the same update on the
buffers, bit for bit; returns False where it cannot run); `step()` calls one of
them for every parameter that has a gradient, under `no_grad`. Updates write
into the parameter's storage in place (so views and modules holding it see the
change) and bump its version counter, so a stale tape that saved the old value
fails at backward instead of giving a wrong gradient.

The fused fast path (`fused=None`, the default, or `True`) runs only while
nothing listens to ops (graph capture, the profiler, `check_numerics`) and no
autocast policy is active, on devices and dtypes it supports (CPU fp32/fp64)
and state of the parameter's dtype and shape; elsewhere the per-op path runs,
with the same results. `fused=True` also requires every parameter to be of a
supported device and dtype; `fused=False` always takes the per-op path.
"""
from __future__ import annotations

from ..autograd.grad_mode import no_grad
from ..errors import TesseraError
from ..tensor import Tensor
from . import _fused

__all__ = ["Optimizer"]


class Optimizer:
    """Base class. `params`: an iterable of tensors, or of dicts
    `{"params": [...], **hyperparameters}` (groups override the defaults).
    `fused`: None (auto), True or False, as the module docstring says."""

    def __init__(self, params, defaults, fused=None):
        if fused not in (None, True, False):
            raise ValueError(f"[{type(self).__name__}] fused must be None, True or False, "
                             f"got {fused!r}")
        self.defaults = dict(defaults)
        self.fused = fused
        self.param_groups = []
        self.state = {}  # parameter tensor (hashed by identity) -> dict of state
        self._scratch = _fused.Scratch()  # the fast path's work buffers, not state
        params = list(params)
        if not params:
            raise ValueError(f"[{type(self).__name__}] got an empty parameter list")
        if not isinstance(params[0], dict):
            params = [{"params": params}]
        for g in params:
            self.add_param_group(g)

    def add_param_group(self, group):
        name = type(self).__name__
        group = dict(group)
        ps = group["params"]
        ps = [ps] if type(ps) is Tensor else list(ps)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for p in ps:
            if type(p) is not Tensor:
                raise TypeError(f"[{name}] parameters must be tensors, got {type(p).__name__}")
            if not p.requires_grad or p.grad_fn is not None:
                raise ValueError(f"[{name}] can only optimize leaf tensors that require grad "
                                 f"(shape {p.shape})")
            if self.fused and not _fused.supports(p):
                raise ValueError(f"[{name}] fused=True supports {_fused.SUPPORTED}, got a "
                                 f"{p.dtype.name} parameter (shape {p.shape}) on {p.device}")
            if id(p) in seen:
                raise ValueError(f"[{name}] a parameter (shape {p.shape}) appears in more "
                                 "than one group")
            seen.add(id(p))
        group["params"] = ps
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        """Clear gradients: to None (frees them; the next backward assigns) or to zeros."""
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    with no_grad():
                        p.grad[...] = 0.0

    def step(self, closure=None):
        """One update of every parameter that has a gradient. `closure()`, when
        given, re-evaluates the loss (with grad enabled) and its value is returned."""
        loss = None
        if closure is not None:
            from ..autograd.grad_mode import enable_grad
            with enable_grad():
                loss = closure()
        with no_grad():
            fused = self.fused is not False and _fused.allowed()
            for group in self.param_groups:
                for p in group["params"]:
                    g = p.grad
                    if g is None:
                        continue
                    st = self.state.get(p)
                    if st is None:
                        st = self.state[p] = {}
                    if not (fused and self._fused_update(group, p, g, st)):
                        self._update(group, p, g, st)
        return loss

    def _update(self, group, p, g, state):
        """The update of `p` from gradient `g`, in tessera ops."""
        raise NotImplementedError

    def _fused_update(self, group, p, g, state):
        """The same update on the buffers (see `_fused`); False where it cannot run."""
        return False

    # -- state dicts --------------------------------------------------------------
    def state_dict(self):
        """`{"state": {index: {...}}, "param_groups": [{..., "params": [index, ...]}]}`,
        parameters numbered in group order, as PyTorch does. Tensors are copies."""
        index, groups = {}, []
        for g in self.param_groups:
            ids = []
            for p in g["params"]:
                index[id(p)] = len(index)
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in g.items() if k != "params"}, "params": ids})
        state = {}
        for g in self.param_groups:
            for p in g["params"]:
                if p in self.state:
                    state[index[id(p)]] = {k: (v.copy() if type(v) is Tensor else v)
                                           for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore hyperparameters and state saved by `state_dict` from an optimizer
        over parameters of the same shapes, in the same order."""
        name = type(self).__name__
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise TesseraError(f"[{name}.load_state_dict] {len(groups)} parameter group(s) in "
                               f"the state dict, {len(self.param_groups)} in the optimizer")
        params = []
        for i, (saved, own) in enumerate(zip(groups, self.param_groups)):
            if len(saved["params"]) != len(own["params"]):
                raise TesseraError(f"[{name}.load_state_dict] group {i} has "
                                   f"{len(saved['params'])} parameter(s) in the state dict, "
                                   f"{len(own['params'])} in the optimizer")
            params.extend(zip(saved["params"], own["params"]))
        self.state = {}
        for idx, p in params:
            st = state_dict["state"].get(idx)
            if st is None:
                continue
            new = {}
            for k, v in st.items():
                if type(v) is Tensor:
                    if v.ndim and v.shape != p.shape:
                        raise TesseraError(f"[{name}.load_state_dict] state '{k}' has shape "
                                           f"{v.shape}, its parameter has shape {p.shape}")
                    v = v.to(p.device).copy()
                new[k] = v
            self.state[p] = new
        for saved, own in zip(groups, self.param_groups):
            own.update({k: v for k, v in saved.items() if k != "params"})

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(g):
                if k != "params":
                    lines.append(f"    {k}: {g[k]}")
        return "\n".join(lines) + "\n)"
