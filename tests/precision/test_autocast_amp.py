"""autocast applies its op table as written (and overrides), parameters keep fp32
gradients; GradScaler skips a step on an injected Inf and adapts its scale."""
import numpy as np
import pytest

import tessera as ts
from tessera.precision import DEFAULT_POLICY, autocast

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device

RNG = np.random.default_rng(0)

# each table entry exercised through its public op, with fp32 (or bf16) inputs
CALLS = {
    "matmul": lambda a, b: ts.matmul(a, b), "linear": lambda a, b: ts.linear(a, a, ts.ones(4)),
    "einsum": lambda a, b: ts.einsum("ij,jk->ik", a, b),
    "sum": lambda a, b: ts.sum(a), "prod": lambda a, b: ts.prod(a), "logsumexp": lambda a, b: ts.logsumexp(a),
    "softmax": lambda a, b: ts.softmax(a), "log_softmax": lambda a, b: ts.log_softmax(a),
    "layer_norm": lambda a, b: ts.layer_norm(a, (4,)), "exp": lambda a, b: ts.exp(a),
    "log": lambda a, b: ts.log(ts.abs(a) + 1), "pow": lambda a, b: ts.pow(ts.abs(a), 2.0),
    "cross_entropy": lambda a, b: ts.cross_entropy(a, ts.asarray([0, 1, 2, 3])),
    "add": lambda a, b: a + b.astype("fp32"), "subtract": lambda a, b: a - b.astype("fp32"),
    "multiply": lambda a, b: a * b.astype("fp32"), "divide": lambda a, b: a / (b.astype("fp32") + 9),
    "where": lambda a, b: ts.where(a > 0, a, b.astype("fp32")),
}


def _inputs(dtype):
    a = ts.asarray(RNG.standard_normal((4, 4)).astype(np.float32)).astype(dtype)
    b = ts.asarray(RNG.standard_normal((4, 4)).astype(np.float32)).astype("bf16")
    return a, b


def test_every_table_entry_is_exercised():
    assert set(CALLS) == set(DEFAULT_POLICY)


@pytest.mark.parametrize("low", ["bf16", "fp16"])
@pytest.mark.parametrize("op_name", sorted(DEFAULT_POLICY))
def test_op_table_applied_as_written(op_name, low):
    kind = DEFAULT_POLICY[op_name]
    src = "fp32" if kind == "lower" else low  # "fp32" ops get low-precision inputs to lift
    a, b = _inputs(src)
    with autocast(low):
        out = CALLS[op_name](a, b)
    expected = {"lower": low, "fp32": "fp32", "promote": "fp32"}[kind]
    assert out.dtype.name == expected, (op_name, out.dtype.name)


def test_override_and_disable_and_decorator():
    a, b = _inputs("fp32")
    with autocast("bf16", policy={"matmul": None}):
        assert ts.matmul(a, a).dtype.name == "fp32"
    with autocast("bf16"):
        with autocast(enabled=False):
            assert ts.matmul(a, a).dtype.name == "fp32"
        assert ts.matmul(a, a).dtype.name == "bf16"
    assert not ts.precision.is_autocast_enabled()

    @autocast("fp16")
    def f(x):
        return ts.matmul(x, x)
    assert f(a).dtype.name == "fp16" and ts.matmul(a, a).dtype.name == "fp32"
    with pytest.raises(ts.DTypeError, match=r"\[autocast\]"):
        autocast("int8")
    with pytest.raises(ValueError, match=r"\[autocast\] policy"):
        autocast("bf16", policy={"matmul": "fast"})


def test_parameters_stay_fp32_and_gradients_arrive_fp32():
    from tessera.random import Generator
    lin = ts.nn.Linear(8, 4, generator=Generator(0))
    x = ts.asarray(RNG.standard_normal((5, 8)).astype(np.float32))
    with autocast("bf16"):
        y = lin(x)
        loss = ts.cross_entropy(y, ts.asarray([0, 1, 2, 3, 0]))
    assert y.dtype.name == "bf16" and loss.dtype.name == "fp32"
    loss.backward()
    assert lin.weight.dtype.name == "fp32" and lin.weight.grad.dtype.name == "fp32"
    ref = ts.nn.Linear(8, 4, generator=Generator(0))
    ts.cross_entropy(ref(x), ts.asarray([0, 1, 2, 3, 0])).backward()
    np.testing.assert_allclose(lin.weight.grad.numpy(), ref.weight.grad.numpy(), atol=3e-2)


def test_matmul_accumulates_in_fp32():
    # 4096 ones: a bf16 accumulator would stop at 256; fp32 accumulation is exact
    a = ts.ones((1, 4096))
    with autocast("bf16"):
        r = ts.matmul(a, ts.ones((4096, 1)))
    assert float(r) == 4096.0


def _setup():
    w = ts.nn.Parameter(ts.asarray([1.0, -2.0, 3.0]))
    return w, ts.optim.SGD([w], lr=0.1)


def test_grad_scaler_unscales_and_steps():
    w, opt = _setup()
    s = ts.amp.GradScaler(init_scale=2.0 ** 10, growth_interval=2)
    s.scale(ts.sum(w * w)).backward()
    assert np.allclose(w.grad.numpy(), 2 * np.array([1.0, -2.0, 3.0]) * 1024)
    s.step(opt)
    s.update()
    np.testing.assert_allclose(w.numpy(), [0.8, -1.6, 2.4], rtol=1e-6)
    assert s.get_scale() == 1024.0
    opt.zero_grad()
    s.scale(ts.sum(w * w)).backward()
    s.step(opt)
    s.update()
    assert s.get_scale() == 2048.0  # two clean steps in a row: grown


def test_grad_scaler_skips_step_on_injected_inf():
    w, opt = _setup()
    s = ts.amp.GradScaler(init_scale=256.0)
    before = w.numpy().copy()
    s.scale(ts.sum(w * w)).backward()
    w.grad = w.grad * ts.asarray([1.0, float("inf"), 1.0])
    assert s.step(opt) is None
    s.update()
    assert np.array_equal(w.numpy(), before) and s.get_scale() == 128.0 and s.skipped_steps == 1
    opt.zero_grad()
    s.scale(ts.sum(w * w)).backward()
    s.step(opt)
    s.update()
    assert not np.array_equal(w.numpy(), before)
    st = s.state_dict()
    s2 = ts.amp.GradScaler()
    s2.load_state_dict(st)
    assert s2.get_scale() == 128.0
    with pytest.raises(ValueError, match=r"\[GradScaler\]"):
        ts.amp.GradScaler(backoff_factor=2.0)


def test_fp16_training_under_autocast_with_scaler():
    from tessera.random import Generator
    m = ts.nn.Sequential(ts.nn.Linear(16, 32, generator=Generator(0)), ts.nn.ReLU(),
                         ts.nn.Linear(32, 4, generator=Generator(1)))
    opt = ts.optim.Adam(m.parameters(), lr=1e-2)
    s = ts.amp.GradScaler(init_scale=2.0 ** 12)
    x = ts.asarray(RNG.standard_normal((64, 16)).astype(np.float32))
    t = ts.asarray(RNG.integers(0, 4, 64))
    losses = []
    for _ in range(30):
        opt.zero_grad()
        with autocast("fp16"):
            loss = ts.cross_entropy(m(x), t)
        s.scale(loss).backward()
        s.step(opt)
        s.update()
        losses.append(float(loss))
    assert losses[-1] < losses[0] * 0.8
