"""Neural-network building blocks, as `torch.nn`: `Module` (parameter and
sub-module registry, state dicts, train/eval), `Parameter`, and layers.

>>> import tessera as ts
>>> lin = ts.nn.Linear(3, 2)
>>> sorted(lin.state_dict())
['bias', 'weight']
"""
from .layers import (GELU, CrossEntropyLoss, Dropout, Embedding, Identity, LayerNorm, Linear,
                     ModuleList, MSELoss, ReLU, Sequential, Sigmoid, Tanh, cross_entropy)
from .module import IncompatibleKeys, Module, Parameter
from .quantized import QuantizedLinear, quantize_
from .moe import HierarchicalMoE, HierarchicalRouter, MoE, SpectralMoE
from .spectral import SpectralConv1d, SpectralConv2d, SpectralConv3d

__all__ = ["Module", "Parameter", "IncompatibleKeys", "Linear", "Embedding", "LayerNorm",
           "Dropout", "ReLU", "GELU", "Tanh", "Sigmoid", "Identity", "Sequential", "ModuleList",
           "CrossEntropyLoss", "MSELoss", "cross_entropy", "QuantizedLinear", "quantize_",
           "MoE", "SpectralMoE", "HierarchicalMoE", "HierarchicalRouter", "SpectralConv1d", "SpectralConv2d",
           "SpectralConv3d"]
