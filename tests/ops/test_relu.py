"""relu: maximum(x, 0) forward (NaN propagates, ints stay ints, bool refuses) with
one tape node of its own (gradient 0 at 0, passed through at NaN, as torch); against NumPy float64,
finite differences and torch, eagerly and inside fused kernels."""
import numpy as np
import pytest

import tessera as ts
from tessera.autograd.engine import AccumulateGrad
from tessera.profiler import profile
from helpers import assert_close, check_grad, check_grad_grad, host_spans, raises_op

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device

SPECIAL = [np.nan, -np.inf, np.inf, 0.0, -0.0, -1.5, 2.5, 1e-30, -1e-30]


def _values(n=64, seed=0):
    v = np.random.default_rng(seed).uniform(-3, 3, n)
    v[:len(SPECIAL)] = SPECIAL
    return v


@pytest.mark.parametrize("dtype", ["fp64", "fp32", "fp16", "bf16"])
@pytest.mark.parametrize("n", [64, 40000])  # eager NumPy, and the fused C kernel above 32768
def test_values_nan_propagates(dtype, n):
    x = ts.asarray(_values(n), dtype=dtype)
    y = ts.relu(x)
    assert y.dtype is x.dtype
    ref = np.maximum(x.numpy().astype(np.float64), 0)
    assert_close(y, ref)
    assert np.isnan(y.numpy()[0]).all()  # relu(nan) is nan, as torch.relu


@pytest.mark.parametrize("dtype", ["int8", "int32", "int64", "uint8"])
def test_integers_stay_integers(dtype):
    info = np.iinfo(dtype)
    a = np.array([info.min, info.min // 2, 0, 1, info.max], dtype=dtype)
    y = ts.relu(ts.asarray(a))
    assert y.dtype.name == dtype
    np.testing.assert_array_equal(y.numpy(), np.maximum(a, 0))


def test_bool_and_complex_refuse():
    raises_op(ts.DTypeError, "relu", lambda: ts.relu(ts.asarray([True, False])), "bool")
    raises_op(ts.DTypeError, "relu", lambda: ts.relu(ts.asarray([1 + 1j])), "complex64")


@pytest.mark.parametrize("n", [16, 40000])
def test_gradient_is_zero_at_zero_and_passes_at_nan(n):
    v = _values(n)
    x = ts.asarray(v, dtype="fp64", requires_grad=True)
    g = np.random.default_rng(1).standard_normal(n)
    ts.relu(x).backward(ts.asarray(g))
    np.testing.assert_array_equal(x.grad.numpy(), np.where(v <= 0, 0.0, g))
    assert x.grad.numpy()[3] == 0 and x.grad.numpy()[0] == g[0]  # x == 0, x = nan


def test_one_tape_node_saving_the_output():
    x = ts.asarray([-1.0, 2.0], requires_grad=True)
    y = ts.relu(x)
    node = y.grad_fn
    assert node.name == "relu" and type(node.next[0][0]) is AccumulateGrad
    assert len(node.saved) == 1 and node.origins == (("out", 0),)
    with ts.no_grad():
        y += 1.0  # the saved output changed: caught at backward, not a wrong gradient
    with pytest.raises(ts.GradError, match="relu"):
        y.sum().backward()


def test_no_grad_and_non_float_inputs_record_nothing():
    x = ts.asarray([-1.0, 2.0], requires_grad=True)
    with ts.no_grad():
        assert ts.relu(x).grad_fn is None
    assert ts.relu(ts.asarray([-1, 2])).grad_fn is None


def test_gradient_against_finite_differences():
    x = np.random.default_rng(2).uniform(-2, 2, (3, 5))
    x[np.abs(x) < 0.05] = 0.5  # away from the kink
    check_grad(ts.relu, x)
    check_grad(lambda v: ts.relu(v * 2 - 1) * v, x)


def test_grad_of_grad():
    x = np.random.default_rng(3).uniform(-2, 2, (3, 5))
    x[np.abs(x) < 0.05] = 0.5
    check_grad_grad(lambda v: ts.relu(v) * v, x)  # second derivative 2 [x > 0]
    check_grad_grad(lambda v: ts.relu(ts.tanh(v)) ** 3, x)


def test_fused_chain_with_relu_forward_and_backward():
    """Above the CPU fusion size (on CUDA at any size), relu joins the surrounding
    elementwise ops in one generated kernel (as maximum), and so does its adjoint in
    backward."""
    v = np.random.default_rng(4).uniform(-2, 2, (200, 300))
    x = ts.asarray(v, dtype="fp32", requires_grad=True)
    with profile() as tl:
        y = ts.exp(ts.relu(x * 2.0 - 1.0)) * 0.5
        out = y.numpy()
    fused = host_spans(tl, cat="fused")
    assert len(fused) == 1 and "maximum" in fused[0].args["ops"]
    xf = v.astype(np.float32).astype(np.float64)
    assert_close(out, np.exp(np.maximum(xf * 2 - 1, 0)) * 0.5, dtype="fp32")
    y.backward(ts.ones(y.shape))
    grad_ref = np.where(xf * 2 - 1 > 0, np.exp(np.maximum(xf * 2 - 1, 0)) * 0.5 * 2, 0)
    assert_close(x.grad, grad_ref, dtype="fp32")


def test_layer():
    assert ts.nn.ReLU()(ts.asarray([-1.0, 3.0])).tolist() == [0.0, 3.0]


@pytest.mark.torch
@pytest.mark.parametrize("n", [64, 40000])
def test_against_torch(n):
    torch = pytest.importorskip("torch")
    v = _values(n)
    x, xt = ts.asarray(v, requires_grad=True), torch.tensor(v, requires_grad=True)
    y, yt = ts.relu(x), torch.relu(xt)
    np.testing.assert_array_equal(y.numpy(), yt.detach().numpy())
    g = np.random.default_rng(5).standard_normal(n)
    y.backward(ts.asarray(g))
    yt.backward(torch.tensor(g))
    np.testing.assert_array_equal(x.grad.numpy(), xt.grad.numpy())
    np.testing.assert_array_equal(ts.relu(ts.asarray([-3, 4], dtype="int32")).numpy(),
                                  torch.relu(torch.tensor([-3, 4], dtype=torch.int32)).numpy())
