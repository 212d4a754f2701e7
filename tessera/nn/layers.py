"""Layers as in `torch.nn`: `Linear`, `Embedding`, `LayerNorm`, `Dropout`, the
activations, and the containers `Sequential` / `ModuleList`.

Layers hold parameters and call tessera ops at call time (`ts.relu`,
`ts.layer_norm`, ...), looked up on the `tessera` namespace so that a better
kernel-backed op replaces the composite fallback written here without touching
the layer. Initializations follow PyTorch's (so a model ported from it trains
the same way) and draw from `tessera.random` (the device's default generator
unless a `generator=` is given).

>>> import tessera as ts
>>> net = ts.nn.Sequential(ts.nn.Linear(4, 8), ts.nn.ReLU(), ts.nn.Linear(8, 2))
>>> net(ts.ones((3, 4))).shape
(3, 2)
"""
from __future__ import annotations

import math
from collections import OrderedDict

from .module import Module, Parameter

__all__ = ["Linear", "Embedding", "LayerNorm", "Dropout", "ReLU", "GELU", "Tanh", "Sigmoid",
           "Identity", "Sequential", "ModuleList", "CrossEntropyLoss", "MSELoss", "cross_entropy"]


def _ts():
    import tessera
    return tessera


def _gen(generator, device):
    if generator is not None:
        return generator
    from ..random import default_generator
    return default_generator(device)


# -- composites used when tessera.ops.nn does not (yet) provide the op ------------------
def _relu(x):
    # where(x > 0, x, 0), not maximum(x, 0): maximum splits the gradient at a tie.
    return _ts().where(x > 0, x, 0.0)


def _gelu(x, approximate="none"):
    ts = _ts()
    if approximate == "tanh":
        return 0.5 * x * (1.0 + ts.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))
    return 0.5 * x * (1.0 + ts.erf(x * 0.7071067811865476))


def _op(name, fallback):
    return getattr(_ts(), name, None) or fallback


