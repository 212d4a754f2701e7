"""The tape engine: accumulation, retain_graph, misuse errors, the version
counter, hooks, retain_grad, grad modes, detach, dtype of gradients through
casts, freeing saved tensors, and autodiff through setitem and the lazy path."""
import gc
import weakref

import numpy as np
import pytest

import tessera as ts
from tessera.autograd.engine import grad
from core_strategies import FUSE_MIN, fusion_mode
from helpers import shares_memory

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device


def leaf(values, dtype="fp64"):
    return ts.asarray(values, dtype=dtype, requires_grad=True)


def test_grad_accumulates_across_backward_calls():
    x = leaf([1.0, 2.0])
    (x * x).sum().backward()
    assert x.grad.tolist() == [2.0, 4.0]
    (x * 3.0).sum().backward()
    assert x.grad.tolist() == [5.0, 7.0]
    x.zero_grad_()
    assert x.grad is None


def test_grad_accumulates_within_one_graph():
    x = leaf([1.0, 2.0])
    y = x * 2.0
    (y + y * x + x).sum().backward()  # x used on three paths
    assert x.grad.tolist() == [2 + 2 * 2 * 1 + 1, 2 + 2 * 2 * 2 + 1]


def test_retain_graph_allows_second_backward():
    x = leaf([1.0, 2.0])
    y = (ts.exp(x) * x).sum()
    y.backward(retain_graph=True)
    g1 = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * g1)


def test_backward_twice_without_retain_graph_raises():
    x = leaf([1.0, 2.0])
    y = (ts.exp(x) * x).sum()
    y.backward()
    with pytest.raises(ts.GradError, match="second time") as e:
        y.backward()
    assert isinstance(e.value, RuntimeError)
    assert "retain_graph=True" in str(e.value)


def test_non_scalar_backward_needs_gradient():
    x = leaf([1.0, 2.0])
    y = x * 2.0
    with pytest.raises(ts.GradError, match=r"\[backward\] gradient can be implicitly created "
                                           r"only for scalar outputs.*\(2,\)"):
        y.backward()
    y.backward(ts.asarray([1.0, 10.0], dtype="fp64"))
    assert x.grad.tolist() == [2.0, 20.0]
    with pytest.raises(ts.ShapeError, match=r"\[backward\] gradient shape \(3,\)"):
        (x * 2.0).backward(ts.ones((3,), dtype="fp64"))


def test_backward_with_numpy_or_list_gradient():
    x = leaf([1.0, 2.0])
    (x * 2.0).backward([1.0, 1.0])
    assert x.grad.tolist() == [2.0, 2.0]


def test_backward_on_tensor_not_requiring_grad_raises():
    x = ts.asarray([1.0, 2.0])
    with pytest.raises(ts.GradError, match="does not require grad"):
        x.sum().backward()
    with ts.no_grad():
        y = (leaf([1.0]) * 2).sum()
    with pytest.raises(ts.GradError, match="does not require grad"):
        y.backward()


def test_inplace_on_saved_tensor_raises_naming_the_op():
    x = leaf([1.0, 2.0])
    y = x * 2.0
    z = y * y           # multiply saves y
    y += 1.0            # y is not a leaf: allowed, but bumps its version
    with pytest.raises(ts.GradError, match=r"saved by 'multiply'.*modified in place") as e:
        z.sum().backward()
    assert "version 1, expected 0" in str(e.value)


def test_inplace_through_view_on_saved_tensor_raises():
    x = leaf([1.0, 2.0, 3.0])
    y = ts.exp(x)       # exp saves its output
    v = y[1:]
    with ts.no_grad():
        v[...] = 0.0    # writes y's storage through a view
    with pytest.raises(ts.GradError, match=r"saved by 'exp'"):
        y.sum().backward()


def test_inplace_on_unsaved_tensor_is_fine():
    x = leaf([1.0, 2.0])
    y = x + 1.0         # add saves nothing
    z = y * 3.0         # multiply saves y? it saves x and y: use a scalar instead
    y2 = x * 1.0
    w = y2 + 0.0
    w += 5.0            # w is saved by nobody
    (z.sum() + w.sum()).backward()
    assert x.grad.tolist() == [4.0, 4.0]


def test_inplace_on_leaf_requiring_grad_raises():
    x = leaf([1.0, 2.0])
    with pytest.raises(ts.GradError, match=r"\[add\] a leaf tensor that requires grad"):
        x += 1.0
    with pytest.raises(ts.GradError, match=r"\[setitem\] a leaf tensor that requires grad"):
        x[0] = 3.0
    assert x.tolist() == [1.0, 2.0]
    with ts.no_grad():
        x += 1.0        # allowed without recording (optimizer steps)
        x[0] = 5.0
    assert x.tolist() == [5.0, 3.0]


