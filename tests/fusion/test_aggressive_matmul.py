"""In aggressive mode a matmul stays pending so its bias/activation epilogue fuses:
values and gradients must equal the default mode's."""
import numpy as np
import pytest

import tessera as ts


@pytest.mark.parametrize("act", ["relu", "gelu", "silu", None])
def test_pending_matmul_epilogue_matches_default_mode(act, device):
    rng = np.random.default_rng(0)
    xs, ws, bs = rng.standard_normal((300, 64)), rng.standard_normal((64, 130)), rng.standard_normal(130)
    results = []
    for mode in ("default", "aggressive"):
        x = ts.asarray(xs, dtype="fp64", device=device, requires_grad=True)
        w = ts.asarray(ws, dtype="fp64", device=device, requires_grad=True)
        b = ts.asarray(bs, dtype="fp64", device=device, requires_grad=True)
        with ts.fusion.mode(mode):
            y = x @ w + b
            if act is not None:
                y = getattr(ts, act)(y)
            if mode == "aggressive":
                assert (x @ w).is_lazy
            (y * y).sum().backward()
        results.append([y.numpy(), x.grad.numpy(), w.grad.numpy(), b.grad.numpy()])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
