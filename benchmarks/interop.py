"""Interop cost: a round trip torch -> tessera -> torch (interop.from_torch then
interop.to_torch, both zero-copy over DLPack) for small and large tensors,
against `torch.from_dlpack` on a torch tensor (PyTorch's own DLPack round trip:
export plus import) measured in the same run. Target: independent of size and
at most 2x torch.from_dlpack. Also the generic `tessera.from_dlpack` path and
bf16, whose DLPack code NumPy's consumer lacks.

The torch tensors live on tessera's default device when this torch can put them
there (else on the CPU, said in the output); both sides of each ratio work on the
same tensor, so on the same device. Calls per timed round are calibrated to about
10 ms (2000 at most), so a slow path cannot make the run long.

    python benchmarks/interop.py [--quick]
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from _common import SMOKE, header, table, timeit, torch_device  # noqa: E402


def calls_per_round(fn, target=0.01, most=2000):
    """How many calls of fn take about `target` seconds (at least 5, at most `most`)."""
    import time
    fn()
    t = time.perf_counter()
    fn()
    one = time.perf_counter() - t
    return max(5, min(most, int(target / max(one, 1e-7))))


def main():
    import tessera as ts
    from tessera import interop
    quick = "--quick" in sys.argv
    header("interop: torch -> tessera -> torch round trip vs torch.from_dlpack")
    torch, tdev, sync = torch_device(ts.default_device())
    if torch is None:
        print("torch is not installed: nothing to measure")
        return
    if tdev is None:
        print(f"torch tensors on the CPU: {sync} (tessera's default device is "
              f"{ts.default_device()})")
        tdev, sync = torch.device("cpu"), None
    else:
        print(f"torch tensors on {tdev}")
    repeat = 2 if SMOKE else 5 if quick else 7
    sizes = (16, 1 << 12) if SMOKE else (16, 1 << 20, 1 << 24)
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        for n in sizes:
            t = torch.ones(n, dtype=dtype, device=tdev)
            most = 20 if SMOKE else 2000
            number = min(calls_per_round(lambda: interop.to_torch(interop.from_torch(t)), most=most),
                         calls_per_round(lambda: ts.from_dlpack(t), most=most))
            ref = timeit(lambda: torch.from_dlpack(t), repeat=repeat, number=number, sync=sync)
            rt = timeit(lambda: interop.to_torch(interop.from_torch(t)), repeat=repeat, number=number,
                        sync=sync)
            gen = timeit(lambda: ts.from_dlpack(t), repeat=repeat, number=number, sync=sync)
            back = interop.to_torch(interop.from_torch(t))
            assert back.data_ptr() == t.data_ptr()  # zero-copy, or the timing means nothing
            rows.append({"dtype": str(dtype).split(".")[1], "elements": n,
                         "torch.from_dlpack us": ref * 1e6, "round trip us": rt * 1e6,
                         "ratio": rt / ref, "ts.from_dlpack us": gen * 1e6, "calls/round": number})
    table(rows, ["dtype", "elements", "torch.from_dlpack us", "round trip us", "ratio",
                 "ts.from_dlpack us", "calls/round"])
    worst = max(r["ratio"] for r in rows)
    print(f"worst ratio round trip / torch.from_dlpack: {worst:.2f} (target <= 2)")


if __name__ == "__main__":
    main()