def test_inplace_op_on_non_leaf_is_differentiated():
    x = leaf([1.0, 2.0])
    y = x * 1.0
    y *= x              # y = x * x: multiply needs the old y for x's gradient
    y *= 3.0            # y = 3 x^2
    y += 2.0
    y.sum().backward()
    assert x.grad.tolist() == [6.0, 12.0]


def test_inplace_into_plain_tensor_with_grad_operand():
    w = leaf([2.0, 3.0])
    a = ts.asarray([1.0, 5.0], dtype="fp64")
    a *= w              # w's gradient needs a's old value
    assert a.requires_grad and a.tolist() == [2.0, 15.0]
    (a * a).sum().backward()
    assert w.grad.tolist() == [2 * 2.0 * 1.0, 2 * 15.0 * 5.0]


def test_hooks_modify_gradient():
    x = leaf([1.0, 2.0])
    seen = []
    x.register_hook(lambda g: seen.append(g.tolist()))
    h = x.register_hook(lambda g: g * 10.0)
    (x * 3.0).sum().backward()
    assert seen == [[3.0, 3.0]]
    assert x.grad.tolist() == [30.0, 30.0]
    h.remove()
    x.grad = None
    (x * 3.0).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_hook_on_non_leaf():
    x = leaf([1.0, 2.0])
    y = x * 2.0
    y.register_hook(lambda g: g + 1.0)
    (y * y).sum().backward()  # dL/dy = 2y; the hook adds 1; dL/dx = 2 * (2y + 1)
    assert x.grad.tolist() == [2 * (4 + 1), 2 * (8 + 1)]
    with pytest.raises(ts.GradError, match="register_hook"):
        ts.ones((2,)).register_hook(lambda g: g)


def test_retain_grad_on_non_leaf():
    x = leaf([1.0, 2.0])
    y = x * 2.0
    y.retain_grad()
    z = y * 2.0
    (z * y).sum().backward()  # d/dy of 2 y^2 = 4y
    assert y.grad.tolist() == [8.0, 16.0]
    assert z.grad is None     # not retained
    assert x.grad.tolist() == [16.0, 32.0]


def test_no_grad_and_enable_grad_context_managers():
    x = leaf([1.0])
    with ts.no_grad():
        assert not ts.is_grad_enabled()
        y = x * 2.0
        with ts.enable_grad():
            assert ts.is_grad_enabled()
            z = x * 2.0
        assert not ts.is_grad_enabled()
    assert ts.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad and z.grad_fn is not None
    with ts.set_grad_enabled(False):
        assert not (x * 1.0).requires_grad
    try:
        with ts.no_grad():
            raise KeyError
    except KeyError:
        pass
    assert ts.is_grad_enabled()  # restored after an exception


def test_no_grad_and_enable_grad_decorators():
    x = leaf([1.0])

    @ts.no_grad()
    def f(t):
        return t * 2.0

    @ts.enable_grad()
    def g(t):
        return t * 2.0

    assert f.__name__ == "f"
    assert not f(x).requires_grad
    with ts.no_grad():
        assert g(x).requires_grad
    assert ts.is_grad_enabled()


def test_detach_and_is_leaf():
    x = leaf([1.0, 2.0])
    y = x * 2.0
    d = y.detach()
    assert x.is_leaf and not y.is_leaf and d.is_leaf
    assert not d.requires_grad and d.grad_fn is None
    assert shares_memory(d, y)
    (d * x).sum().backward()  # no gradient flows through d
    assert x.grad.tolist() == [2.0, 4.0]
    ts.asarray([1.0]).detach_()
    y.detach_()
    assert y.grad_fn is None and not y.requires_grad


def test_grad_fn_names():
    x = leaf([[1.0, 2.0]])
    assert x.grad_fn is None
    assert (x * 2).grad_fn.name == "multiply"
    assert (x + x).grad_fn.name == "add"
    assert ts.exp(x).grad_fn.name == "exp"
    assert ts.sum(x).grad_fn.name == "sum"
    assert ts.matmul(x, x.mT).grad_fn.name == "matmul"
    assert x[0].grad_fn.name == "getitem"
    assert ts.reshape(x, (2,)).grad_fn.name == "reshape"
    assert x.astype("fp32").grad_fn.name == "cast"
    assert repr((x * 2).grad_fn) == "<multiplyBackward>"


