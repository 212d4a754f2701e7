"""SGD (momentum, Nesterov, weight decay), Adam (with AMSGrad) and AdamW, with the
update formulas of `torch.optim` (same order of operations, so results agree to
rounding in fp32 and fp64).

Each update has two implementations giving the same bits: the per-op path here
(`_update`, tessera ops: recorded by graph capture, the profiler and
`check_numerics`) and the fused fast path (`_fused_update`, the arithmetic in
`_fused.py` run on the buffers in place), taken when the optimizer's `fused`
setting and the parameter allow it (see `Optimizer`). The state is managed here,
once, for both.

All state lives in tensors on the parameter's device and is updated in place,
so that a captured training step (`tessera.graph.capture` of `loss.backward();
opt.step()`) replays exactly: replay re-runs the recorded ops and in-place writes
on the same state buffers, and no Python value decides a number. So
- momentum buffers and Adam's moments are created (zeros) at the first step and
  then written in place (`assign_inplace`), never rebound;
- Adam's step count is a 0-d fp64 tensor incremented in place, and the
  bias-correction factors are computed from it on the device (one small op each,
  in float64 as torch computes them in Python floats, then cast to the
  parameter's dtype);
- SGD's first step (`buf = g`, not `(1 - dampening) g`) falls out of a zero
  buffer; with dampening, the gradient's coefficient is a 0-d tensor that is 1
  at the first step and `1 - dampening` afterwards.
Hyperparameters (lr, betas, ...) are read at capture: change them, capture again.

>>> import tessera as ts
>>> w = ts.asarray([1.0, -2.0], dtype="fp64", requires_grad=True)
>>> opt = ts.optim.SGD([w], lr=0.1)
>>> (w * w).sum().backward(); _ = opt.step()
>>> w.tolist()
[0.8, -1.6]
"""
from __future__ import annotations

from .. import dtypes as _dt
from ..ops._dispatch import apply_op
from ..ops.creation import full, zeros_like
from ..ops.inplace import assign_inplace, bump
from ..tensor import Tensor
from . import _fused
from .optimizer import Optimizer

__all__ = ["SGD", "Adam", "AdamW"]


def _check(name, **vals):
    for k, v in vals.items():
        if v < 0.0:
            raise ValueError(f"[{name}] {k} must be non-negative, got {v}")


def _zeros(p):
    return zeros_like(p.detach())


def _scalar_state(state, key, value, p, dtype):
    """A 0-d state tensor on p's device (a number from an old state dict becomes one)."""
    t = state.get(key)
    if type(t) is not Tensor:
        t = state[key] = full((), float(value if t is None else t), dtype=dtype,
                              device=p.device)
    return t


def _buf_of(t):
    return None if t is None else t._buf


def _factor_buf(b, s, dtype, f):
    """`f(xp, s)` for the step-count buffer `s`, in float64, cast to `dtype`."""
    xp = b.xp
    return b.cast(xp.asarray(f(xp, s), dtype=xp.float64), _dt.fp64, dtype)


def _factor(name, step, dtype, f):
    """`_factor_buf` as an op of the step tensor, so that a replay recomputes it
    from the current count."""
    b = step.device.backend
    return apply_op(name, (step,), lambda s: _factor_buf(b, s, dtype, f), dtype, step.device)


def _step_size(lr, b1):
    """Adam's `lr / (1 - b1^t)`."""
    return lambda xp, t: lr / (1.0 - b1 ** t)


def _bc2_sqrt(b2):
    """Adam's `sqrt(1 - b2^t)`."""
    return lambda xp, t: xp.sqrt(1.0 - b2 ** t)