# -- layers ---------------------------------------------------------------------------
class Linear(Module):
    """y = x @ weight.T + bias, weight of shape (out_features, in_features); both
    drawn from U(-1/sqrt(in_features), 1/sqrt(in_features)) as PyTorch's
    Kaiming-uniform (a = sqrt(5)) default."""

    def __init__(self, in_features, out_features, bias=True, dtype="fp32", device=None,
                 generator=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        g = _gen(generator, device)
        bound = 1.0 / math.sqrt(in_features) if in_features > 0 else 0.0
        w = g.uniform((out_features, in_features), -bound, bound, dtype=dtype)
        self.weight = Parameter(w.to(device))
        if bias:
            self.bias = Parameter(g.uniform((out_features,), -bound, bound, dtype=dtype).to(device))
        else:
            self.register_parameter("bias", None)

    def forward(self, x):
        return _ts().linear(x, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Embedding(Module):
    """A lookup table: `emb(idx)` gathers rows of `weight` (N(0, 1) init, as
    PyTorch); repeated indices accumulate their gradients."""

    def __init__(self, num_embeddings, embedding_dim, dtype="fp32", device=None, generator=None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        w = _gen(generator, device).normal((num_embeddings, embedding_dim), dtype=dtype)
        self.weight = Parameter(w.to(device))

    def forward(self, idx):
        ts = _ts()
        if type(idx) is not ts.Tensor:
            idx = ts.asarray(idx, dtype="int64", device=self.weight.device)
        return self.weight[idx]

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"


class LayerNorm(Module):
    """Normalize over the trailing `normalized_shape` axes (biased variance),
    then scale and shift, as `torch.nn.LayerNorm`."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 dtype="fp32", device=None):
        super().__init__()
        ts = _ts()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape, self.eps = tuple(normalized_shape), eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(ts.ones(self.normalized_shape, dtype=dtype, device=device))
            if bias:
                self.bias = Parameter(ts.zeros(self.normalized_shape, dtype=dtype, device=device))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x):
        ts = _ts()
        if hasattr(ts, "layer_norm"):
            return ts.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        axes = tuple(range(x.ndim - len(self.normalized_shape), x.ndim))
        mu = ts.mean(x, axis=axes, keepdims=True)
        xc = x - mu
        y = xc * ts.rsqrt(ts.mean(xc * xc, axis=axes, keepdims=True) + self.eps)
        if self.weight is not None:
            y = y * self.weight
        if self.bias is not None:
            y = y + self.bias
        return y

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class Dropout(Module):
    """Zero each element with probability `p` in training and scale the others by
    1 / (1 - p); the identity in eval mode."""

    def __init__(self, p=0.5, generator=None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"[Dropout] p must be in [0, 1], got {p}")
        self.p, self.generator = p, generator

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        ts = _ts()
        if hasattr(ts, "dropout"):
            return ts.dropout(x, self.p, training=True, generator=self.generator)
        if self.p == 1.0:
            return x * 0.0
        keep = _gen(self.generator, x.device).random(x.shape, dtype=x.dtype) >= self.p
        return ts.where(keep, x * (1.0 / (1.0 - self.p)), 0.0)

    def extra_repr(self):
        return f"p={self.p}"


class ReLU(Module):
    def forward(self, x):
        return _op("relu", _relu)(x)


class GELU(Module):
    """GELU, exact (erf) or with `approximate="tanh"`, as `torch.nn.GELU`."""

    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x):
        ts = _ts()
        if hasattr(ts, "gelu"):
            return ts.gelu(x, approximate=self.approximate) if self.approximate != "none" \
                else ts.gelu(x)
        return _gelu(x, self.approximate)

    def extra_repr(self):
        return f"approximate='{self.approximate}'" if self.approximate != "none" else ""


class Tanh(Module):
    def forward(self, x):
        return _ts().tanh(x)


class Sigmoid(Module):
    def forward(self, x):
        return _ts().sigmoid(x)


class Identity(Module):
    def forward(self, x):
        return x


class CrossEntropyLoss(Module):
    """Mean cross-entropy of `logits` (N, C) against integer `target` (N,), as
    `torch.nn.CrossEntropyLoss()` with its defaults."""

    def forward(self, logits, target):
        return cross_entropy(logits, target)


class MSELoss(Module):
    def forward(self, x, y):
        d = x - y
        return _ts().mean(d * d)


def cross_entropy(logits, target):
    """Mean over the batch of logsumexp(logits) - logits[target]."""
    ts = _ts()
    if hasattr(ts, "cross_entropy"):
        return ts.cross_entropy(logits, target)
    if type(target) is not ts.Tensor:
        target = ts.asarray(target, dtype="int64", device=logits.device)
    lse = ts.logsumexp(logits, axis=-1)
    picked = logits[ts.arange(logits.shape[0], device=logits.device), target]
    return ts.mean(lse - picked)


# -- containers -------------------------------------------------------------------------
class _Container(Module):
    """What Sequential and ModuleList share: length, iteration, append."""

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self


class Sequential(_Container):
    """Modules applied in order: `Sequential(a, b)(x) == b(a(x))`; also accepts an
    OrderedDict of named modules. Indexable; a slice gives a Sequential."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, i):
        mods = list(self._modules.values())
        if isinstance(i, slice):
            return Sequential(*mods[i])
        return mods[i]


class ModuleList(_Container):
    """A list of modules whose parameters the parent module sees."""

    def __init__(self, modules=()):
        super().__init__()
        self.extend(modules)

    def __getitem__(self, i):
        mods = list(self._modules.values())
        return ModuleList(mods[i]) if isinstance(i, slice) else mods[i]

    def __setitem__(self, i, module):
        if not isinstance(module, Module):
            raise TypeError(f"[ModuleList] items must be Modules, got {type(module).__name__}")
        self._modules[list(self._modules)[i]] = module  # keeps the position

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def insert(self, index, module):
        mods = list(self._modules.values())
        mods.insert(index, module)
        self._modules.clear()
        self.extend(mods)

    def forward(self, *args):
        raise NotImplementedError("ModuleList is a container; iterate over it in forward()")
