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


def _pending(a, device):
    # FUSE_MIN_SIZE elements and up stay lazy on every backend (CUDA's threshold is 1)
    return ts.asarray(a, dtype="fp64", device=device) * 1.0


@pytest.mark.cpu_only("the CUDA epilogue runner is replaced by a NumPy one, to run on any machine")
def test_gemm_epilogue_is_handed_realized_operands(monkeypatch):
    # an autocast cast (or any pending op) as the matmul's operand reached the CUDA
    # GEMM+epilogue launch as None (TRIAGE 2026-12-04 A12)
    from tessera.fusion import epilogue
    seen = []

    def runner(backend, epi):
        def run(a, b, bias, act, dtype):
            seen.append(all(isinstance(v, np.ndarray) for v in (a, b, bias)))
            return np.maximum(a @ b + bias, 0.0)
        return run
    monkeypatch.setattr(epilogue, "runner", runner)
    rng = np.random.default_rng(1)
    xs, ws, bs = rng.standard_normal((600, 64)), rng.standard_normal((64, 600)), rng.standard_normal(600)
    with ts.fusion.mode("aggressive"):
        x, w, b = _pending(xs, "cpu"), _pending(ws, "cpu"), _pending(bs, "cpu")
        assert x.is_lazy and w.is_lazy
        y = ts.relu(x @ w + b)
        got = y.numpy()
    assert seen == [True]
    np.testing.assert_allclose(got, np.maximum(xs @ ws + bs, 0.0), rtol=1e-12, atol=1e-12)


def test_pending_operands_of_a_pending_matmul_epilogue(device):
    rng = np.random.default_rng(2)
    xs, ws, bs = rng.standard_normal((600, 64)), rng.standard_normal((64, 600)), rng.standard_normal(600)
    with ts.fusion.mode("aggressive"):
        x, w, b = (_pending(a, device) for a in (xs, ws, bs))
        got = ts.relu(x @ w + b).numpy()
    np.testing.assert_allclose(got, np.maximum(xs @ ws + bs, 0.0), rtol=1e-10, atol=1e-10)
