"""Gradients across the PyTorch boundary, both ways, against all-PyTorch
references (float64, so the comparison is tight)."""
import numpy as np
import pytest
from helpers import check_grad

import tessera as ts
from tessera import interop
from tessera.errors import DTypeError

torch = pytest.importorskip("torch")

# Every test runs on each device, torch's tensors on the matching torch device.
pytestmark = pytest.mark.usefixtures("device")


@pytest.fixture
def tdev(device):
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("this torch has no CUDA")
    return device


def _weights(seed=0, dev="cpu"):
    g = torch.Generator().manual_seed(seed)
    shapes = {"w1": (5, 4), "b1": (4,), "w2": (4, 3), "b2": (3,), "x": (6, 5), "y": (6, 3)}
    return {k: torch.randn(*s, generator=g, dtype=torch.float64).to(dev)
            for k, s in shapes.items()}


def _torch_reference(W):
    p = {k: v.clone().requires_grad_(k not in ("x", "y")) for k, v in W.items()}
    h = torch.tanh(p["x"] @ p["w1"] + p["b1"])
    out = torch.sigmoid(h @ p["w2"] + p["b2"])
    loss = ((out - p["y"]) ** 2).mean()
    loss.backward()
    return loss.item(), {k: p[k].grad.cpu().numpy() for k in ("w1", "b1", "w2", "b2")}


def _ts(t, grad=True):
    return ts.asarray(t.cpu().numpy(), requires_grad=grad)  # on the default device (the test's)


def test_tessera_layer_torch_layer_tessera_loss(tdev):
    W = _weights(dev=tdev)
    ref_loss, ref = _torch_reference(W)
    w1, b1 = _ts(W["w1"]), _ts(W["b1"])
    layer2 = torch.nn.Linear(4, 3, dtype=torch.float64, device=tdev)
    with torch.no_grad():
        layer2.weight.copy_(W["w2"].T)
        layer2.bias.copy_(W["b2"])
    torch_block = interop.from_torch_function(lambda h: torch.sigmoid(layer2(h)), name="block")
    h = ts.tanh(_ts(W["x"], False) @ w1 + b1)
    out = torch_block(h)
    assert out.grad_fn is not None and out.grad_fn.name == "torch:block"
    loss = ts.mean((out - _ts(W["y"], False)) ** 2)
    loss.backward()
    assert abs(loss.item() - ref_loss) < 1e-12
    np.testing.assert_allclose(w1.grad.numpy(), ref["w1"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b1.grad.numpy(), ref["b1"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer2.weight.grad.cpu().numpy().T, ref["w2"], rtol=1e-10,
                               atol=1e-12)
    np.testing.assert_allclose(layer2.bias.grad.cpu().numpy(), ref["b2"], rtol=1e-10, atol=1e-12)


def test_torch_layer_tessera_layer_torch_loss(tdev):
    W = _weights(1, tdev)
    ref_loss, ref = _torch_reference(W)
    layer1 = torch.nn.Linear(5, 4, dtype=torch.float64, device=tdev)
    with torch.no_grad():
        layer1.weight.copy_(W["w1"].T)
        layer1.bias.copy_(W["b1"])
    w2, b2 = _ts(W["w2"]), _ts(W["b2"])
    ts_block = interop.torch_function(lambda h: ts.sigmoid(h @ w2 + b2), name="block")
    out = ts_block(torch.tanh(layer1(W["x"])))
    loss = ((out - W["y"]) ** 2).mean()
    loss.backward()
    assert abs(loss.item() - ref_loss) < 1e-12
    np.testing.assert_allclose(layer1.weight.grad.cpu().numpy().T, ref["w1"], rtol=1e-10,
                               atol=1e-12)
    np.testing.assert_allclose(layer1.bias.grad.cpu().numpy(), ref["b1"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w2.grad.numpy(), ref["w2"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b2.grad.numpy(), ref["b2"], rtol=1e-10, atol=1e-12)


def test_torch_function_multiple_inputs_outputs_and_gradcheck(tdev):
    def f(a, b, scale):
        return ts.sin(a) * b * scale, ts.sum(a * a)
    tf = interop.torch_function(f)
    a = torch.randn(3, 2, dtype=torch.float64, device=tdev, requires_grad=True)
    b = torch.randn(2, dtype=torch.float64, device=tdev, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: tf(a, b, 2.0), (a, b))
    c = torch.randn(2, dtype=torch.float64, device=tdev)  # no grad: its slot gets None
    p, q = tf(a, c, 1.0)
    (p.sum() + q).backward()
    np.testing.assert_allclose(a.grad.cpu().numpy(),
                               (torch.cos(a) * c + 2 * a).detach().cpu().numpy())


def test_from_torch_function_vs_finite_differences(tdev):
    f = interop.from_torch_function(lambda a, b: torch.tanh(a) @ b)
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(3, 4)), rng.normal(size=(4, 2))
    check_grad(lambda a, b: f(a, b) ** 2, A, B)


def test_zero_copy_inside_wrappers_and_non_tensor_outputs(tdev):
    seen = {}

    def f(x):  # the buffer's address: NumPy's ctypes, CuPy's device pointer
        seen["ptr"] = x.data.ctypes.data if x.device.type == "cpu" else x.data.data.ptr
        return x * 2
    t = torch.ones(3, device=tdev, requires_grad=True)
    interop.torch_function(f)(t).sum().backward()
    assert seen["ptr"] == t.data_ptr() and t.grad.tolist() == [2.0, 2.0, 2.0]
    bad = interop.torch_function(lambda x: 3.0)
    with pytest.raises(DTypeError, match=r"\[torch_function\] <lambda> returned a float"):
        bad(torch.ones(1, device=tdev))
    bad2 = interop.from_torch_function(lambda x: 3.0)
    with pytest.raises(DTypeError, match=r"\[from_torch_function\] torch:<lambda> returned a float"):
        bad2(ts.ones(1))


def test_from_torch_function_guards_in_place_writes(tdev):
    f = interop.from_torch_function(lambda a: a * a)
    x = ts.asarray([1.0, 2.0], requires_grad=True)
    y = x * 1.0
    z = f(y)
    y[0] = 5.0  # y is saved by the torch op's node
    with pytest.raises(ts.GradError, match="modified in place"):
        z.sum().backward()


def test_integer_outputs_are_not_differentiable(tdev):
    tf = interop.torch_function(lambda a: (a * 2, ts.argmax(a)))
    a = torch.randn(4, device=tdev, requires_grad=True)
    v, i = tf(a)
    assert not i.requires_grad and v.requires_grad
    v.sum().backward()
    assert a.grad.tolist() == [2.0] * 4
