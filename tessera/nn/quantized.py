"""Post-training quantization of models: `QuantizedLinear` and `quantize_(module,
scheme=...)`, which swaps every `Linear` of a model for one (in place, keeping the
module tree and names), as `torchao.quantization.quantize_` does.

Schemes: the weight schemes of `tessera.precision.quant` (weight-only: the
activation stays float and the weight is dequantized inside the product, e.g.
"int8_per_channel", "int4_per_group", "fp8_e4m3"), and "int8_dynamic" (W8A8:
int8 per-channel weight, each activation row quantized to int8 at run time, int8
GEMM with int32 accumulation and one rescale).

    >>> import tessera as ts
    >>> m = ts.nn.Sequential(ts.nn.Linear(64, 32), ts.nn.ReLU(), ts.nn.Linear(32, 4))
    >>> quantize_(m, scheme="int8_per_channel")[0]
    QuantizedLinear(in_features=64, out_features=32, bias=True, scheme=int8_per_channel)
"""
from __future__ import annotations

from ..precision import qmatmul
from ..precision.quant import SCHEMES, QuantizedTensor, quantize
from .layers import Linear
from .module import Module

__all__ = ["QuantizedLinear", "quantize_", "WEIGHT_SCHEMES"]

WEIGHT_SCHEMES = tuple(SCHEMES) + ("int8_dynamic",)


class QuantizedLinear(Module):
    """y = x @ dequant(W).T + b with W held quantized (out_features, in_features).
    The codes and scales are buffers (saved in the state dict, not trained)."""

    def __init__(self, qweight, bias=None, scheme=None):
        super().__init__()
        if not isinstance(qweight, QuantizedTensor) or qweight.ndim != 2:
            raise TypeError(f"[QuantizedLinear] needs a 2-D QuantizedTensor weight, got {qweight!r}")
        self.qweight = qweight
        self.scheme = scheme or qweight.scheme
        self.out_features, self.in_features = qweight.shape
        self.register_buffer("weight_codes", qweight.data)
        self.register_buffer("weight_scale", qweight.scale)
        self.register_buffer("bias", bias)

    @classmethod
    def from_float(cls, linear, scheme="int8_per_channel", group_size=None):
        if scheme not in WEIGHT_SCHEMES:
            raise ValueError(f"[quantize_] unknown scheme {scheme!r}; accepted: {', '.join(WEIGHT_SCHEMES)}")
        w = linear.weight.detach()
        if scheme == "int8_dynamic":
            q = quantize(w, "int8_per_channel", axis=0)
        elif SCHEMES[scheme].granularity == "channel":
            q = quantize(w, scheme, axis=0)  # one scale per output feature
        else:
            q = quantize(w, scheme, group_size=group_size)
        b = None if linear.bias is None else linear.bias.detach()
        return cls(q, b, scheme)

    def forward(self, x):
        q = self.qweight
        if self.scheme == "int8_dynamic":  # per-row int8 activations, int8 GEMM
            lead = x.shape[:-1]
            x2 = x.reshape((-1, self.in_features)) if x.ndim != 2 else x
            xq = quantize(x2, "int8_per_channel", axis=0)
            y = qmatmul.linear(xq, q, self.bias, out_dtype=x.dtype)
            return y.reshape(lead + (self.out_features,)) if x.ndim != 2 else y
        return qmatmul.linear(x, q, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, scheme={self.scheme}")


def quantize_(module, scheme="int8_per_channel", group_size=None, filter_fn=None):
    """Replace, in place, every `Linear` under `module` (for which
    `filter_fn(linear, qualified_name)` is true, when given) by a `QuantizedLinear`;
    returns `module` (or the replacement when `module` itself is a Linear)."""
    if scheme not in WEIGHT_SCHEMES:
        raise ValueError(f"[quantize_] unknown scheme {scheme!r}; accepted: {', '.join(WEIGHT_SCHEMES)}")
    if isinstance(module, Linear):
        return QuantizedLinear.from_float(module, scheme, group_size)

    def walk(m, prefix):
        mods = m._dicts()[2]
        for name, child in list(mods.items()):
            full = f"{prefix}{name}"
            if isinstance(child, Linear) and (filter_fn is None or filter_fn(child, full)):
                mods[name] = QuantizedLinear.from_float(child, scheme, group_size)  # keeps order
            elif child is not None:
                walk(child, full + ".")
    walk(module, "")
    return module
