"""Python launchers for tessera's hand-written kernels, taking CuPy arrays.

Re-exports the public launchers; the launch geometry lives in `geometry` (pure
Python), the instantiation registry in `registry`.
"""
from .matmul import matmul, matmul_auto, matmul_choice, shape_bucket
from .movement import cast, gather, index_select, permute_copy, scatter_add
from .nn import (cross_entropy_backward, cross_entropy_forward, layer_norm_backward,
                 layer_norm_forward, softmax, softmax_backward)
from .reduce import cumsum, reduce
from .registry import HIP_INSTANTIATIONS, INSTANTIATIONS

__all__ = ["matmul", "matmul_auto", "matmul_choice", "shape_bucket", "cast", "gather", "index_select",
           "permute_copy", "scatter_add", "cross_entropy_backward", "cross_entropy_forward",
           "layer_norm_backward", "layer_norm_forward", "softmax", "softmax_backward", "cumsum",
           "reduce", "INSTANTIATIONS", "HIP_INSTANTIATIONS"]
