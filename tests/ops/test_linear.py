"""linear: the one-op CPU path (one GEMM, the bias added in place, one tape node)
against NumPy float64, finite differences and torch; the composite path it leaves
to other dtypes, devices and modes; capture/profiling through apply_op; errors."""
import itertools

import numpy as np
import pytest

import tessera as ts
from tessera.autograd.engine import AccumulateGrad, grad
from tessera.errors import GradError
from helpers import assert_close, check_grad, check_grad_grad, raises_op

# Values, gradients, the composite cases, capture and errors run on each device; the
# one-op plan is the CPU's (CUDA runs the composite by design, TRIAGE 2026-12-04 B6), so the
# tests of its tape node and saved tensors are cpu_only.
pytestmark = pytest.mark.usefixtures("device")
ONE_OP_DEVICES = {"cpu"}
ONE_OP = pytest.mark.cpu_only("the one-op linear is a CPU plan; CUDA runs the composite")

# (x shape, out_features): 2-D, leading axes folded, a size-1 axis, an empty batch
SHAPES = [((5, 3), 4), ((2, 5, 3), 4), ((2, 1, 2, 3), 2), ((0, 3), 4)]


def _data(xshape, out, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.uniform(-1, 1, xshape), rng.uniform(-1, 1, (out, xshape[-1])),
            rng.uniform(-1, 1, (out,)))


def _ref(x, w, b=None):
    return x @ w.T + (0.0 if b is None else b)


@pytest.mark.parametrize("dtype", ["fp32", "fp64"])
@pytest.mark.parametrize("xshape,out", SHAPES)
@pytest.mark.parametrize("with_bias", [True, False])
def test_values_against_numpy(dtype, xshape, out, with_bias):
    x, w, b = _data(xshape, out)
    b = b if with_bias else None
    tb = None if b is None else ts.asarray(b, dtype=dtype)
    y = ts.linear(ts.asarray(x, dtype=dtype), ts.asarray(w, dtype=dtype), tb)
    # the one op where the device has it, else the composite
    assert (y._name == "linear") == (y.device.type in ONE_OP_DEVICES) and y.dtype.name == dtype
    assert_close(y, _ref(x, w, b))


@ONE_OP
def test_one_tape_node_straight_to_the_leaves():
    x, w, b = (ts.asarray(a, dtype="fp32", requires_grad=True) for a in _data((5, 3), 4))
    y = ts.linear(x, w, b)
    node = y.grad_fn
    assert node.name == "linear"
    assert all(type(e[0]) is AccumulateGrad for e in node.next)  # no transpose/add nodes


@pytest.mark.parametrize("need", list(itertools.product([False, True], repeat=3)))
@pytest.mark.parametrize("xshape", [(5, 3), (2, 5, 3)])
def test_gradients_for_any_subset_requiring_grad(need, xshape):
    x, w, b = _data(xshape, 4)
    tx, tw, tb = (ts.asarray(a, dtype="fp64", requires_grad=r) for a, r in zip((x, w, b), need))
    y = ts.linear(tx, tw, tb)
    if not any(need):
        assert y.grad_fn is None and not y.requires_grad
        return
    g = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(ts.asarray(g))
    g2, x2 = g.reshape(-1, 4), x.reshape(-1, 3)
    expected = (g @ w, g2.T @ x2, g2.sum(axis=0))
    for t, r, e in zip((tx, tw, tb), need, expected):
        if r:
            assert_close(t.grad, e)
        else:
            assert t.grad is None


@ONE_OP
def test_saves_only_what_the_adjoint_reads():
    x, w, b = _data((5, 3), 4)

    def saved(rx, rw, rb):
        tx, tw, tb = (ts.asarray(a, requires_grad=r) for a, r in zip((x, w, b), (rx, rw, rb)))
        return [s.shape for s in ts.linear(tx, tw, tb).grad_fn.saved]
    assert saved(True, False, False) == [(4, 3)]      # gx = g W: W only
    assert saved(False, True, False) == [(5, 3)]      # gW = g^T x: x only
    assert saved(False, False, True) == []            # gb = sum g: nothing
    assert saved(True, True, True) == [(5, 3), (4, 3)]


@ONE_OP
def test_in_place_write_into_a_saved_operand_is_caught():
    x, w, b = (ts.asarray(a, dtype="fp32", requires_grad=True) for a in _data((5, 3), 4))
    y = ts.linear(x, w, b)
    with ts.no_grad():
        w += 1.0
    with pytest.raises(GradError, match="linear"):
        y.sum().backward()


@pytest.mark.parametrize("xshape", [(4, 3), (2, 3, 3)])
def test_gradient_against_finite_differences(xshape):
    x, w, b = _data(xshape, 4, seed=2)
    check_grad(ts.linear, x, w, b)
    check_grad(lambda x, w: ts.linear(x, w), x, w)


