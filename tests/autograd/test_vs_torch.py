"""Random compositions of tessera ops against torch.autograd (float64): a
hypothesis-drawn program over a pool of values (inputs a (3, 4), b (4,) and
W (4, 4)), compared forward and backward, first and second order."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tessera as ts
from tessera.autograd.engine import grad as ts_grad

torch = pytest.importorskip("torch", reason="torch is not installed: no PyTorch comparisons")
pytestmark = pytest.mark.torch

SHAPE = (3, 4)
OFFSET = np.arange(12.0).reshape(SHAPE) / 7.0
# name -> (arity, tessera fn, torch fn); every result broadcasts against SHAPE
UNARY = {
    "tanh": (ts.tanh, torch.tanh), "sigmoid": (ts.sigmoid, torch.sigmoid),
    "sin": (ts.sin, torch.sin), "exp_tanh": (lambda x: ts.exp(ts.tanh(x)),
                                             lambda x: torch.exp(torch.tanh(x))),
    "log_safe": (lambda x: ts.log(x * x + 1.0), lambda x: torch.log(x * x + 1.0)),
    "sqrt_safe": (lambda x: ts.sqrt(x * x + 0.5), lambda x: torch.sqrt(x * x + 0.5)),
    "pow_safe": (lambda x: (x * x + 0.5) ** 1.5, lambda x: (x * x + 0.5) ** 1.5),
    "abs": (ts.abs, torch.abs), "square": (ts.square, torch.square),
    "erf": (ts.erf, torch.special.erf), "neg": (lambda x: -x, lambda x: -x),
    "softplus": (lambda x: ts.logaddexp(x, 0.0),
                 lambda x: torch.logaddexp(x, torch.zeros((), dtype=x.dtype))),
    "atan": (ts.atan, torch.atan), "scale": (lambda x: 0.5 * x - 1.0, lambda x: 0.5 * x - 1.0),
    "recip_safe": (lambda x: 1.0 / (x * x + 1.0), lambda x: 1.0 / (x * x + 1.0)),
    "sum_last": (lambda x: ts.sum(x, axis=-1, keepdims=True),
                 lambda x: torch.sum(x, dim=-1, keepdim=True)),
    "mean_first": (lambda x: ts.mean(x, axis=0, keepdims=True),
                   lambda x: torch.mean(x, dim=0, keepdim=True) if x.ndim == 2 else x.mean(
                       dim=0, keepdim=True)),
    "max_last": (lambda x: ts.max(x, axis=-1, keepdims=True),
                 lambda x: torch.amax(x, dim=-1, keepdim=True)),
    "lse_last": (lambda x: ts.logsumexp(x, axis=-1, keepdims=True),
                 lambda x: torch.logsumexp(x, dim=-1, keepdim=True)),
    "var_all": (lambda x: ts.var(ts.broadcast_to(x, SHAPE)),
                lambda x: torch.var(torch.broadcast_to(x, SHAPE), correction=0)),
    # std of a constant slice is not differentiable (and rounding decides whether the
    # computed deviation is exactly 0): an offset that varies along the axis avoids it
    "std_first": (lambda x: ts.std(ts.broadcast_to(x, SHAPE) + ts.asarray(OFFSET), axis=0,
                                   keepdims=True),
                  lambda x: torch.std(torch.broadcast_to(x, SHAPE) + torch.tensor(OFFSET),
                                      dim=0, keepdim=True, correction=0)),
    "flip": (lambda x: ts.flip(x, axis=-1), lambda x: torch.flip(x, dims=(-1,))),
    "roll": (lambda x: ts.roll(x, 1, axis=-1), lambda x: torch.roll(x, 1, dims=-1)),
    "gather_rep": (lambda x: x[..., ts.asarray([0, 0, 3, 1])] if x.ndim and x.shape[-1] == 4 else x,
                   lambda x: x[..., torch.tensor([0, 0, 3, 1])] if x.ndim and x.shape[-1] == 4 else x),
    "cumsum": (lambda x: ts.cumulative_sum(ts.broadcast_to(x, SHAPE), axis=1),
               lambda x: torch.cumsum(torch.broadcast_to(x, SHAPE), dim=1)),
    "matmul_W": (None, None),  # x @ W, filled in at run time
    "T_matmul": (None, None),  # (x^T x) kept to SHAPE via a slice
    "setitem": (None, None),   # out-of-place copy with a row overwritten in place
}
BINARY = {
    "add": (ts.add, torch.add), "sub": (ts.subtract, torch.sub), "mul": (ts.multiply, torch.mul),
    "div_safe": (lambda x, y: x / (y * y + 1.0), lambda x, y: x / (y * y + 1.0)),
    "maximum": (ts.maximum, torch.maximum), "minimum": (ts.minimum, torch.minimum),
    "atan2": (lambda x, y: ts.atan2(x, y * y + 0.5), lambda x, y: torch.atan2(x, y * y + 0.5)),
    "hypot": (lambda x, y: ts.hypot(x, y + 3.0), lambda x, y: torch.hypot(x, y + 3.0)),
    "where": (lambda x, y: ts.where(x > y, x, y * 2.0),
              lambda x, y: torch.where(x > y, x, y * 2.0)),
    "pow": (lambda x, y: ts.pow(x * x + 0.5, ts.tanh(y)),
            lambda x, y: torch.pow(x * x + 0.5, torch.tanh(y))),
}


def _apply(name, lib, args, W):
    if name == "matmul_W":
        x = args[0]
        if lib == "ts":
            return ts.matmul(ts.broadcast_to(x, SHAPE), W)
        return torch.broadcast_to(x, SHAPE) @ W
    if name == "T_matmul":
        x = args[0]
        if lib == "ts":
            xb = ts.broadcast_to(x, SHAPE)
            return ts.matmul(xb, ts.matmul(xb.mT, xb))  # (3,4) @ (4,4)
        xb = torch.broadcast_to(x, SHAPE)
        return xb @ (xb.mT @ xb)
    if name == "setitem":
        x = args[0]
        if lib == "ts":
            y = ts.broadcast_to(x, SHAPE) * 1.0
            y[1] = ts.tanh(y[0])
            return y
        y = torch.broadcast_to(x, SHAPE) * 1.0
        y[1] = torch.tanh(y[0])
        return y
    table = UNARY if name in UNARY else BINARY
    fn = table[name][0 if lib == "ts" else 1]
    return fn(*args)


@st.composite
def programs(draw, max_len=6):
    n = draw(st.integers(2, max_len))
    prog = []
    pool = 3  # a, b, W is only used through matmul_W
    for _ in range(n):
        if draw(st.booleans()):
            name = draw(st.sampled_from(sorted(UNARY)))
            prog.append((name, (draw(st.sampled_from([0, 1] + list(range(3, pool)))),)))
        else:
            name = draw(st.sampled_from(sorted(BINARY)))
            ops = [0, 1] + list(range(3, pool))
            prog.append((name, (draw(st.sampled_from(ops)), draw(st.sampled_from(ops)))))
        pool += 1
    return prog


def _run(prog, lib, a, b, W):
    vals = [a, b, W]
    for name, idx in prog:
        vals.append(_apply(name, lib, [vals[i] for i in idx], W))
    # the loss uses every value so that each op's gradient is exercised
    loss = 0.0
    for k, v in enumerate(vals[3:]):
        if lib == "ts":
            loss = loss + ts.sum(ts.sin(v * (0.3 + 0.1 * k)))
        else:
            loss = loss + torch.sum(torch.sin(v * (0.3 + 0.1 * k)))
    return vals[-1], loss


# The hypothesis sweeps run on the CPU; a fixed representative set of programs runs on each
# device (test_fixed_programs_match_torch_on_device).
SWEEP = pytest.mark.cpu_only("hypothesis sweep of random programs; a fixed set runs on each "
                             "device (test_fixed_programs_match_torch_on_device)")


@SWEEP
@settings(max_examples=40)
@given(prog=programs(), seed=st.integers(0, 2**32 - 1))
def test_random_composition_matches_torch(prog, seed):
    _first_order(prog, seed)


def _first_order(prog, seed):
    """Forward and gradients against torch, on the default device (pinned to the test's)."""
    rng = np.random.default_rng(seed)
    arrays = [rng.uniform(-1.5, 1.5, SHAPE), rng.uniform(-1.5, 1.5, (4,)),
              rng.uniform(-0.7, 0.7, (4, 4))]
    tin = [ts.asarray(x, dtype="fp64", requires_grad=True) for x in arrays]
    pin = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in arrays]
    tout, tloss = _run(prog, "ts", *tin)
    pout, ploss = _run(prog, "torch", *pin)
    np.testing.assert_allclose(tout.numpy(), pout.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(float(tloss), float(ploss.detach()), rtol=1e-10, atol=1e-12)
    tloss.backward()
    ploss.backward()
    for t, p, name in zip(tin, pin, "abW"):
        pg = p.grad.numpy() if p.grad is not None else np.zeros(p.shape)
        tg = t.grad.numpy() if t.grad is not None else np.zeros(t.shape)
        np.testing.assert_allclose(tg, pg, rtol=1e-9, atol=1e-11, err_msg=f"grad of {name}: {prog}")


SMOOTH = ["tanh", "sigmoid", "sin", "exp_tanh", "log_safe", "sqrt_safe", "pow_safe", "square",
          "erf", "softplus", "atan", "recip_safe", "sum_last", "mean_first", "lse_last", "var_all",
          "cumsum", "matmul_W", "T_matmul", "gather_rep", "flip"]
SMOOTH_BIN = ["add", "sub", "mul", "div_safe", "atan2", "hypot", "pow"]


@st.composite
def smooth_programs(draw):
    n = draw(st.integers(1, 4))
    prog, pool = [], 3
    for _ in range(n):
        ops = [0, 1] + list(range(3, pool))
        if draw(st.booleans()):
            prog.append((draw(st.sampled_from(SMOOTH)), (draw(st.sampled_from(ops)),)))
        else:
            prog.append((draw(st.sampled_from(SMOOTH_BIN)),
                         (draw(st.sampled_from(ops)), draw(st.sampled_from(ops)))))
        pool += 1
    return prog


@SWEEP
@settings(max_examples=25)
@given(prog=smooth_programs(), seed=st.integers(0, 2**32 - 1))
def test_random_composition_second_order_matches_torch(prog, seed):
    """Hessian-vector products: d/dx <grad f(x), v> through create_graph."""
    _second_order(prog, seed)


def _second_order(prog, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.uniform(-1.5, 1.5, SHAPE), rng.uniform(-1.5, 1.5, (4,)),
              rng.uniform(-0.7, 0.7, (4, 4))]
    vs = [rng.standard_normal(np.shape(x)) for x in arrays]
    tin = [ts.asarray(x, dtype="fp64", requires_grad=True) for x in arrays]
    pin = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in arrays]
    _, tloss = _run(prog, "ts", *tin)
    _, ploss = _run(prog, "torch", *pin)
    tg = ts_grad(tloss, tin, create_graph=True, allow_unused=True)
    pg = torch.autograd.grad(ploss, pin, create_graph=True, allow_unused=True)
    tdot = sum(ts.sum(g * ts.asarray(v, dtype="fp64")) for g, v in zip(tg, vs) if g is not None)
    pdot = sum(torch.sum(g * torch.tensor(v)) for g, v in zip(pg, vs) if g is not None)
    if not isinstance(pdot, torch.Tensor) or not pdot.requires_grad:
        return  # the program is linear in every input: no second derivative
    th = ts_grad(tdot, tin, allow_unused=True)
    ph = torch.autograd.grad(pdot, pin, allow_unused=True)
    for t, p, name in zip(th, ph, "abW"):
        tv = t.numpy() if t is not None else 0.0
        pv = p.numpy() if p is not None else 0.0
        np.testing.assert_allclose(tv, pv, rtol=1e-8, atol=1e-10, err_msg=f"Hv of {name}: {prog}")


# every op family once: elementwise, reductions, movement, gather, matmul, setitem
FIXED = [
    [("tanh", (0,)), ("mul", (3, 1)), ("matmul_W", (4,)), ("lse_last", (5,))],
    [("sigmoid", (1,)), ("div_safe", (0, 3)), ("cumsum", (4,)), ("var_all", (5,)),
     ("pow", (4, 0))],
    [("gather_rep", (0,)), ("T_matmul", (3,)), ("atan2", (4, 1)), ("mean_first", (5,)),
     ("flip", (6,))],
    [("setitem", (0,)), ("where", (3, 1)), ("max_last", (4,)), ("std_first", (0,)),
     ("roll", (6,)), ("hypot", (7, 5))],
]


@pytest.mark.parametrize("prog", FIXED, ids=lambda p: "-".join(n for n, _ in p))
def test_fixed_programs_match_torch_on_device(prog, device):
    _first_order(prog, seed=1)
    if all(n in SMOOTH or n in SMOOTH_BIN for n, _ in prog):
        _second_order(prog, seed=2)
