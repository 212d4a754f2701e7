"""check_numerics: the op-level check and the global mode find the op (and the
user's line) that first made a NaN/Inf: eager, inside fused groups, in backward,
in in-place writes, in bf16."""
import sys
import warnings

import numpy as np
import pytest

import tessera as ts
from tessera import numerics
from tessera._config import STATE
from tessera.errors import NumericsError
from tessera.numerics import check_numerics, set_check_numerics

BIG = 40000  # above the CPU fusion threshold: these ops go through the lazy buffer

# Every test runs on each device. On CUDA every elementwise result is lazy and the check
# reads device flags at the next host read, so a test that expects a bad value to be found
# reads the result (on the CPU the small ops raise at once, before the read).
pytestmark = pytest.mark.usefixtures("device")
FAKE_GPU = pytest.mark.cpu_only("drives check_numerics' CUDA path with the NumPy backend posing "
                                "as a cuda device (the tests above run it on real CUDA)")


@pytest.fixture(autouse=True)
def _quiet_numpy():
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield
    assert STATE.event_sinks == [] and not STATE.check_numerics


def _line():
    return sys._getframe(1).f_lineno


def _big(value, dtype=np.float32):
    return ts.asarray(np.full(BIG, value, dtype))


# -- op-level ---------------------------------------------------------------------
def test_returns_tensor_unchanged_when_finite():
    x = ts.asarray([1.0, 2.0, 3.0])
    assert check_numerics(x) is x
    i = ts.asarray([1, 2])
    assert check_numerics(i) is i
    lazy = _big(2.0) * 3
    assert check_numerics(lazy) is lazy and float(lazy[0]) == 6.0


def test_error_gives_counts_first_index_producer_and_line():
    x = ts.asarray([[1.0, 2.0, np.nan], [np.inf, -np.inf, np.nan]])
    y = x * 2
    with pytest.raises(NumericsError) as ei:
        line = _line() + 1
        check_numerics(y, "after scaling")
    msg = str(ei.value)
    assert "2 NaN, 1 +Inf, 1 -Inf" in msg and "index (0, 2)" in msg
    assert "multiply" in msg and "after scaling" in msg and "shape (2, 3)" in msg
    assert ei.value.index == (0, 2) and ei.value.site[1] == line
    assert isinstance(ei.value, ValueError)


def test_op_level_names_the_lazy_producer():
    y = ts.log(_big(-1.0))
    with pytest.raises(NumericsError, match=r"log produced 40000 NaN"):
        check_numerics(y)


def test_op_level_rejects_non_tensors():
    with pytest.raises(TypeError, match="check_numerics"):
        check_numerics(np.ones(3))


# -- the mode: switching ----------------------------------------------------------------
def test_off_by_default_and_costs_no_sink():
    assert STATE.check_numerics is False and STATE.event_sinks == []
    ts.log(ts.asarray([-1.0]))  # no error when off


def test_context_manager_decorator_enable_disable():
    with check_numerics():
        assert STATE.check_numerics and len(STATE.event_sinks) == 1
        with check_numerics(overflow=("fp16",)):
            assert STATE.check_numerics_opts == ("fp16",)
        assert STATE.check_numerics and STATE.check_numerics_opts is None
    assert STATE.event_sinks == []

    @check_numerics()
    def f(x):
        return ts.sqrt(x)
    with pytest.raises(NumericsError, match="sqrt"):
        f(ts.asarray([-1.0])).numpy()
    f(ts.asarray([4.0])).numpy()
    check_numerics.enable()
    try:
        with pytest.raises(NumericsError):
            ts.log(ts.asarray([-1.0])).numpy()
    finally:
        check_numerics.disable()
    set_check_numerics(True)
    set_check_numerics(False)