class SGD(Optimizer):
    """Stochastic gradient descent, as `torch.optim.SGD`:
    g += wd * p; buf = momentum * buf + (1 - dampening) * g (buf = g at the first
    step); g = g + momentum * buf if nesterov else buf; p -= lr * g.
    `fused`: None (the fast path where it applies), True (the same, and every
    parameter must be one it supports) or False (always the per-op path); see
    `Optimizer`."""

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, maximize=False, fused=None):
        _check("SGD", lr=lr, momentum=momentum, weight_decay=weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("[SGD] Nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize), fused=fused)

    @staticmethod
    def _momentum_state(group, p, state):
        """(momentum buffer, gradient coefficient or None, first step?); the buffer
        is None without momentum."""
        mom, damp = group["momentum"], group["dampening"]
        if not mom:
            return None, None, False
        buf = state.get("momentum_buffer")
        first = buf is None
        if first:  # zeros: buf * mom + g is then g, torch's first step
            buf = state["momentum_buffer"] = _zeros(p)
        coef = None
        if damp:
            # 1 at the first step, 1 - dampening after (a tensor, so replays see it)
            coef = _scalar_state(state, "grad_coef", 1.0 if first else 1.0 - damp, p, p.dtype)
        return buf, coef, first

    @staticmethod
    def _after_first(group, coef, first):
        if first and coef is not None:
            coef[...] = 1.0 - group["dampening"]

    def _update(self, group, p, g, state):
        buf, coef, first = self._momentum_state(group, p, state)
        if group["maximize"]:
            g = -g
        wd, mom = group["weight_decay"], group["momentum"]
        if wd:
            g = g + wd * p
        if mom:
            assign_inplace(buf, buf * mom + (g if coef is None else g * coef), "SGD.momentum")
            self._after_first(group, coef, first)
            g = g + mom * buf if group["nesterov"] else buf
        p -= group["lr"] * g

    def _fused_update(self, group, p, g, state):
        # Decide before _momentum_state makes the first step's state: a declined fast
        # path must leave the state as it found it, or the per-op path takes the step
        # for a second one and never sets 1 - dampening. What it makes has p's dtype,
        # shape and device, so checking the state that exists decides the same.
        coef = state.get("grad_coef")
        if not _fused.ready(p, g, (state.get("momentum_buffer"),),
                            ((coef, p.dtype),) if type(coef) is Tensor else ()):
            return False
        buf, coef, first = self._momentum_state(group, p, state)
        sc = p._buf.dtype.type  # Python hyperparameters become scalars of p's dtype
        _fused.sgd(p.device.backend.xp, p._buf, g._buf, _buf_of(buf), _buf_of(coef),
                   lambda n: self._scratch.get(p, n), sc(group["lr"]),
                   sc(group["momentum"]), sc(group["weight_decay"]), group["maximize"],
                   group["nesterov"])
        if buf is not None:
            bump(buf)
            self._after_first(group, coef, first)
        bump(p)
        return True


class Adam(Optimizer):
    """Adam (Kingma & Ba), as `torch.optim.Adam`: L2 `weight_decay` added to the
    gradient; `amsgrad` keeps the running maximum of the second moment.
    `fused`: None (the fast path where it applies), True (the same, and every
    parameter must be one it supports) or False (always the per-op path); see
    `Optimizer`."""

    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, maximize=False, fused=None):
        _check(type(self).__name__, lr=lr, eps=eps, weight_decay=weight_decay)
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"[{type(self).__name__}] betas must be in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize), fused=fused)

    @staticmethod
    def _moments(group, p, state):
        """(exp_avg, exp_avg_sq, max_exp_avg_sq or None, step), zeros at the first step."""
        if "exp_avg" not in state:
            state["exp_avg"] = _zeros(p)
            state["exp_avg_sq"] = _zeros(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = _zeros(p)
        step = _scalar_state(state, "step", 0.0, p, _dt.fp64)
        vmax = state["max_exp_avg_sq"] if group["amsgrad"] else None
        return state["exp_avg"], state["exp_avg_sq"], vmax, step

    def _update(self, group, p, g, state):
        from ..ops.elementwise import maximum, sqrt
        m, v, vmax, step = self._moments(group, p, state)
        if group["maximize"]:
            g = -g
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        if wd:
            if self.decoupled:
                p *= 1.0 - lr * wd
            else:
                g = g + wd * p
        step += 1.0
        assign_inplace(m, m + (g - m) * (1.0 - b1), "Adam.exp_avg")  # torch's lerp_
        assign_inplace(v, v * b2 + g * g * (1.0 - b2), "Adam.exp_avg_sq")
        if vmax is not None:
            v = assign_inplace(vmax, maximum(vmax, v), "Adam.max_exp_avg_sq")
        step_size = _factor("adam_step_size", step, p.dtype, _step_size(lr, b1))
        bc2_sqrt = _factor("adam_bias_correction2_sqrt", step, p.dtype, _bc2_sqrt(b2))
        p -= step_size * (m / (sqrt(v) / bc2_sqrt + eps))

    def _fused_update(self, group, p, g, state):
        m, v, vmax, step = self._moments(group, p, state)
        if not _fused.ready(p, g, (m, v, vmax), ((step, _dt.fp64),)):
            return False
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        b, sb, sc = p.device.backend, step._buf, p._buf.dtype.type
        b.xp.add(sb, 1.0, out=sb)
        bump(step)
        decay = sc(1.0 - lr * wd) if wd and self.decoupled else None
        _fused.adam(b.xp, p._buf, g._buf, m._buf, v._buf, _buf_of(vmax),
                    lambda n: self._scratch.get(p, n), sc(1.0 - b1), sc(b2),
                    sc(1.0 - b2), sc(eps), sc(0.0 if self.decoupled else wd), decay,
                    group["maximize"], _factor_buf(b, sb, p.dtype, _step_size(lr, b1)),
                    _factor_buf(b, sb, p.dtype, _bc2_sqrt(b2)))
        for t in (m, v, vmax, p):
            if t is not None:
                bump(t)
        return True


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as
    `torch.optim.AdamW`: p *= 1 - lr * wd before the Adam step. `fused` as `Adam`."""

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, maximize=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize, fused)