def test_linear_of_an_operand_with_itself():
    a = np.random.default_rng(3).uniform(-1, 1, (3, 3))
    check_grad(lambda m: ts.linear(m, m), a)
    check_grad(lambda m, b: ts.linear(m, m, b), a, np.ones(3))


@pytest.mark.parametrize("xshape", [(5, 3), (2, 2, 3)])
def test_grad_of_grad(xshape):
    # tanh: linear's own second derivative is 0; its adjoint must still carry the
    # mixed terms (d gx / dW, d gW / dx) and pass create_graph through
    check_grad_grad(lambda x, w, b: ts.tanh(ts.linear(x, w, b)), *_data(xshape, 4, seed=4))


def test_fast_path_is_bit_equal_to_the_composite():
    x, w, b = (ts.asarray(a, dtype="fp32") for a in _data((64, 48), 32))
    composite = ts.matmul(x, ts.matrix_transpose(w)) + b
    np.testing.assert_array_equal(ts.linear(x, w, b).numpy(), composite.numpy())


def _sum_to(g, shape):
    """Undo broadcasting: sum g down to `shape` (the engine's rule, in NumPy)."""
    g = g.sum(axis=tuple(range(g.ndim - len(shape))))
    return g.sum(axis=tuple(i for i, d in enumerate(shape) if d == 1), keepdims=True) \
        .reshape(shape)


@pytest.mark.parametrize("case", ["fp16", "mixed", "x_1d", "w_1d", "bias_2d", "bias_0d",
                                  "bias_full", "aggressive", "autocast"])
def test_composite_cases(case):
    """What the one op does not take runs as matmul(x, W.T) + b, with the same values."""
    x, w, b = _data((5, 3), 4, seed=5)
    dts = {"fp16": ("fp16",) * 3, "mixed": ("fp32", "fp64", "fp32")}.get(case, ("fp32",) * 3)
    if case == "x_1d":
        x = x[0]
    elif case == "w_1d":
        w, b = w[0], b[0]
    elif case == "bias_2d":
        b = b[None]
    elif case == "bias_0d":
        b = np.asarray(b[0])
    elif case == "bias_full":
        b = np.random.default_rng(6).uniform(-1, 1, (5, 4))
    tx, tw, tb = (ts.asarray(a, dtype=d, requires_grad=True) for a, d in zip((x, w, b), dts))
    if case == "aggressive":
        with ts.fusion.mode("aggressive"):
            y = ts.linear(tx, tw, tb).realize()
    elif case == "autocast":
        with ts.autocast("bf16"):
            y = ts.linear(tx, tw, tb)
    else:
        y = ts.linear(tx, tw, tb)
    assert y._name != "linear"
    tol = "bf16" if case in ("fp16", "autocast") else "fp32"
    y_ref = x @ (w.T if w.ndim == 2 else w) + b
    assert_close(y, y_ref, dtype=tol)
    g = np.random.default_rng(7).standard_normal(y.shape)
    y.backward(ts.asarray(g, dtype=y.dtype))
    gw = g.reshape(-1, 4).T @ x.reshape(-1, 3) if w.ndim == 2 else g.reshape(-1) @ x.reshape(-1, 3)
    assert_close(tx.grad, g[..., None] * w if w.ndim == 1 else g @ w, dtype=tol)
    assert_close(tw.grad, gw, dtype=tol)
    assert_close(tb.grad, _sum_to(g, b.shape), dtype=tol)


@ONE_OP
def test_event_sinks_see_one_linear_op():
    from tessera.profiler import profile
    x, w, b = (ts.asarray(a, dtype="fp32", requires_grad=True) for a in _data((8, 3), 4))
    with profile() as tl:
        y = ts.linear(x, w, b)
    assert [s.name for s in tl.filter(cat="op")] == ["linear"]
    with profile() as tl:
        y.backward(ts.ones(y.shape))
    assert "linear.backward" in {s.name for s in tl.filter(cat="backward")}
    assert_close(w.grad, np.ones((8, 4)).T @ x.numpy().astype(np.float64))


def test_capture_replays_linear_with_new_inputs():
    from tessera.graph import capture
    x, w, b = (ts.asarray(a, dtype="fp32") for a in _data((6, 3), 4))
    g = capture(lambda x: ts.relu(ts.linear(x, w, b)), x)
    x2 = ts.asarray(np.random.default_rng(7).uniform(-1, 1, (6, 3)).astype(np.float32))
    np.testing.assert_array_equal(g(x2).numpy(), ts.relu(ts.linear(x2, w, b)).numpy())


