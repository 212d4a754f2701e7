"""Interop with PyTorch, JAX, NumPy and CuPy (the seed's section 7.4), on DLPack.

Converters share memory wherever the device matches (a write through one side is
seen by the other): `from_torch`/`to_torch`, `from_jax`/`to_jax`,
`from_numpy`/`to_numpy`, `from_cupy`/`to_cupy`, and the protocol itself,
`from_dlpack` with `Tensor.__dlpack__`. `torch_function` and
`from_torch_function` carry gradients across the PyTorch boundary both ways.
PyTorch, JAX and CuPy are optional; a converter called without its framework
raises `MissingDependencyError` saying what to install.

>>> import torch
>>> from tessera import interop
>>> tx = interop.from_torch(torch.ones(2, 2))
>>> interop.to_torch(tx).sum().item()
4.0
"""
from ._optional import MissingDependencyError
from .arrays import from_cupy, from_numpy, to_cupy, to_numpy
from .autodiff import from_torch_function, torch_function
from .dlpack import DLDeviceType, DLPackError, from_dlpack
from .jax import from_jax, to_jax
from .torch import from_torch, to_torch

__all__ = ["from_torch", "to_torch", "from_jax", "to_jax", "from_numpy", "to_numpy",
           "from_cupy", "to_cupy", "from_dlpack", "torch_function", "from_torch_function",
           "DLPackError", "DLDeviceType", "MissingDependencyError"]
