"""The decisions `ops.elementwise.apply` makes before computing: which calls the lazy
fusion path may take (TRIAGE 2026-12-04 A7); where the tensors an adjoint builds from
Python scalars live (A8); what NumPy scalars and unconvertible operands become on a GPU
(A17: the error type must not depend on the device).

On CUDA every elementwise op is lazy (FUSE_MIN_SIZE = 1); on the CPU from FUSE_MIN
elements up, so the values tests run at that size on every device.
"""
import numpy as np
import pytest

import tessera as ts
from tessera import dtypes as D
from tessera.errors import DTypeError
from tessera.fusion import ir
from tessera.ops import elementwise as ew

from core_strategies import FUSE_MIN
from helpers import cuda_typed_cpu_device

ALL = [d for d in D.ALL_DTYPES]


def _ir_accepts(op, operand_dts, in_dt, out_dt):
    """Whether the fusion IR builds this call's node as `fusion.execute.build_ir` would:
    an input per operand, cast to the promoted dtype, then the op node."""
    try:
        srcs = []
        for k, d in enumerate(operand_dts):
            n = ir.inp(k, d.name)
            want = "bool" if op == "where" and k == 0 else in_dt.name
            srcs.append(n if n.dtype == want else ir.Node("cast", want, (n,), None))
        ir.Node(op, out_dt.name, tuple(srcs), None)
        return True
    except (TypeError, ValueError, KeyError):
        return False


@pytest.mark.cpu_only("compares two tables (the dtype rules and the fusion IR); computes nothing")
@pytest.mark.parametrize("name", sorted(ew.OPS))
def test_fusable_is_what_the_fusion_ir_accepts(name):
    op = ew.OPS[name]
    for dt in ALL:
        dts = (D.bool_, dt, dt) if name == "where" else (dt,) * op.arity
        args = [ts.zeros((1,), dtype=d) for d in dts]
        try:
            out_dt, in_dt = ew._rule_for(op, args)
        except DTypeError:
            continue  # refused at the call on every path
        got = ew._fusable(op, dts, in_dt, out_dt)
        assert got == _ir_accepts(name, dts, in_dt, out_dt), (name, dt.name, got)


@pytest.mark.parametrize("name, dtype", [("isnan", "int32"), ("isinf", "bool"), ("floor", "bool"),
                                         ("logical_not", "complex64"), ("isfinite", "uint8")])
def test_ops_the_fusion_ir_lacks_run_eagerly(device, name, dtype):
    xn = (np.arange(FUSE_MIN + 3) % 3).astype(dtype)
    got = getattr(ts, name)(ts.asarray(xn, device=device)).numpy()
    np.testing.assert_array_equal(got, getattr(np, name)(xn))


def test_complex_operands_of_a_bool_op_run_eagerly(device):
    # logical_and's promoted and result dtypes are both bool: only the operands are complex
    xn = (np.arange(FUSE_MIN + 3) % 3).astype(np.complex64)
    x = ts.asarray(xn, device=device)
    np.testing.assert_array_equal(ts.logical_and(x, x).numpy(), np.logical_and(xn, xn))


@pytest.fixture
def foreign_default(monkeypatch):
    """The default device set to one no test tensor is on (a GPU host's default is cuda:0
    while a test's tensors may be on the CPU): a "cuda"-typed device on the NumPy backend."""
    from tessera import device as devmod
    dev = cuda_typed_cpu_device()
    monkeypatch.setattr(devmod, "_default", dev)
    return dev


@pytest.mark.parametrize("base", [2.0, 0.5, 0.0, -1.5])
def test_rpow_scalar_gradient_stays_on_the_operand_device(device, foreign_default, base):
    xn = np.array([1.0, 2.0, 3.0]) if base <= 0 else np.array([-1.0, 0.5, 2.0])
    x = ts.asarray(xn, dtype="fp64", device=device, requires_grad=True)
    (base ** x).sum().backward()
    assert x.grad.device == x.device
    ref = base ** xn * (np.log(base) if base > 0 else 0.0)  # 0 where log is undefined (PyTorch)
    np.testing.assert_allclose(x.grad.numpy(), ref, rtol=1e-12)


def _devices(device, stand_in):
    # the test's device, and a "cuda"-typed one that runs anywhere (the host-data check
    # keys on the device type)
    return [ts.asarray(np.zeros(0), device=device).device, stand_in]


@pytest.mark.parametrize("scalar, dtype", [(np.float32(2.0), "fp32"), (np.float16(2.0), "fp16"),
                                           (np.int8(2), "fp16"), (np.bool_(True), "fp16"),
                                           (np.float64(2.0), "fp16")])
def test_numpy_scalars_are_values_on_every_device(device, foreign_default, scalar, dtype):
    for dev in _devices(device, foreign_default):
        x = ts.asarray([1.0, 2.0], dtype="fp16", device=dev)
        out = x * scalar
        assert out.device is dev and out.dtype.name == dtype, (dev, out.dtype)
        np.testing.assert_array_equal(out.numpy(), np.array([1.0, 2.0]) * float(scalar))


@pytest.mark.parametrize("bad", ["a", object(), ["a"], b"x"], ids=["str", "object", "list-str", "bytes"])
def test_unconvertible_operand_raises_the_cpu_error_on_every_device(device, foreign_default, bad):
    errors = []
    for dev in _devices(device, foreign_default):
        with pytest.raises(TypeError) as e:
            ts.ones(3, device=dev) * bad
        errors.append(type(e.value))
    assert errors[0] is errors[1] and issubclass(errors[0], DTypeError), errors


@pytest.mark.cpu_only("a cuda-typed stand-in device on the NumPy backend; runs anywhere")
def test_host_arrays_are_still_refused_on_a_gpu(foreign_default):
    from tessera.errors import DeviceError
    x = ts.ones(3, device=foreign_default)
    for host in (np.ones(3), [1.0, 2.0, 3.0]):
        with pytest.raises(DeviceError, match=r"^\[multiply\] got host data"):
            x * host
