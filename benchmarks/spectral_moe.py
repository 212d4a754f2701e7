"""Spectral operators and mixture of experts (issue 10), one section per part.

Part 1 (FFT): tessera.fft against numpy.fft (and scipy.fft, torch.fft when present)
on the CPU, against cupy.fft (cuFFT) and torch.fft on a GPU, forward and
forward+backward, complex64 and complex128. Ratios are peer time / tessera time
(> 1: tessera is faster), all measured in this run. torch runs on the device of
tessera's default device (its columns are skipped where this torch has no CUDA).

Part 2 (MoE): added by the MoE work, in its own section below.

    python benchmarks/spectral_moe.py [--part fft|moe|all] [--quick]
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import SMOKE, cupy_module, header, table, tessera_sync, timeit, torch_device  # noqa: E402

import tessera as ts  # noqa: E402


# ---------------------------------------------------------------------------
# Part 1: FFT
# ---------------------------------------------------------------------------
FFT_CASES = [  # (label, shape, transform, kwargs)
    ("fft 1-D batch", (256, 4096), "fft", {}),
    ("fft odd n", (256, 3001), "fft", {}),
    ("rfft 1-D batch", (256, 4096), "rfft", {}),
    ("irfft 1-D batch", (256, 2049), "irfft", {}),
    ("fft2 image", (16, 512, 512), "fftn", {"axes": (-2, -1)}),
    ("rfftn 3-D", (128, 128, 128), "rfftn", {}),
]
if SMOKE:  # the same transforms on tiny shapes: checks the script, not the speed
    FFT_CASES = [(label, tuple(max(2, d // 64) for d in shape), name, kw)
                 for label, shape, name, kw in FFT_CASES]


def _input(shape, transform, dtype):
    rng = np.random.default_rng(0)
    real_dt = np.float32 if dtype == "complex64" else np.float64
    a = rng.standard_normal(shape).astype(real_dt)
    if transform in ("fft", "fftn", "ifft", "ifftn", "irfft", "irfftn"):
        a = (a + 1j * rng.standard_normal(shape).astype(real_dt)).astype(dtype)
    return a


def fft_part(quick):
    dev = ts.default_device()
    gpu = dev.type == "cuda"
    sync = tessera_sync(dev)
    repeat = 2 if SMOKE else 3 if quick else 7
    torch, tdev, tsync = torch_device(dev)
    if tdev is None:
        print(f"(torch columns skipped: {tsync})\n")
        torch = None
    if gpu:
        cupy = cupy_module(dev)
        csync = cupy.cuda.Device().synchronize
        peers = {"cupy.fft": lambda name, a, kw: getattr(cupy.fft, name)(a, **kw)}
    else:
        peers = {"numpy.fft": lambda name, a, kw: getattr(np.fft, name)(a, **kw)}
        try:
            import scipy.fft as sfft
            peers["scipy.fft(workers)"] = lambda name, a, kw: getattr(sfft, name)(
                a, workers=os.cpu_count(), **kw)
        except ImportError:
            pass
    rows = []
    print("## Part 1: FFT (forward; peer time / tessera time)\n")
    for dtype in ("complex64", "complex128"):
        for label, shape, name, kw in FFT_CASES:
            if quick and np.prod(shape) > 2 ** 21:
                continue
            a = _input(shape, name, dtype)
            x = ts.asarray(a, device=dev)
            t_ts = timeit(lambda: getattr(ts.fft, name)(x, **kw).data, repeat=repeat, sync=sync)
            row = {"case": label, "shape": "x".join(map(str, shape)), "dtype": dtype,
                   "tessera ms": t_ts * 1e3}
            buf = cupy.asarray(a) if gpu else a
            for pname, fn in peers.items():
                t = timeit(lambda: fn(name, buf, kw), repeat=repeat, sync=csync if gpu else None)
                row[f"{pname}/ts"] = t / t_ts
            if torch is not None:
                tt = torch.from_numpy(a).to(tdev)
                tkw = {"dim": kw["axes"]} if "axes" in kw else {}
                t = timeit(lambda: getattr(torch.fft, name)(tt, **tkw), repeat=repeat, sync=tsync)
                row["torch.fft/ts"] = t / t_ts
            rows.append(row)
    cols = ["case", "shape", "dtype", "tessera ms"] + [f"{p}/ts" for p in peers] + \
        (["torch.fft/ts"] if torch is not None else [])
    table(rows, cols)

    print("## Part 1b: FFT forward + backward (autodiff; peer time / tessera time)\n")
    rows = []
    for label, shape, name, kw in FFT_CASES[:3] + FFT_CASES[4:5]:
        if quick and np.prod(shape) > 2 ** 21:
            continue
        a = _input(shape, name, "complex64")

        def ts_step():
            x = ts.asarray(a, device=dev, requires_grad=True)
            y = getattr(ts.fft, name)(x, **kw)
            ts.sum(ts.real(y * ts.conj(y))).backward()
            return x.grad.data
        t_ts = timeit(ts_step, repeat=repeat, sync=sync)
        row = {"case": label, "shape": "x".join(map(str, shape)), "tessera ms": t_ts * 1e3}
        if torch is not None:
            tkw = {"dim": kw["axes"]} if "axes" in kw else {}
            ta = torch.from_numpy(a).to(tdev)

            def torch_step():
                xt = ta.clone().requires_grad_(True)
                yt = getattr(torch.fft, name)(xt, **tkw)
                (yt * yt.conj()).real.sum().backward()
                return xt.grad
            t = timeit(torch_step, repeat=repeat, sync=tsync)
            row["torch/ts"] = t / t_ts
        rows.append(row)
    table(rows, ["case", "shape", "tessera ms"] + (["torch/ts"] if torch is not None else []))


# ---------------------------------------------------------------------------
# Part 2: MoE
# ---------------------------------------------------------------------------
# tessera.nn.MoE (route -> plan -> dispatch -> one grouped matmul per layer ->
# combine) against the usual PyTorch per-expert loop on the same device with the
# same weights (gather each expert's tokens, run it, index_add back), forward
# and forward+backward. Capacity unlimited, so both compute the same function
# (checked). Ratio: torch loop time / tessera time (> 1: tessera is faster).
def _torch_moe(torch, x, wg, w1, b1, w2, b2, k):
    probs = torch.softmax(x @ wg, dim=-1)
    top, idx = probs.topk(k, dim=-1)
    top = top / top.sum(-1, keepdim=True)
    out = torch.zeros_like(x)
    for e in range(w1.shape[0]):
        tok, slot = (idx == e).nonzero(as_tuple=True)
        h = torch.nn.functional.gelu(x[tok] @ w1[e] + b1[e])
        out = out.index_add(0, tok, (h @ w2[e] + b2[e]) * top[tok, slot, None])
    return out


def moe_part(quick, d_hidden=None):
    dev = ts.default_device()
    gpu = dev.type == "cuda"
    sync = tessera_sync(dev)
    torch, tdev, tsync = torch_device(dev)
    if tdev is None:
        print(f"## Part 2: MoE\n\n(torch on {dev} unavailable: {tsync}; no peer to compare)\n")
        return
    E, k, d = 8, 2, 1024
    tokens = 2048 if quick else 8192
    d_hidden = d_hidden or (4096 if gpu else 1024)
    repeat = 2 if quick else (7 if gpu else 3)
    if SMOKE:
        d, tokens, d_hidden, repeat = 32, 64, 64, 1
    print(f"## Part 2: MoE ({E} experts, top-{k}, d_model {d}, d_hidden {d_hidden}, fp32, "
          f"capacity unlimited; torch per-expert loop time / tessera time)\n")
    moe = ts.nn.MoE(d, d_hidden, num_experts=E, k=k, capacity_factor=None,
                    generator=ts.random.Generator(0), device=dev)
    rng = np.random.default_rng(0)
    xa = rng.standard_normal((tokens, d)).astype(np.float32)
    x = ts.asarray(xa, device=dev)
    tw = {n: torch.from_numpy(np.ascontiguousarray(p.numpy())).to(tdev)
          for n, p in moe.named_parameters()}
    args = (tw["w_gate"], tw["experts.w1"], tw["experts.b1"], tw["experts.w2"], tw["experts.b2"])
    tx = torch.from_numpy(xa).to(tdev)
    with ts.no_grad():
        y = moe(x).numpy()
    with torch.no_grad():
        yt = _torch_moe(torch, tx, *args, k).cpu().numpy()
    err = float(np.abs(y - yt).max() / np.abs(yt).max())
    rows = []

    def ts_fwd():
        with ts.no_grad():
            return moe(x).data

    def torch_fwd():
        with torch.no_grad():
            return _torch_moe(torch, tx, *args, k)
    t_ts = timeit(ts_fwd, repeat=repeat, sync=sync)
    t_pt = timeit(torch_fwd, repeat=repeat, sync=tsync)
    rows.append({"pass": "forward", "tokens": tokens, "tessera ms": t_ts * 1e3,
                 "torch loop ms": t_pt * 1e3, "torch/ts": t_pt / t_ts})

    params = list(moe.parameters())
    targs = [a.clone().requires_grad_(True) for a in args]

    def ts_step():
        for p_ in params:
            p_.grad = None
        xg = ts.asarray(xa, device=dev, requires_grad=True)
        ts.sum(moe(xg) ** 2).backward()
        return xg.grad.data

    def torch_step():
        for a in targs:
            a.grad = None
        xg = tx.clone().requires_grad_(True)
        (_torch_moe(torch, xg, *targs, k) ** 2).sum().backward()
        return xg.grad
    t_ts = timeit(ts_step, repeat=repeat, sync=sync)
    t_pt = timeit(torch_step, repeat=repeat, sync=tsync)
    rows.append({"pass": "forward+backward", "tokens": tokens, "tessera ms": t_ts * 1e3,
                 "torch loop ms": t_pt * 1e3, "torch/ts": t_pt / t_ts})
    table(rows, ["pass", "tokens", "tessera ms", "torch loop ms", "torch/ts"])
    print(f"max |tessera - torch| / max |torch| = {err:.2e} (same weights, same routing)")
    print(f"target: torch/ts >= {'2.0 (GPU)' if gpu else '1.0 (CPU)'}\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=("fft", "moe", "all"), default="all")
    p.add_argument("--quick", action="store_true", help="fewer repeats, small cases only")
    args = p.parse_args()
    header("spectral_moe: FFT and mixture-of-experts benchmarks")
    if args.part in ("fft", "all"):
        fft_part(args.quick)
    if args.part in ("moe", "all"):
        moe_part(args.quick)


if __name__ == "__main__":
    main()
