"""Interop cost: a round trip torch -> tessera -> torch (interop.from_torch then
interop.to_torch, both zero-copy over DLPack) for small and large tensors,
against `torch.from_dlpack` on a torch tensor (PyTorch's own DLPack round trip:
export plus import) measured in the same run. Target: independent of size and
at most 2x torch.from_dlpack. Also the generic `tessera.from_dlpack` path and
bf16, whose DLPack code NumPy's consumer lacks.

    python benchmarks/interop.py
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from _common import header, table, timeit  # noqa: E402


def main():
    import torch

    import tessera as ts
    from tessera import interop
    header("interop: torch -> tessera -> torch round trip vs torch.from_dlpack")
    dev = "cuda" if ts.default_device().type == "cuda" and torch.cuda.is_available() else "cpu"
    sync = torch.cuda.synchronize if dev == "cuda" else None
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        for n in (16, 1 << 20, 1 << 24):
            t = torch.ones(n, dtype=dtype, device=dev)
            number = 2000
            ref = timeit(lambda: torch.from_dlpack(t), repeat=7, number=number, sync=sync)
            rt = timeit(lambda: interop.to_torch(interop.from_torch(t)), repeat=7, number=number,
                        sync=sync)
            gen = timeit(lambda: ts.from_dlpack(t), repeat=7, number=number, sync=sync)
            back = interop.to_torch(interop.from_torch(t))
            assert back.data_ptr() == t.data_ptr()  # zero-copy, or the timing means nothing
            rows.append({"dtype": str(dtype).split(".")[1], "elements": n,
                         "torch.from_dlpack us": ref * 1e6, "round trip us": rt * 1e6,
                         "ratio": rt / ref, "ts.from_dlpack us": gen * 1e6})
    table(rows, ["dtype", "elements", "torch.from_dlpack us", "round trip us", "ratio",
                 "ts.from_dlpack us"])
    worst = max(r["ratio"] for r in rows)
    print(f"worst ratio round trip / torch.from_dlpack: {worst:.2f} (target <= 2)")


if __name__ == "__main__":
    main()
