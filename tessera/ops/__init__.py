"""Every op, grouped by family in the modules of this package; this file only
re-exports them (the `tessera` and `tessera.op` namespaces are built from it)."""
from . import _methods  # noqa: F401  (attaches Tensor operators)
from .creation import (arange, asarray, empty, empty_like, eye, from_numpy, full, full_like,
                       linspace, meshgrid, ones, ones_like, tensor, tril, triu, zeros,
                       zeros_like)
from .elementwise import (abs, acos, acosh, add, asin, asinh, astype, atan, atan2, atanh,
                          bitwise_and, bitwise_invert, bitwise_left_shift, bitwise_or,
                          bitwise_right_shift, bitwise_xor, ceil, clip, copysign, cos, cosh,
                          divide, equal, erf, exp, exp2, expm1, floor, floor_divide, greater,
                          greater_equal, hypot, isfinite, isinf, isnan, less, less_equal, log,
                          log1p, log2, log10, logaddexp, logical_and, logical_not, logical_or,
                          logical_xor, maximum, minimum, multiply, negative, not_equal, positive,
                          pow, real, reciprocal, remainder, round, rsqrt, sigmoid, sign, signbit,
                          sin, sinh, sqrt, square, subtract, tan, tanh, trunc, where)
from .indexing import index_add, index_put, take
from .linalg import linear, matmul, matrix_transpose, outer, tensordot, vecdot
from .movement import (broadcast_arrays, broadcast_to, contiguous, copy, expand_dims, flip,
                       moveaxis, permute_dims, reshape, roll, squeeze)
from .reduce import (all, any, argmax, argmin, count_nonzero, cumulative_sum, logsumexp, max,
                     mean, min, prod, std, sum, var)

bitwise_not = bitwise_invert
from .manipulation import *  # noqa: F401,F403
from .sorting import *  # noqa: F401,F403
from .einsum import *  # noqa: F401,F403
from .nn import *  # noqa: F401,F403
from .complex import *  # noqa: F401,F403

# `from tessera.ops import *` exports the ops, not the family modules (so that
# `tessera.nn` stays the layers package rather than `tessera.ops.nn`).
import types as _types
__all__ = [n for n, v in list(globals().items())
           if not n.startswith("_") and not isinstance(v, _types.ModuleType)]
