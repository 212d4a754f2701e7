"""tessera.nn: parameter registration, traversal, modes, state dicts, layers
(against NumPy / PyTorch formulas)."""
import numpy as np
import pytest

import tessera as ts
from tessera import nn
from tessera.random import Generator
from helpers import assert_close

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 4)
        self.scale = nn.Parameter(ts.ones((4,)))
        self.register_buffer("offset", ts.zeros((4,)))
        self.note = "not state"
        self.cache = ts.zeros((2,))  # a tensor that does not require grad: plain attribute

    def forward(self, x):
        return ts.tanh(self.lin(x)) * self.scale + self.offset


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = Block()
        self.b = nn.Sequential(nn.ReLU(), nn.Linear(4, 2))
        self.tied = self.a.scale  # shared: counted once


def test_registration_and_traversal():
    n = Net()
    names = [k for k, _ in n.named_parameters()]
    # as PyTorch: the module's own parameters first, a shared one under its first name
    assert names == ["tied", "a.lin.weight", "a.lin.bias", "b.1.weight", "b.1.bias"]
    assert len(list(n.parameters())) == 5 and n.num_parameters() == 4 + 12 + 4 + 8 + 2
    assert [k for k, _ in n.named_buffers()] == ["a.offset"]
    assert [type(m).__name__ for m in n.children()] == ["Block", "Sequential"]
    assert [k for k, _ in n.named_modules()] == ["", "a", "a.lin", "b", "b.0", "b.1"]
    assert n.a.note == "not state" and "cache" not in n.state_dict()
    assert list(n.state_dict()) == ["tied", "a.scale", "a.offset", "a.lin.weight", "a.lin.bias",
                                    "b.1.weight", "b.1.bias"]
    # frozen parameters via register_parameter; deleting and reassigning
    n.a.register_parameter("frozen", ts.ones((1,)))
    assert "a.frozen" in dict(n.named_parameters())
    del n.a.frozen
    assert "a.frozen" not in dict(n.named_parameters())
    with pytest.raises(AttributeError):
        n.a.frozen
    with pytest.raises(ts.TesseraError, match="super"):
        class Bad(nn.Module):
            def __init__(self):
                self.w = nn.Parameter(ts.ones(1))
        Bad()


def test_parameter_is_a_plain_leaf_tensor():
    base = ts.ones((2,))
    p = nn.Parameter(base)
    assert type(p) is ts.Tensor and p.requires_grad and p.is_leaf and not base.requires_grad
    assert nn.Parameter([1.0, 2.0]).shape == (2,)


def test_forward_backward_zero_grad_and_modes():
    n = Net()
    x = ts.ones((5, 3))
    y = n.b(n.a(x))
    ts.sum(y).backward()
    assert all(p.grad is not None for p in n.parameters())
    n.zero_grad(set_to_none=False)
    assert all(float(ts.sum(ts.abs(p.grad))) == 0.0 for p in n.parameters())
    n.zero_grad()
    assert all(p.grad is None for p in n.parameters())
    assert n.training and n.a.lin.training
    n.eval()
    assert not n.training and not n.b[1].training
    n.train()
    assert n.b[0].training


def test_state_dict_roundtrip_and_errors():
    a, b = Net(), Net()
    sd = a.state_dict()
    w_before = b.a.lin.weight
    res = b.load_state_dict(sd)
    assert res.missing_keys == [] and res.unexpected_keys == []
    assert b.a.lin.weight is w_before  # loaded in place: optimizers keep their tensors
    for k, v in b.state_dict().items():
        assert_close(v, sd[k].numpy())
    # np arrays are accepted
    b.load_state_dict({k: v.numpy() for k, v in sd.items()})
    bad = dict(sd)
    del bad["a.scale"]
    bad["extra"] = ts.ones(1)
    with pytest.raises(KeyError, match=r"missing keys: \['a.scale'\][\s\S]*unexpected keys: \['extra'\]"):
        b.load_state_dict(bad)
    res = b.load_state_dict(bad, strict=False)
    assert res.missing_keys == ["a.scale"] and res.unexpected_keys == ["extra"]
    bad = dict(sd)
    bad["b.1.weight"] = ts.ones((3, 3))
    with pytest.raises(ts.ShapeError, match=r"b.1.weight.*\(3, 3\).*\(2, 4\)"):
        b.load_state_dict(bad)


