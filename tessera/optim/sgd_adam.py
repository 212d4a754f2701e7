"""SGD (momentum, Nesterov, weight decay), Adam (with AMSGrad) and AdamW, with the
update formulas of `torch.optim` (same order of operations, so results agree to
rounding in fp32 and fp64).

>>> import tessera as ts
>>> w = ts.asarray([1.0, -2.0], requires_grad=True)
>>> opt = ts.optim.SGD([w], lr=0.1)
>>> (w * w).sum().backward(); _ = opt.step()
>>> w.tolist()
[0.8, -1.6]
"""
from __future__ import annotations

import math

from .optimizer import Optimizer

__all__ = ["SGD", "Adam", "AdamW"]


def _check(name, **vals):
    for k, v in vals.items():
        if v < 0.0:
            raise ValueError(f"[{name}] {k} must be non-negative, got {v}")


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
        wd, mom = group["weight_decay"], group["momentum"]
        if wd:
            g = g + wd * p
        if mom:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = g.copy()
            else:
                buf = buf * mom + (1.0 - group["dampening"]) * g
            state["momentum_buffer"] = buf
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
        from ..ops.creation import zeros_like
        from ..ops.elementwise import maximum, sqrt
        if group["maximize"]:
            g = -g
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = zeros_like(p.detach())
            state["exp_avg_sq"] = zeros_like(p.detach())
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = zeros_like(p.detach())
        if wd:
            if self.decoupled:
                p *= 1.0 - lr * wd
            else:
                g = g + wd * p
        t = state["step"] = state["step"] + 1
        # m and v are rebound, not written in place: nothing else holds them, and
        # an out-of-place update is one fused kernel instead of a kernel and a copy.
        m = state["exp_avg"] = state["exp_avg"] + (g - state["exp_avg"]) * (1.0 - b1)  # torch lerp_
        v = state["exp_avg_sq"] = state["exp_avg_sq"] * b2 + g * g * (1.0 - b2)
        if group["amsgrad"]:
            v = state["max_exp_avg_sq"] = maximum(state["max_exp_avg_sq"], v)
        step_size = lr / (1.0 - b1 ** t)
        bc2_sqrt = math.sqrt(1.0 - b2 ** t)
        p -= step_size * (m / (sqrt(v) / bc2_sqrt + eps))


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as
    `torch.optim.AdamW`: p *= 1 - lr * wd before the Adam step."""

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize)