# -- forward, eager (small tensors) -------------------------------------------------------
@pytest.mark.parametrize("fn, op, kind", [
    (lambda x: ts.log(x - 3), "log", "NaN"),
    (lambda x: ts.sqrt(-x), "sqrt", "NaN"),
    (lambda x: 1.0 / (x - 1), "divide", "+Inf"),
    (lambda x: ts.asin(x), "asin", "NaN"),
    (lambda x: ts.exp(x * 100), "exp", "+Inf"),
    (lambda x: ts.asarray([[3e38, 3e38]]) @ ts.reshape(x * 1e30, (2, 1)), "matmul", "+Inf"),
    (lambda x: ts.sum(x * 1.5e38), "sum", "+Inf"),
])
def test_forward_eager_names_op_and_line(fn, op, kind):
    x = ts.asarray([1.0, 2.0])
    with pytest.raises(NumericsError) as ei:
        with check_numerics():
            fn(x).numpy()
    e = ei.value
    assert e.op == op and f"{op} produced" in str(e)
    assert e.counts[{"NaN": "nan", "+Inf": "posinf"}[kind]] >= 1
    assert e.site[0] == __file__ and e.site[2] == "<lambda>"  # the user's frame: the lambda
    assert "input ranges" in str(e)


def test_forward_eager_line_is_the_users():
    x = ts.asarray([1.0, -2.0, 3.0])
    with pytest.raises(NumericsError) as ei:
        with check_numerics():
            line = _line() + 1
            y = ts.log(x) + 1
            y.numpy()
    assert ei.value.site[1] == line and ei.value.index == (1,)
    assert "y = ts.log(x) + 1" in str(ei.value)
    assert "[-2, 3]" in str(ei.value)  # the input's range


# -- inside a fused group (large tensors) --------------------------------------------------
def test_fused_group_names_the_first_bad_op_not_the_one_passing_it_on():
    x = _big(0.5)
    with pytest.raises(NumericsError) as ei:
        with check_numerics():
            line = _line() + 1
            y = ts.log(x * 0) + 1
            y.numpy()
    e = ei.value
    assert e.op == "log" and e.site[1] == line  # not add, not the line that realized it
    assert e.counts["neginf"] == BIG and e.index == (0,)
    assert e.dtype == ts.fp32 and e.shape == (BIG,)
    msg = str(e)
    assert "fused kernel" in msg and "[multiply, log, add]" in msg
    assert "#0 [0, 0]" in msg  # log's input range


def test_fused_group_with_a_reduction():
    x = _big(-2.0)
    with pytest.raises(NumericsError) as ei:
        with check_numerics():
            line = _line() + 1
            s = ts.sum(ts.sqrt(x * 2) + 1)
            float(s)
    assert ei.value.op == "sqrt" and ei.value.site[1] == line


def test_fused_group_culprit_in_the_middle_of_a_chain():
    x = ts.asarray(np.linspace(-1, 1, BIG).astype(np.float32))
    with pytest.raises(NumericsError) as ei:
        with check_numerics():
            a = ts.exp(x) * 2
            line = _line() + 1
            b = ts.log(a - 2)
            c = ts.tanh(b * 0.5) + a
            c.numpy()
    e = ei.value
    assert e.op == "log" and e.site[1] == line
    assert 0 < e.counts["nan"] < BIG


def test_finite_fused_groups_pass():
    x = _big(0.5)
    with check_numerics():
        y = (ts.log(x + 1) * 2).numpy()
    assert np.isfinite(y).all()


# -- backward ----------------------------------------------------------------------------
def test_backward_names_the_adjoint_of_sqrt():
    x = ts.asarray([0.0, 1.0, 4.0], requires_grad=True)
    with pytest.raises(NumericsError) as ei:
        with check_numerics():
            fwd_line = _line() + 1
            y = ts.sqrt(x).sum()
            y.backward()
            x.grad.numpy()
    e = ei.value
    assert e.forward_op == "sqrt" and e.counts["posinf"] == 1 and e.index == (0,)
    assert "adjoint of 'sqrt'" in str(e) and f":{fwd_line} " in str(e)


def test_backward_in_a_fused_group():
    x = ts.asarray(np.zeros(BIG, np.float32), requires_grad=True)
    with pytest.raises(NumericsError) as ei:
        with check_numerics():
            fwd_line = _line() + 1
            y = (ts.sqrt(x) * 2).sum()
            y.backward()
            x.grad.numpy()
    e = ei.value
    assert e.forward_op == "sqrt" and e.op == "divide" and e.kernel
    assert f":{fwd_line} " in str(e) and "fused kernel" in str(e)


