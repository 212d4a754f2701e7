"""A Fourier Neural Operator learns the solution operator of the 1-D viscous
Burgers equation u_t + u u_x = nu u_xx on the periodic unit interval, u(0) ->
u(T), from data made by a tessera solver (pseudo-spectral in space with
tessera.fft, implicit viscosity / explicit advection in time). Prints the train
and test relative L2 errors and whether the stated test error was reached.

    python examples/fno_burgers.py           # full run (~ 5 minutes on 2 cores)
    python examples/fno_burgers.py --quick   # smaller, for the test suite
"""
import argparse
import math
import time

import numpy as np

import tessera as ts


def burgers_solve(u0, nu=0.05, t_end=1.0, dt=1e-3):
    """Batched solver on tessera tensors (B, n): in Fourier space,
    u^_{k+1} = (u^_k - dt * i k FFT(u^2 / 2)) / (1 + nu k^2 dt), with 2/3 de-aliasing."""
    n = u0.shape[-1]
    k = 2 * math.pi * np.fft.rfftfreq(n, d=1.0 / n)
    ik = ts.asarray(1j * k * (np.arange(len(k)) < n // 3))      # derivative, de-aliased
    damp = ts.asarray(1.0 / (1.0 + nu * k * k * dt))
    uh = ts.fft.rfft(u0)
    with ts.no_grad():
        for _ in range(int(round(t_end / dt))):
            u = ts.fft.irfft(uh, n=n)
            uh = (uh - dt * ik * ts.fft.rfft(0.5 * u * u)) * damp
    return ts.fft.irfft(uh, n=n)


def random_fields(rng, count, n):
    """Smooth periodic initial conditions: Gaussian random field with a k^-2.5 spectrum."""
    k = np.arange(n // 2 + 1)
    amp = np.where(k > 0, (1.0 + k) ** -2.5, 0.0)
    coef = (rng.standard_normal((count, len(k))) + 1j * rng.standard_normal((count, len(k)))) * amp
    u = np.fft.irfft(coef, n=n) * n
    return u / np.abs(u).max(axis=1, keepdims=True)


class FNO1d(ts.nn.Module):
    def __init__(self, modes, width, layers=4):
        super().__init__()
        self.lift = ts.nn.Linear(2, width)                # (u0(x), x) -> width channels
        self.spectral = ts.nn.ModuleList([ts.nn.SpectralConv1d(width, width, modes) for _ in range(layers)])
        self.pointwise = ts.nn.ModuleList([ts.nn.Linear(width, width) for _ in range(layers)])
        self.proj1, self.proj2 = ts.nn.Linear(width, 64), ts.nn.Linear(64, 1)

    def forward(self, u0, grid):
        B, n = u0.shape
        v = self.lift(ts.stack([u0, ts.broadcast_to(grid, (B, n))], axis=-1))   # (B, n, w)
        v = ts.permute_dims(v, (0, 2, 1))                                        # (B, w, n)
        for i, (sc, pw) in enumerate(zip(self.spectral, self.pointwise)):
            h = sc(v) + ts.permute_dims(pw(ts.permute_dims(v, (0, 2, 1))), (0, 2, 1))
            v = ts.gelu(h) if i < len(self.spectral) - 1 else h
        v = ts.permute_dims(v, (0, 2, 1))
        return ts.reshape(self.proj2(ts.gelu(self.proj1(v))), (B, n))


def rel_l2(pred, target):
    num = ts.sqrt(ts.sum((pred - target) ** 2, axis=-1))
    return ts.mean(num / ts.sqrt(ts.sum(target ** 2, axis=-1)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n_train, n_test, epochs, target = (200, 50, 30, 0.10) if args.quick else (800, 200, 60, 0.02)
    n, batch = 64, 50
    rng = np.random.default_rng(0)
    ts.random.manual_seed(0)
    t0 = time.perf_counter()
    u0 = ts.asarray(random_fields(rng, n_train + n_test, n), dtype="fp64")
    uT = burgers_solve(u0)
    print(f"data: {n_train}+{n_test} Burgers solutions (nu=0.05, T=1, n={n}) "
          f"by the tessera solver in {time.perf_counter() - t0:.1f}s")
    u0, uT = ts.astype(u0, "fp32"), ts.astype(uT, "fp32")
    x_tr, y_tr, x_te, y_te = u0[:n_train], uT[:n_train], u0[n_train:], uT[n_train:]
    grid = ts.asarray(np.linspace(0, 1, n, endpoint=False), dtype="fp32")
    model = FNO1d(modes=16, width=32)
    opt = ts.optim.Adam(model.parameters(), lr=3e-3)
    steps = epochs * (n_train // batch)
    step = 0
    for ep in range(epochs):
        perm = rng.permutation(n_train)
        for b in range(0, n_train, batch):
            idx = ts.asarray(perm[b:b + batch])
            for g in opt.param_groups:   # cosine decay
                g["lr"] = 3e-3 * 0.5 * (1 + math.cos(math.pi * step / steps))
            opt.zero_grad()
            loss = rel_l2(model(ts.take(x_tr, idx, axis=0), grid), ts.take(y_tr, idx, axis=0))
            loss.backward()
            opt.step()
            step += 1
        if ep % 10 == 0 or ep == epochs - 1:
            with ts.no_grad():
                tr = rel_l2(model(x_tr, grid), y_tr).item()
                te = rel_l2(model(x_te, grid), y_te).item()
            print(f"epoch {ep:4d}  train rel L2 {tr:.4f}  test rel L2 {te:.4f}  "
                  f"({time.perf_counter() - t0:.0f}s)")
    print(f"final: train rel L2 {tr:.4f}, test rel L2 {te:.4f} (target {target})")
    print("test error target reached" if te < target else "test error target NOT reached")


if __name__ == "__main__":
    main()