def test_capture_of_a_training_step_with_linear():
    from tessera.graph import capture
    rng = np.random.default_rng(8)
    params = [ts.asarray(rng.uniform(-1, 1, s).astype(np.float32), requires_grad=True)
              for s in ((5, 3), (5,))]

    def step(x):
        for p in params:
            p.grad = None
        loss = ts.sum(ts.relu(ts.linear(x, *params)) ** 2)
        loss.backward()
        return loss
    x1, x2 = (ts.asarray(rng.uniform(-1, 1, (4, 3)).astype(np.float32)) for _ in range(2))
    g = capture(step, x1)
    replayed = float(g(x2))
    grads = [p.grad.numpy().copy() for p in params]
    assert replayed == float(step(x2))
    for p, gr in zip(params, grads):
        np.testing.assert_array_equal(p.grad.numpy(), gr)


def test_shape_errors_name_linear_and_both_shapes():
    x, w = ts.ones((5, 3)), ts.ones((4, 2))
    raises_op(ts.ShapeError, "linear", lambda: ts.linear(x, w), "(5, 3)", "(4, 2)")
    raises_op(ts.ShapeError, "linear", lambda: ts.linear(ts.ones(()), w), "()", "(4, 2)")
    raises_op(ts.ShapeError, "linear", lambda: ts.linear(x, ts.ones((2, 4, 3))), "(2, 4, 3)")
    raises_op(ts.ShapeError, "linear", lambda: ts.linear(x, ts.ones((4, 3)), ts.ones(3)),
              "(3,)", "(5, 4)")
    raises_op(ts.ShapeError, "linear", lambda: ts.linear(x, ts.ones((4, 3)), ts.ones((2, 5, 4))),
              "(2, 5, 4)")


@pytest.mark.torch
@pytest.mark.parametrize("xshape", [(5, 3), (2, 5, 3)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_against_torch_first_and_second_order(xshape, with_bias):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x, w, b = _data(xshape, 4, seed=9)
    b = b if with_bias else None
    tsv = [ts.asarray(a, requires_grad=True) for a in (x, w, b) if a is not None]
    thv = [torch.tensor(a, requires_grad=True) for a in (x, w, b) if a is not None]
    y, yt = ts.linear(*tsv), F.linear(*thv)
    assert_close(y, yt.detach().numpy())
    # a loss whose second derivative is not zero, and its double backward
    gs = grad(ts.sum(ts.tanh(y)), tsv, create_graph=True)
    gt = torch.autograd.grad(torch.tanh(yt).sum(), thv, create_graph=True)
    for a, e in zip(gs, gt):
        assert_close(a, e.detach().numpy())
    hs = grad(sum(ts.sum(g * g) for g in gs), tsv)
    ht = torch.autograd.grad(sum((g * g).sum() for g in gt), thv)
    for a, e in zip(hs, ht):
        assert_close(a, e.numpy())


@pytest.mark.parametrize("xshape", [(5, 4), (2, 3, 4)])
@pytest.mark.parametrize("needs", [(True, True, True), (False, True, True), (True, False, False),
                                   (False, False, True)])
@pytest.mark.parametrize("bias", [True, False])
def test_plain_backward_on_buffers_matches_the_tessera_op_adjoint(xshape, needs, bias):
    """A plain backward runs linear's adjoint on the buffers; create_graph=True runs
    the same adjoint in tessera ops. Same gradients either way."""
    rng = np.random.default_rng(11)
    vals = [rng.standard_normal(xshape), rng.standard_normal((6, 4)), rng.standard_normal(6)]
    grads = []
    for create_graph in (False, True):
        x, w, b = (ts.asarray(v, requires_grad=r) for v, r in zip(vals, needs))
        b = b if bias else None
        args = [t for t in (x, w, b) if t is not None and t.requires_grad]
        if not args:
            pytest.skip("nothing requires grad")
        out = ts.linear(x, w, b)
        gs = ts.autograd.grad((out * out).sum(), args, create_graph=create_graph)
        grads.append([g.numpy() for g in gs])
    for fast, general in zip(*grads):
        np.testing.assert_allclose(fast, general, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shapes", [((8, 16), (40, 16)), ((64, 784), (256, 784)),
                                    ((2, 3, 16), (40, 16)), ((100, 16), (400, 16))])
def test_small_batch_wide_layer_form(dtype, shapes):
    """Small batches through wide layers compute (W x^T)^T + b into a C-ordered
    output: the values and the layout are those of x W^T + b."""
    rng = np.random.default_rng(2)
    xs, ws = shapes
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in (xs, ws, ws[:1]))
    out = ts.linear(ts.asarray(x), ts.asarray(w), ts.asarray(b))
    want = x.astype(np.float64) @ w.T.astype(np.float64) + b
    tol = 1e-4 if dtype is np.float32 else 1e-12
    np.testing.assert_allclose(out.numpy(), want, rtol=tol, atol=tol * np.sqrt(xs[-1]))
    assert out.data.flags.c_contiguous and out.shape == xs[:-1] + ws[:1]
