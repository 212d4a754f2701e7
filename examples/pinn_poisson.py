"""A physics-informed network for the 1-D Poisson problem

    -u''(x) = pi^2 sin(pi x) on (0, 1),  u(0) = u(1) = 0,  exact u = sin(pi x).

The loss is the mean squared PDE residual at collocation points plus the
boundary misfit. The residual needs u'' of the network with respect to its
input (grad-of-grad, `tessera.pde.derivatives`), and training differentiates
that again with respect to the weights. Prints the loss and the error against
the analytic solution; the stated result (checked by tests/pde/test_examples.py):
relative L2 error below 1e-3 after the default 600 Adam steps.

    python examples/pinn_poisson.py [--steps N] [--seed S]
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np

import tessera as ts
from tessera import nn, pde


def make_model(seed):
    ts.manual_seed(seed)
    return nn.Sequential(nn.Linear(1, 24, dtype="fp64"), nn.Tanh(),
                         nn.Linear(24, 24, dtype="fp64"), nn.Tanh(),
                         nn.Linear(24, 1, dtype="fp64"))


def train(steps=600, seed=0, n_col=48, lr=1e-2, verbose=True):
    model = make_model(seed)
    opt = ts.optim.Adam(model.parameters(), lr=lr)
    # fixed collocation points (Chebyshev-like, denser at the ends)
    xc = 0.5 - 0.5 * np.cos(np.pi * (np.arange(n_col) + 0.5) / n_col)
    x = ts.asarray(xc[:, None], dtype="fp64")
    xb = ts.asarray([[0.0], [1.0]], dtype="fp64")
    f = ts.asarray(np.pi ** 2 * np.sin(np.pi * xc), dtype="fp64")
    xt = np.linspace(0, 1, 201)
    xt_t = ts.asarray(xt[:, None], dtype="fp64")

    def u_fn(z):
        return model(z)[:, 0]

    def error():
        with ts.no_grad():
            u = u_fn(xt_t).numpy()
        ex = np.sin(np.pi * xt)
        return float(np.linalg.norm(u - ex) / np.linalg.norm(ex))
    t0 = time.perf_counter()
    for k in range(steps + 1):
        if k == steps // 2:
            for g in opt.param_groups:
                g["lr"] = lr * 0.3
        r = pde.residual(u_fn, x, lambda x, u, du, d2u: -d2u[:, 0] - f)
        loss = (r * r).mean() + 10.0 * (u_fn(xb) ** 2).mean()
        if k == steps:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
        if verbose and k % 250 == 0:
            print(f"step {k:5d}  loss {loss.item():.3e}  rel L2 error {error():.3e}")
    err = error()
    if verbose:
        print(f"step {steps:5d}  loss {loss.item():.3e}  rel L2 error {err:.3e}  "
              f"({time.perf_counter() - t0:.1f} s)")
    return err


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    e = train(a.steps, a.seed)
    print(f"final relative L2 error vs sin(pi x): {e:.2e} (stated: < 1e-3)")
    assert math.isfinite(e)
