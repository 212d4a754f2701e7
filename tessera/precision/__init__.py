"""Mixed precision and quantization: casts with stochastic rounding and saturation,
autocast, loss scaling (`tessera.amp`), quantized tensors and int8 GEMM, fake
quantization for QAT, and the precision report.

This file only re-exports; see the modules for the reference semantics.
"""
from .autocast import DEFAULT_POLICY, AutocastPolicy, autocast, get_autocast_dtype, is_autocast_enabled
from .cast import cast
from .quant import SCHEMES, QuantizedTensor, dequantize, load, quantize, save

__all__ = ["DEFAULT_POLICY", "AutocastPolicy", "autocast", "get_autocast_dtype",
           "is_autocast_enabled", "cast", "SCHEMES", "QuantizedTensor", "dequantize", "load",
           "quantize", "save"]
