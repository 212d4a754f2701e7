"""Quantized matmul: int8 GEMM exact against NumPy int32 before rescaling, one
rescale per tensor/row/column, weight-only products against the dequantized
weight, gradients, quantize_ on a model, errors; GPU runs of the same checks."""
import numpy as np
import pytest

import tessera as ts
from tessera import op
from tessera.precision import int8_matmul, quantized_linear, quantized_matmul
from tessera.precision import qmatmul as qm

from helpers import check_grad

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("shape", [(3, 5, 4), (17, 2500, 9), (1, 1024, 1), (8, 0, 3)])
def test_int8_gemm_exact_against_int32_numpy(shape, device):
    M, K, N = shape
    a = RNG.integers(-128, 128, (M, K)).astype(np.int8)
    b = RNG.integers(-128, 128, (K, N)).astype(np.int8)
    b[:, 0] = -128  # extreme products: 127 * 127 and 128 * 128 sums across K chunks
    a[0, :] = -128
    r = int8_matmul(ts.asarray(a, device=device), ts.asarray(b, device=device))
    assert r.dtype.name == "int32"
    assert np.array_equal(r.numpy(), a.astype(np.int32) @ b.astype(np.int32))


def test_int8_times_int8_rescales_once():
    x = RNG.standard_normal((16, 300)).astype(np.float32)
    w = RNG.standard_normal((300, 24)).astype(np.float32)
    for ka, kb in [({"scheme": "int8_per_channel", "axis": 0}, {"scheme": "int8_per_channel", "axis": 1}),
                   ({"scheme": "int8_per_tensor"}, {"scheme": "int8_per_tensor"}),
                   ({"scheme": "int8_per_tensor", "symmetric": False}, {"scheme": "int8_per_channel", "axis": 1})]:
        qa, qb = op.quantize(ts.asarray(x), **ka), op.quantize(ts.asarray(w), **kb)
        y = op.matmul(qa, qb)
        acc = (qa.int_repr().numpy().astype(np.int64) - (0 if qa.zero_point is None else qa.zero_point.numpy())) \
            @ qb.int_repr().numpy().astype(np.int64)
        ref = acc * qa.scale.numpy().astype(np.float64) * qb.scale.numpy().astype(np.float64)
        np.testing.assert_allclose(y.numpy(), ref, rtol=2e-6, atol=1e-6)
        assert np.abs(y.numpy() - x @ w).max() < 0.05 * np.abs(x @ w).max()  # quantization noise only
    # bias and activation in the epilogue
    qa, qb = op.quantize(ts.asarray(x), axis=0), op.quantize(ts.asarray(w), axis=1)
    bias = RNG.standard_normal(24).astype(np.float32)
    y = quantized_matmul(qa, qb, bias=ts.asarray(bias), activation="relu").numpy()
    base = op.matmul(qa, qb).numpy()
    np.testing.assert_allclose(y, np.maximum(base + bias, 0), rtol=1e-6, atol=1e-6)


def test_fp8_times_fp8_matches_dequantized_product():
    x = RNG.standard_normal((4, 32)).astype(np.float32)
    w = RNG.standard_normal((32, 6)).astype(np.float32)
    qa, qb = op.quantize(ts.asarray(x), scheme="fp8_e4m3"), op.quantize(ts.asarray(w), scheme="fp8_e4m3")
    np.testing.assert_allclose(op.matmul(qa, qb).numpy(), qa.dequantize().numpy() @ qb.dequantize().numpy(),
                               rtol=1e-5, atol=1e-5)


WEIGHT_CASES = [("int8_per_channel", {}), ("int8_per_channel", {"axis": 1}), ("int8_per_tensor", {}),
                ("int8_per_group", {"group_size": 40}), ("int4_per_group", {"group_size": 20}),
                ("int4_per_group", {"group_size": 10, "symmetric": False}), ("fp8_e4m3", {}),
                ("fp8_e5m2", {"axis": 0})]


@pytest.mark.parametrize("scheme,kw", WEIGHT_CASES)
def test_weight_only_matmul_and_linear_match_dequantized_weight(scheme, kw, device):
    K, N = 1280, 40  # K > the 512 block: several dequantized blocks are summed
    x = RNG.standard_normal((2, 3, K)).astype(np.float32)
    w = (RNG.standard_normal((K, N)) * 0.1).astype(np.float32)
    qw = op.quantize(ts.asarray(w, device=device), scheme=scheme, **kw)
    y = op.matmul(ts.asarray(x, device=device), qw)
    assert y.shape == (2, 3, N)
    np.testing.assert_allclose(y.numpy(), x @ qw.dequantize().numpy(), rtol=1e-4, atol=1e-4)
    wt = np.ascontiguousarray(w.T)
    qt = op.quantize(ts.asarray(wt, device=device), scheme=scheme, **kw)
    bias = RNG.standard_normal(N).astype(np.float32)
    y2 = quantized_linear(ts.asarray(x, device=device), qt, bias=ts.asarray(bias, device=device), activation="gelu")
    from scipy.special import erf
    z = x @ qt.dequantize().numpy().T + bias
    np.testing.assert_allclose(y2.numpy(), 0.5 * z * (1 + erf(z / np.sqrt(2))), rtol=1e-4, atol=1e-4)