def test_to_and_repr():
    n = Net()
    assert n.to(ts.default_device()) is n  # already there
    n.to(dtype="fp64")
    assert all(p.dtype is ts.fp64 and p.requires_grad for p in n.parameters())
    r = repr(Net())
    assert "(a): Block(" in r and "(lin): Linear(in_features=3, out_features=4, bias=True)" in r
    assert "(1): Linear(in_features=4, out_features=2, bias=True)" in r


def test_linear_matches_formula_and_init_bounds():
    lin = nn.Linear(50, 20, generator=Generator(0))
    w, b = lin.weight.numpy(), lin.bias.numpy()
    bound = 1 / np.sqrt(50)
    assert w.shape == (20, 50) and np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert np.abs(b).max() <= bound and w.std() == pytest.approx(bound / np.sqrt(3), rel=0.1)
    x = np.random.default_rng(1).normal(size=(4, 50)).astype(np.float32)
    assert_close(lin(ts.asarray(x)), x.astype(np.float64) @ w.T + b, rtol=1e-5, atol=1e-5)
    assert nn.Linear(3, 2, bias=False).bias is None
    # same seed, same init
    assert_close(nn.Linear(5, 5, generator=Generator(7)).weight,
                 nn.Linear(5, 5, generator=Generator(7)).weight.numpy())


def test_activations_layernorm_embedding_dropout():
    x = np.linspace(-3, 3, 12).reshape(3, 4)
    t = ts.asarray(x)
    assert_close(nn.ReLU()(t), np.maximum(x, 0))
    assert_close(nn.Tanh()(t), np.tanh(x))
    assert_close(nn.Sigmoid()(t), 1 / (1 + np.exp(-x)))
    assert_close(nn.Identity()(t), x)
    from math import erf
    assert_close(nn.GELU()(t), 0.5 * x * (1 + np.vectorize(erf)(x / np.sqrt(2))), rtol=1e-9)
    ln = nn.LayerNorm(4, dtype="fp64")
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    assert_close(ln(t), (x - mu) / np.sqrt(var + 1e-5), rtol=1e-9, atol=1e-9)
    emb = nn.Embedding(10, 3)
    idx = ts.asarray([1, 4, 1])
    out = emb(idx)
    assert_close(out, emb.weight.numpy()[[1, 4, 1]])
    ts.sum(out).backward()
    g = emb.weight.grad.numpy()
    assert g[1].tolist() == [2.0] * 3 and g[4].tolist() == [1.0] * 3 and g[0].sum() == 0
    d = nn.Dropout(0.5)
    big = ts.ones((1000,))
    y = d(big).numpy()
    assert set(np.unique(y)) <= {0.0, 2.0} and 300 < (y == 0).sum() < 700
    d.eval()
    assert d(big) is big


def test_containers():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(layers) == 3 and len(list(layers.parameters())) == 6
    layers.append(nn.Tanh())
    layers[0] = nn.Identity()
    assert isinstance(layers[0], nn.Identity) and isinstance(layers[3], nn.Tanh)
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert isinstance(seq[1], nn.ReLU) and len(seq[:2]) == 2 and len(seq) == 3
    assert seq(ts.ones((4, 2))).shape == (4, 1)
    from collections import OrderedDict
    named = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2)), ("act", nn.ReLU())]))
    assert [k for k, _ in named.named_parameters()] == ["fc.weight", "fc.bias"]