def test_integer_outputs_are_not_differentiable():
    with pytest.raises(ts.GradError, match=r"\[requires_grad_\] only floating and complex"):
        ts.asarray([1, 2]).requires_grad_()
    with pytest.raises(ts.GradError):
        ts.asarray([1, 2], requires_grad=True)
    with pytest.raises(ts.GradError):
        ts.zeros((2,), dtype="bool", requires_grad=True)
    x = leaf([1.5, -2.5])
    for out in (ts.argmax(x), x > 0, ts.floor(x).astype("int32"), ts.isnan(x)):
        assert not out.requires_grad and out.grad_fn is None


def test_requires_grad_off_on_non_leaf_raises():
    y = leaf([1.0]) * 2.0
    with pytest.raises(ts.GradError, match="non-leaf"):
        y.requires_grad_(False)


@pytest.mark.parametrize("src,mid", [("fp32", "bf16"), ("fp32", "fp16"), ("fp64", "fp32"),
                                     ("bf16", "fp32"), ("fp16", "fp64")])
def test_gradient_through_cast_has_input_dtype(src, mid):
    x = ts.asarray([0.5, 1.5, -2.0], dtype=src, requires_grad=True)
    y = x.astype(mid)
    assert y.dtype.name == mid and y.requires_grad
    (y * y).sum().backward()
    assert x.grad.dtype.name == src
    np.testing.assert_allclose(x.grad.numpy().astype(np.float64), [1.0, 3.0, -4.0], rtol=1e-2)


def test_mixed_dtype_op_sends_each_input_its_dtype():
    a = ts.asarray([1.0, 2.0], dtype="fp16", requires_grad=True)
    b = ts.asarray([3.0, 4.0], dtype="fp32", requires_grad=True)
    (a * b).sum().backward()
    assert a.grad.dtype is ts.fp16 and b.grad.dtype is ts.fp32
    assert a.grad.tolist() == [3.0, 4.0] and b.grad.tolist() == [1.0, 2.0]


def test_broadcast_gradient_is_summed_to_input_shape():
    a = leaf(np.ones((3, 1)))
    b = leaf(np.ones((4,)))
    (a * b * 2.0).sum().backward()
    assert a.grad.shape == (3, 1) and a.grad.tolist() == [[8.0]] * 3
    assert b.grad.shape == (4,) and b.grad.tolist() == [6.0] * 4


def test_saved_tensors_freed_after_backward():
    x = leaf(np.linspace(0.1, 1.0, 8))
    y = ts.exp(x)                 # exp saves (a detached alias of) its output
    ref = weakref.ref(y.data)
    z = (y * 2.0).sum()
    del y
    gc.collect()
    assert ref() is not None      # still held by the tape
    z.backward()
    # on CUDA z and the gradient are pending fused groups that read y until they run
    ts.realize(z, x.grad)
    gc.collect()
    assert ref() is None, "the tape should drop saved buffers after backward"


def test_saved_tensors_kept_with_retain_graph():
    x = leaf(np.linspace(0.1, 1.0, 8))
    y = ts.exp(x)
    ref = weakref.ref(y.data)
    z = (y * 2.0).sum()
    del y
    z.backward(retain_graph=True)
    ts.realize(z, x.grad)  # the tape, not a pending group, must be what keeps y
    gc.collect()
    assert ref() is not None
    z.backward()
    ts.realize(x.grad)
    gc.collect()
    assert ref() is None


def test_repeated_indices_accumulate():
    x = leaf([1.0, 2.0, 3.0])
    x[ts.asarray([0, 0, 2, 0])].sum().backward()
    assert x.grad.tolist() == [3.0, 0.0, 1.0]
    y = leaf(np.ones((2, 3)))
    (y[:, ts.asarray([1, 1])] * ts.asarray([[1.0, 2.0]], dtype="fp64")).sum().backward()
    assert y.grad.tolist() == [[0.0, 3.0, 0.0]] * 2


def test_setitem_on_non_leaf_participates():
    x = leaf([1.0, 2.0, 3.0])
    v = leaf([10.0])
    y = x * 2.0
    y[1:2] = v * 3.0
    assert y.tolist() == [2.0, 30.0, 6.0]
    (y * y).sum().backward()
    assert x.grad.tolist() == [8.0, 0.0, 24.0]   # position 1 was overwritten
    assert v.grad.tolist() == [180.0]            # d/dv (3v)^2 = 18 v


