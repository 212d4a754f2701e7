"""tessera: an eager, NumPy-like tensor library for GPUs (CUDA and ROCm) and the CPU,
with tape-based autodiff, a lazy fusion buffer and hand-written tiled kernels.

This file only re-exports; the code lives in modules named after what they own.

>>> import tessera as ts
>>> x = ts.asarray([1.0, 2.0, 3.0], requires_grad=True)
>>> (x * x).sum().backward()
>>> x.grad.tolist()
[2.0, 4.0, 6.0]
"""
from . import dtypes
from .device import Device, cuda_is_available, default_device, get_device, set_default_device
from .dtypes import (DType, bf16, bool_, complex64, complex128, finfo, fp8_e4m3, fp8_e5m2, fp16,
                     fp32, fp64, iinfo, int8, int16, int32, int64, isdtype, result_type, uint8)
from .errors import (DeviceError, DTypeError, GradError, IndexingError, NumericsError,
                     ShapeError, TesseraError, ConfigError)
from .tensor import Tensor
from .ops import *  # noqa: F401,F403
from .autograd.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .autograd.functional import grad, value_and_grad, vjp, jvp, hessian_vector_product, hvp, jacobian
from . import autograd, nn, optim
from .fusion.lazy import realize
from . import random
from .random import Generator, manual_seed, rand, randn
from . import fusion, op, schedule
from . import graph, profiler
from . import linop, pde, recursive
from .numerics import check_numerics, set_check_numerics
from . import interop
from . import fft
from .interop.dlpack import from_dlpack
from . import precision
from .precision import amp
from .precision.autocast import autocast

from ._array_api import __array_api_version__, __array_namespace_info__, can_cast

__version__ = "0.1.0"

# Array API dtype spellings
float16, float32, float64, bfloat16 = fp16, fp32, fp64, bf16
bool = bool_  # noqa: A001  (the Array API names it `bool`)
e, pi, inf, nan = 2.718281828459045, 3.141592653589793, float("inf"), float("nan")
newaxis = None