@pytest.mark.cpu_only("spies on the CPU's blocked dequantizer (qmatmul._deq_block)")
def test_weight_only_never_dequantizes_the_whole_weight(monkeypatch):
    seen = []
    orig = qm._deq_block

    def spy(xp, q, bufs, bax, k0, k1):
        out = orig(xp, q, bufs, bax, k0, k1)
        seen.append(out.size)
        return out
    monkeypatch.setattr(qm, "_deq_block", spy)
    w = RNG.standard_normal((64, 2048)).astype(np.float32)
    quantized_linear(ts.ones((2, 2048)), op.quantize(ts.asarray(w), scheme="int4_per_group"))
    assert len(seen) == 4 and max(seen) <= 64 * qm.BLOCK


def test_bf16_activation_keeps_its_dtype_and_gradient_flows():
    w = op.quantize(ts.asarray(RNG.standard_normal((8, 16)).astype(np.float32)), scheme="int8_per_channel")
    x = ts.asarray(RNG.standard_normal((4, 16)).astype(np.float32)).astype("bf16")
    assert quantized_linear(x, w).dtype.name == "bf16"
    wd = w.dequantize("fp64")
    check_grad(lambda t: quantized_linear(t, w), RNG.standard_normal((3, 16)))
    check_grad(lambda t: op.matmul(t, w.T), RNG.standard_normal((3, 16)))
    check_grad(lambda t: ts.matmul(t, ts.matrix_transpose(wd)), RNG.standard_normal((3, 16)))


def test_incompatible_scales_and_schemes_raise():
    x, w = ts.ones((4, 8)), ts.ones((8, 6))
    qa_col = op.quantize(x, scheme="int8_per_channel", axis=1)
    qb = op.quantize(w, scheme="int8_per_channel", axis=1)
    with pytest.raises(ts.DTypeError, match=r"\[matmul\] incompatible scales: a int8_per_channel axis=1 \(shape \(4, 8\)\)"):
        op.matmul(qa_col, qb)
    with pytest.raises(ts.DTypeError, match="incompatible scales"):
        op.matmul(op.quantize(x, axis=0), op.quantize(w, scheme="int8_per_channel", axis=0))
    with pytest.raises(ts.DTypeError, match="different schemes"):
        op.matmul(op.quantize(x, axis=0), op.quantize(w, scheme="fp8_e4m3"))
    with pytest.raises(ts.DTypeError, match="incompatible scales"):
        op.matmul(op.quantize(x, scheme="int8_per_group", group_size=4), qb)
    with pytest.raises(ts.ShapeError, match=r"\[matmul\] quantized operands"):
        op.matmul(op.quantize(x, axis=0), op.quantize(ts.ones((7, 6)), axis=1))
    with pytest.raises(ts.ShapeError, match=r"\[matmul\] shapes \(4, 5\)"):
        op.matmul(ts.ones((4, 5)), qb)
    with pytest.raises(ts.DTypeError, match=r"\[int8_matmul\]"):
        int8_matmul(ts.ones((2, 2)), ts.ones((2, 2), dtype="int8"))


@pytest.mark.parametrize("scheme", ["int8_per_channel", "int4_per_group", "int8_dynamic", "fp8_e4m3"])
def test_quantize_model_replaces_linears(scheme):
    from tessera.random import Generator
    m = ts.nn.Sequential(ts.nn.Linear(64, 32, generator=Generator(0)), ts.nn.ReLU(),
                         ts.nn.Linear(32, 8, generator=Generator(1)))
    x = ts.asarray(RNG.standard_normal((5, 64)).astype(np.float32))
    ref = m(x).numpy()
    fp32_bytes = sum(p.nbytes for p in m.parameters())
    ts.nn.quantize_(m, scheme=scheme)
    assert isinstance(m[0], ts.nn.QuantizedLinear) and isinstance(m[2], ts.nn.QuantizedLinear)
    y = m(x).numpy()
    tol = {"int8_per_channel": 0.02, "int8_dynamic": 0.03, "int4_per_group": 0.2, "fp8_e4m3": 0.1}[scheme]
    assert np.abs(y - ref).max() < tol
    q_bytes = sum(l.qweight.nbytes + l.bias.nbytes for l in (m[0], m[2]))
    if scheme != "int4_per_group":
        assert q_bytes < fp32_bytes / 3
    with pytest.raises(ValueError, match=r"\[quantize_\] unknown scheme"):
        ts.nn.quantize_(m, scheme="int2")


@pytest.mark.gpu
def test_cuda_int8_linear_matches_cpu():
    x = RNG.standard_normal((33, 200)).astype(np.float32)
    w = RNG.standard_normal((70, 200)).astype(np.float32)
    outs = []
    for dev in ("cpu", "cuda"):
        xq = op.quantize(ts.asarray(x, device=dev), axis=0)
        wq = op.quantize(ts.asarray(w, device=dev), axis=0)
        outs.append(quantized_linear(xq, wq).numpy())
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-5, atol=1e-5)