def test_setitem_with_requires_grad_value_into_plain_tensor():
    v = leaf([1.0, 2.0])
    y = ts.zeros((4,), dtype="fp64")
    y[1:3] = v * v
    assert y.requires_grad
    (y * 3.0).sum().backward()
    assert v.grad.tolist() == [6.0, 12.0]


def test_grad_function():
    x = leaf([1.0, 2.0])
    w = leaf([3.0, 4.0])
    gx, gw = grad(ts.sum(x * w), [x, w])
    assert gx.tolist() == [3.0, 4.0] and gw.tolist() == [1.0, 2.0]
    assert x.grad is None  # returned, not accumulated
    with pytest.raises(ts.GradError, match="was not used"):
        grad(ts.sum(x * 2.0), [x, w])
    gx, gw = grad(ts.sum(x * 2.0), [x, w], allow_unused=True)
    assert gw is None and gx.tolist() == [2.0, 2.0]
    with pytest.raises(ts.GradError, match=r"\[grad\] output of shape \(2,\) is not a scalar"):
        grad(x * 2.0, x)


def test_backward_inputs_restricts_accumulation():
    x = leaf([1.0])
    w = leaf([2.0])
    (x * w).sum().backward(inputs=[w])
    assert w.grad.tolist() == [1.0] and x.grad is None


def test_grad_create_graph():
    x = leaf([2.0])
    g = grad(ts.sum(x ** 3.0), x, create_graph=True)
    assert g.requires_grad
    g.sum().backward()
    assert x.grad.tolist() == [12.0]


def test_diamond_graph_and_shared_subexpression():
    x = leaf([0.5, 1.5])
    a = ts.sin(x)
    b = a * a
    c = ts.exp(a)
    (b + c).sum().backward()
    xa = np.array([0.5, 1.5])
    np.testing.assert_allclose(x.grad.numpy(), (2 * np.sin(xa) + np.exp(np.sin(xa))) * np.cos(xa))


def test_backward_through_lazy_path_matches_eager():
    rng = np.random.default_rng(0)
    a = rng.uniform(0.5, 1.5, FUSE_MIN + 11)
    grads = []
    for mode in ("default", "none"):
        with fusion_mode(mode):
            x = ts.asarray(a, dtype="fp32", requires_grad=True)
            y = ts.exp(x) * ts.sqrt(x) + x * x
            assert y.is_lazy == (mode == "default")
            ts.sum(ts.tanh(y)).backward()
            grads.append(x.grad.numpy().astype(np.float64))
    # 1 - tanh(y)**2 cancels where tanh(y) is near 1: a 1-ulp difference between the
    # fused kernel's fp32 tanh and NumPy's becomes ~1e-6 absolute in the gradient there.
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-5, atol=5e-6)
    e = np.exp(a) * np.sqrt(a) + a * a
    ref = (1 - np.tanh(e) ** 2) * (np.exp(a) * np.sqrt(a) + np.exp(a) / (2 * np.sqrt(a)) + 2 * a)
    np.testing.assert_allclose(grads[0], ref, rtol=1e-4, atol=5e-6)


def test_inplace_on_saved_lazy_tensor_raises():
    with fusion_mode("default"):
        x = ts.asarray(np.linspace(0.1, 1, FUSE_MIN), dtype="fp32", requires_grad=True)
        y = x * 2.0
        z = ts.exp(y) * y
        y += 1.0
        with pytest.raises(ts.GradError, match="modified in place"):
            z.sum().backward()


def test_to_device_same_device_keeps_graph():
    x = leaf([1.0, 2.0])
    y = (x * 2.0).to(x.device)
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_backward_on_device(device):
    rng = np.random.default_rng(0)
    a = rng.uniform(0.5, 1.5, (4, 3))
    w = rng.uniform(-1, 1, (3, 2))
    x = ts.asarray(a, dtype="fp32", device=device, requires_grad=True)
    W = ts.asarray(w, dtype="fp32", device=device, requires_grad=True)
    loss = ts.sum(ts.tanh(ts.matmul(ts.log(x), W)) ** 2.0)
    loss.backward()
    assert x.grad.device == x.device and W.grad.device == W.device
    h = np.tanh(np.log(a) @ w)
    gz = 2 * h * (1 - h * h)
    np.testing.assert_allclose(x.grad.to("cpu").numpy(), (gz @ w.T) / a, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(W.grad.to("cpu").numpy(), np.log(a).T @ gz, rtol=1e-4, atol=1e-6)
