"""SGD (momentum, Nesterov, weight decay), Adam (with AMSGrad) and AdamW, with the
update formulas of `torch.optim` (same order of operations, so results agree to
rounding in fp32 and fp64).

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
from ..ops.inplace import assign_inplace
from ..tensor import Tensor
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


def _factor(name, step, dtype, f):
    """`f(step)` computed in float64 on the step tensor's device, cast to `dtype`:
    an op of the step buffer, so a replay recomputes it from the current count."""
    b = step.device.backend
    xp = b.xp
    return apply_op(name, (step,), lambda s: b.cast(xp.asarray(f(xp, s), dtype=xp.float64),
                                                     _dt.fp64, dtype), dtype, step.device)


class SGD(Optimizer):
    """Stochastic gradient descent, as `torch.optim.SGD`:
    g += wd * p; buf = momentum * buf + (1 - dampening) * g (buf = g at the first
    step); g = g + momentum * buf if nesterov else buf; p -= lr * g."""

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, maximize=False):
        _check("SGD", lr=lr, momentum=momentum, weight_decay=weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("[SGD] Nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))

    def _update(self, group, p, g, state):
        if group["maximize"]:
            g = -g
        wd, mom, damp = group["weight_decay"], group["momentum"], group["dampening"]
        if wd:
            g = g + wd * p
        if mom:
            buf = state.get("momentum_buffer")
            first = buf is None
            if first:  # zeros: buf * mom + g is then g, torch's first step
                buf = state["momentum_buffer"] = _zeros(p)
            if damp:
                # 1 at the first step, 1 - dampening after (a tensor, so replays see it)
                coef = _scalar_state(state, "grad_coef", 1.0 if first else 1.0 - damp, p,
                                     p.dtype)
                assign_inplace(buf, buf * mom + g * coef, "SGD.momentum")
                if first:
                    coef[...] = 1.0 - damp
            else:
                assign_inplace(buf, buf * mom + g, "SGD.momentum")
            g = g + mom * buf if group["nesterov"] else buf
        p -= group["lr"] * g


class Adam(Optimizer):
    """Adam (Kingma & Ba), as `torch.optim.Adam`: L2 `weight_decay` added to the
    gradient; `amsgrad` keeps the running maximum of the second moment."""

    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, maximize=False):
        _check(type(self).__name__, lr=lr, eps=eps, weight_decay=weight_decay)
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"[{type(self).__name__}] betas must be in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize))

    def _update(self, group, p, g, state):
        from ..ops.elementwise import maximum, sqrt
        if group["maximize"]:
            g = -g
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        if "exp_avg" not in state:
            state["exp_avg"] = _zeros(p)
            state["exp_avg_sq"] = _zeros(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = _zeros(p)
        step = _scalar_state(state, "step", 0.0, p, _dt.fp64)
        if wd:
            if self.decoupled:
                p *= 1.0 - lr * wd
            else:
                g = g + wd * p
        step += 1.0
        m, v = state["exp_avg"], state["exp_avg_sq"]
        assign_inplace(m, m + (g - m) * (1.0 - b1), "Adam.exp_avg")  # torch's lerp_
        assign_inplace(v, v * b2 + g * g * (1.0 - b2), "Adam.exp_avg_sq")
        if group["amsgrad"]:
            vmax = state["max_exp_avg_sq"]
            assign_inplace(vmax, maximum(vmax, v), "Adam.max_exp_avg_sq")
            v = vmax
        step_size = _factor("adam_step_size", step, p.dtype, lambda xp, t: lr / (1.0 - b1 ** t))
        bc2_sqrt = _factor("adam_bias_correction2_sqrt", step, p.dtype,
                           lambda xp, t: xp.sqrt(1.0 - b2 ** t))
        p -= step_size * (m / (sqrt(v) / bc2_sqrt + eps))


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as
    `torch.optim.AdamW`: p *= 1 - lr * wd before the Adam step."""

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize)
