"""Mixed precision and quantization: casts with stochastic rounding and saturation,
autocast, loss scaling (`tessera.amp`), quantized tensors and int8 GEMM, fake
quantization for QAT, and the precision report.

This file only re-exports; see the modules for the reference semantics.
"""
from .amp import GradScaler
from .autocast import DEFAULT_POLICY, AutocastPolicy, autocast, get_autocast_dtype, is_autocast_enabled
from .cast import cast
from .fake_quant import fake_quantize
from .observers import MinMaxObserver, MovingAverageObserver, PercentileObserver, observer
from .qmatmul import int8_matmul, linear as quantized_linear, matmul as quantized_matmul
from .quant import SCHEMES, QuantizedTensor, dequantize, load, quantize, save
from .report import PrecisionReport, report

__all__ = ["GradScaler", "DEFAULT_POLICY", "AutocastPolicy", "autocast", "get_autocast_dtype",
           "is_autocast_enabled", "cast", "fake_quantize", "MinMaxObserver",
           "MovingAverageObserver", "PercentileObserver", "observer", "int8_matmul",
           "quantized_linear", "quantized_matmul", "SCHEMES", "QuantizedTensor", "dequantize",
           "load", "quantize", "save", "PrecisionReport", "report"]
