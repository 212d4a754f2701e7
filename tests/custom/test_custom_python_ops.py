"""Custom ops written in tessera ops: forward vs NumPy, automatic gradients vs finite
differences, the tape, autocast, check_numerics, graph capture and the Graph IR."""
import shutil
import subprocess

import numpy as np
import pytest

import tessera as ts
from tessera import op
from tessera.custom import RegistrationError, registered, unregister
from tessera.numerics import check_numerics

from helpers import assert_close, check_grad, rand

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device


def parse_mlir(text):
    mlir_opt = shutil.which("mlir-opt-15") or shutil.which("mlir-opt")
    if mlir_opt is None:
        pytest.skip("mlir-opt(-15) not installed: cannot check that the IR parses")
    p = subprocess.run([mlir_opt, "--allow-unregistered-dialect", "-"], input=text,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, f"mlir-opt rejected the dump:\n{p.stderr}\n{text}"
    return p.stdout


@pytest.fixture
def fresh():
    """Names registered by a test are removed afterwards."""
    before = set(registered())
    yield
    for n in set(registered()) - before:
        unregister(n)


def test_python_op_forward_and_grad(fresh, device):
    @op.custom("t_softplus")
    def softplus(x):
        return ts.log(1 + ts.exp(x))
    x, a = rand((3, 5), "fp64", device)
    assert_close(softplus(x), np.log1p(np.exp(a)))
    assert softplus(x)._name == "custom.t_softplus"
    check_grad(lambda t: softplus(t), a)


def test_two_inputs_attrs_and_int_input(fresh):
    @op.custom("t_scaled_gather")
    def f(x, idx, scale=1.0):
        return ts.take(x, idx) * scale
    x, a = rand((6,), "fp64", requires_grad=True)
    idx = ts.asarray([0, 2, 2, 5])
    y = f(x, idx, scale=3.0)
    assert_close(y, a[[0, 2, 2, 5]] * 3.0)
    y.sum().backward()
    assert_close(x.grad, np.array([3, 0, 6, 0, 0, 3.0]))


def test_second_order(fresh):
    cube = op.custom("t_cube", lambda x: x * x * x)
    d2 = ts.grad(lambda x: ts.grad(lambda y: cube(y).sum())(x).sum())
    assert_close(d2(ts.asarray([0.5, 2.0], dtype="fp64")), np.array([3.0, 12.0]))


def test_user_adjoint_is_used(fresh):
    calls = []

    @op.custom("t_square")
    def sq(x):
        return x * x

    @sq.adjoint
    def _(g, x):
        calls.append(1)
        return 2 * x * g
    x = ts.asarray([1.0, -3.0], requires_grad=True)
    sq(x).sum().backward()
    assert calls and x.grad.tolist() == [2.0, -6.0]


def test_adjoint_receives_out(fresh):
    def adj(g, x, out):
        return g * out  # d exp = exp
    e = op.custom("t_exp", lambda x: ts.exp(x), adjoint=adj)
    check_grad(lambda t: e(t), np.array([0.1, -0.7, 1.2]))


def test_autocast_declared_and_overridden(fresh):
    lo = op.custom("t_lo", lambda x: x * 2, autocast="lower")
    keep = op.custom("t_keep", lambda x: x * 2)
    x = ts.ones((4,))
    with ts.autocast("bf16"):
        assert lo(x).dtype.name == "bf16"
        assert keep(x).dtype.name == "fp32"
    with ts.autocast("bf16", policy={"custom.t_keep": "lower", "custom.t_lo": None}):
        assert keep(x).dtype.name == "bf16"
        assert lo(x).dtype.name == "fp32"
    # inside the body autocast is off: the op is one unit
    mm = op.custom("t_mm", lambda a, b: a @ b)
    with ts.autocast("bf16"):
        assert mm(ts.ones((2, 3)), ts.ones((3, 2))).dtype.name == "fp32"


def test_check_numerics_names_the_custom_op(fresh):
    lg = op.custom("t_log", lambda x: ts.log(x))
    with pytest.raises(ts.NumericsError, match=r"custom\.t_log produced 1 NaN"):
        with np.errstate(invalid="ignore"), check_numerics():
            lg(ts.asarray([1.0, -1.0]))


def test_graph_capture_replay_and_ir(fresh):
    f = op.custom("t_filter", lambda x: ts.exp(x) * 0.5 + x, signature="(tensor<8xf32>) -> tensor<8xf32>")

    def prog(x):
        return f(x * 2).sum()
    x = ts.asarray(np.linspace(-1, 1, 8).astype(np.float32))
    g = ts.graph.capture(prog, x)
    x2 = ts.asarray(np.linspace(0, 3, 8).astype(np.float32))
    assert_close(g(x2), prog(x2).numpy())
    ir = g.dump_ir(level="graph", print_=False)
    line = [ln for ln in ir.splitlines() if '"tessera.op"' in ln]
    assert line and 'name = "t_filter"' in line[0] and "(tensor<8xf32>) -> tensor<8xf32>" in line[0]
    out = parse_mlir(g.dump_ir(print_=False))
    assert '"tessera.op"' in out and 'name = "t_filter"' in out
    assert parse_mlir(out) == out  # the round trip is stable


def test_body_wrong_shape_or_dtype(fresh):
    bad = op.custom("t_bad", lambda x: x[:1], out=lambda x: (x.shape, x.dtype))
    with pytest.raises(ts.ShapeError, match=r"\[t_bad\] the body returned shape \(1,\) fp32; .* says \(3,\) fp32"):
        bad(ts.ones((3,)))
    badt = op.custom("t_badt", lambda x: x.astype("fp64"), signature="(tensor<3xf32>) -> tensor<3xf32>")
    with pytest.raises(ts.DTypeError, match=r"\[t_badt\].*fp64.*fp32"):
        badt(ts.ones((3,)))
    notensor = op.custom("t_none", lambda x: 3)
    with pytest.raises(TypeError, match=r"\[t_none\] the body must return one tessera Tensor"):
        notensor(ts.ones((3,)))


def test_register_twice_and_bad_names(fresh):
    op.custom("t_dup", lambda x: x)
    with pytest.raises(RegistrationError, match=r"'t_dup' is already registered"):
        op.custom("t_dup", lambda x: x + 1)
    assert registered("t_dup")(ts.ones(2)).tolist() == [1.0, 1.0]  # the first one stays
    op.custom("t_dup", lambda x: x + 1, replace=True)
    assert registered("t_dup")(ts.ones(2)).tolist() == [2.0, 2.0]
    for bad in ("", "1abc", "a b", None):
        with pytest.raises(RegistrationError, match=r"\[op.custom\] name must be an identifier"):
            op.custom(bad, lambda x: x)
    with pytest.raises(RegistrationError, match=r"\[t_ac\] autocast must be"):
        op.custom("t_ac", lambda x: x, autocast="fast")
    assert "t_ac" not in registered()
    with pytest.raises(RegistrationError, match=r"signature"):
        op.custom("t_sig", lambda x: x, signature="tensor<3xf32>")
    with pytest.raises(RegistrationError, match=r"\[t_arity\] the body takes 1 positional tensor\(s\), the signature"):
        op.custom("t_arity", lambda x: x, signature="(tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>")
    assert "t_sig" not in registered() and "t_arity" not in registered()


def test_second_adjoint_rejected_and_missing_adjoint(fresh):
    f = op.custom("t_adj2", lambda x: x, adjoint=lambda g, x: g)
    with pytest.raises(RegistrationError, match="already has an adjoint"):
        f.adjoint(lambda g, x: g)


def test_adjoint_wrong_gradient_shape(fresh):
    f = op.custom("t_badgrad", lambda x: x * 2, adjoint=lambda g, x: g.sum())
    x = ts.ones((3,), requires_grad=True)
    with pytest.raises(ts.ShapeError, match=r"\[t_badgrad\] the adjoint returned a gradient of shape \(\) "
                                            r"for input 0 of shape \(3,\)"):
        f(x).sum().backward()


def test_device_mismatch_and_no_tensor(fresh):
    f = op.custom("t_add", lambda a, b: a + b)
    with pytest.raises(ts.ShapeError, match=r"\[t_add\] takes at least one tensor"):
        f()