def test_backward_fused_cast_names_its_forward_cast():
    # the adjoint of an fp16 -> fp32 cast casts the gradient back to fp16, where 1e5
    # overflows; lazy casts send op events, so the adjoint is named
    x = ts.asarray(np.full(BIG, 2.0, np.float32), requires_grad=True)
    with pytest.raises(NumericsError) as ei:
        with check_numerics():
            h = x.astype("fp16")
            fwd_line = _line() + 1
            y = (h.astype("fp32") * 1e5).sum()
            y.backward()
            x.grad.numpy()
    e = ei.value
    assert e.op == "cast" and e.forward_op == "cast" and e.dtype == ts.fp16
    assert e.counts["posinf"] == BIG and e.kernel
    assert "adjoint of 'cast'" in str(e) and f":{fwd_line} " in str(e)


def test_op_level_names_a_lazy_reduction():
    y = ts.sum(_big(3e38) * 10.0)
    with pytest.raises(NumericsError, match=r"\[check_numerics\] sum produced"):
        check_numerics(y)


def test_clean_backward_passes():
    x = ts.asarray([1.0, 4.0], requires_grad=True)
    with check_numerics():
        ts.sqrt(x).sum().backward()
        x.grad.numpy()
    assert np.allclose(x.grad.numpy(), [0.5, 0.25])


# -- in-place writes -----------------------------------------------------------------------
def test_setitem_writing_nan():
    x = ts.asarray([1.0, 2.0, 3.0])
    with pytest.raises(NumericsError) as ei:
        with check_numerics():
            line = _line() + 1
            x[1] = float("nan")
            x.numpy()
    assert ei.value.op == "setitem (in place)" and ei.value.site[1] == line
    assert ei.value.index == (1,)


def test_optimizer_style_update():
    w = ts.asarray([1.0, 3e38])
    g = ts.asarray([0.0, -1e37])
    with pytest.raises(NumericsError) as ei:
        with check_numerics(), ts.no_grad():
            line = _line() + 1
            w -= 10.0 * g
            w.numpy()
    assert ei.value.site[1] == line and ei.value.counts["posinf"] == 1


# -- bf16 ---------------------------------------------------------------------------------
def test_bf16_eager_and_fused():
    with pytest.raises(NumericsError) as ei:
        with check_numerics():
            ts.sqrt(ts.asarray([1.0, -2.0], dtype="bf16")).numpy()
    assert ei.value.dtype == ts.bf16 and ei.value.counts["nan"] == 1
    x = ts.asarray(np.full(BIG, 50.0, np.float32)).astype("bf16")
    with pytest.raises(NumericsError) as ei:
        with check_numerics():
            line = _line() + 1
            y = ts.exp(x * 2) - 1
            y.numpy()
    assert ei.value.op == "exp" and ei.value.site[1] == line and ei.value.dtype == ts.bf16


# -- overflow before a cast ------------------------------------------------------------------
def test_overflow_option_reports_values_beyond_fp16():
    x = ts.asarray([1.0, 20.0])
    with check_numerics():
        ts.exp(x).numpy()  # finite in fp32: fine without the option
    with pytest.raises(NumericsError, match="fp16") as ei:
        with check_numerics(overflow=("fp16", "bf16")):
            ts.exp(x).numpy()
    assert ei.value.counts["over"] == 1 and ei.value.index == (1,)
    with pytest.raises(NumericsError, match="fp16"):
        check_numerics(ts.asarray([1e5]), overflow=("fp16",))


def test_input_already_bad_is_noted():
    x = ts.asarray([np.nan, 1.0])
    with pytest.raises(NumericsError, match="already held NaN"):
        with check_numerics():
            (x + 1).numpy()


def test_mode_restored_after_an_error():
    with pytest.raises(NumericsError):
        with check_numerics():
            ts.log(ts.asarray([-1.0])).numpy()
    assert numerics._sub is None and STATE.event_sinks == []
    ts.log(ts.asarray([-1.0]))  # off again


@pytest.mark.cpu_only("the device-flag bookkeeping, driven with NumPy arrays; no tensors")
def test_device_flag_ring_reports_the_first_bad_entry():
    # The CUDA path's bookkeeping, driven with NumPy as the array module: the word
    # keeps the first bad entry's number, and only that entry's report runs.
    flags = numerics._DeviceFlags(np)
    calls = []
    flags.add(np.ones(3, np.float32), None, lambda: calls.append("a"))
    flags.add(np.array([1.0, np.nan]), None, lambda: calls.append("b"))
    flags.add(np.array([np.inf]), None, lambda: calls.append("c"))
    flags.add(np.array([7e4], np.float32), 65504.0, lambda: calls.append("d"))
    flags.poll()
    assert calls == ["b"] and flags.ring == [] and int(flags.word) == 0
    flags.add(np.array([7e4], np.float32), 65504.0, lambda: calls.append("e"))
    flags.poll()
    flags.poll()  # nothing queued: no report
    assert calls == ["b", "e"]


@pytest.fixture
def fake_gpu(monkeypatch):
    """A device whose type is "cuda" but whose backend is NumPy's: ops run on the CPU
    while check_numerics takes its GPU path (device flags, no per-op host check)."""
    from tessera.device import Device
    dev = object.__new__(Device)
    dev.type, dev.index, dev._str = "cuda", 97, "cuda:97 (fake)"
    dev._backend = ts.get_device("cpu").backend  # not the default device's: CUDA on a GPU host
    monkeypatch.setattr(numerics, "_flags", None)
    return dev


def _on(dev, values):
    from tessera.tensor import _new
    a = np.asarray(values, np.float32)
    return _new(a, a.shape, ts.fp32, dev)


@pytest.mark.parametrize("read", ["numpy", "item", "float", "tolist"])
@FAKE_GPU
def test_gpu_path_reports_at_the_next_host_read(fake_gpu, read):
    x = _on(fake_gpu, [4.0])
    with pytest.raises(NumericsError) as ei:
        with check_numerics():
            line = _line() + 1
            y = ts.log(x - 5.0)       # queued on the device flag, not raised here
            z = y * 2.0               # only passes the NaN on
            assert len(numerics._flags.ring) == 3  # subtract, log, multiply
            {"numpy": z.numpy, "item": z.item, "float": lambda: float(z),
             "tolist": z.tolist}[read]()  # the natural sync: the flag is read
    e = ei.value
    assert e.op == "log" and e.site[1] == line and e.counts["nan"] == 1
    assert numerics._flags.ring == [] and int(numerics._flags.word) == 0


@pytest.mark.parametrize("read", ["numpy", "float-of-sum"])
@FAKE_GPU
def test_gpu_path_reports_a_pending_group_at_the_read_that_realizes_it(fake_gpu, read):
    # the read used to take the flag before realizing the group it reads, which queues
    # the group's check: the report came at leaving the mode, outside the user's `try`
    # (TRIAGE 2026-12-04 A11, the demo crash)
    x = _on(fake_gpu, np.full(50_000, 4.0))
    reached = []
    with pytest.raises(NumericsError) as ei:
        with check_numerics():
            z = ts.log(x - 5.0) * 2.0
            assert z.is_lazy
            z.numpy() if read == "numpy" else float(z.sum())
            reached.append(read)
    assert reached == [] and ei.value.op == "log"


@FAKE_GPU
def test_gpu_path_clean_reads_and_leaving_the_mode(fake_gpu):
    x = _on(fake_gpu, [4.0, 9.0])
    with check_numerics():
        y = ts.sqrt(x)
        assert y.tolist() == [2.0, 3.0] and numerics._flags.ring == []
        ts.log(x - 5.0)  # bad, never read on the host: reported when the mode ends
        with pytest.raises(NumericsError, match="log produced 1 NaN"):
            set_check_numerics(False)
    assert STATE.check_numerics is False
    ts.log(x - 5.0).numpy()  # mode off: no flag, no report
    assert numerics._flags.ring == []
