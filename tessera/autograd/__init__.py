"""Automatic differentiation: the tape (`engine`), grad-mode switches and the
function transforms.

Two styles sit side by side, named as their models name them:
- PyTorch style, on tensors: `tessera.autograd.grad(outputs, inputs, ...)` and
  `tessera.autograd.backward(tensors, ...)` (also `Tensor.backward()`);
- JAX style, on functions: `tessera.grad(f)`, `value_and_grad`, `vjp`, `jvp`,
  `hessian_vector_product` (`hvp`), `jacobian` (from `tessera.autograd.functional`).

This package's `__init__` is imported while `tessera.ops` is still loading (ops
import the engine), so nothing here may import `tessera.ops` at module level.
"""
from . import functional
from .engine import backward, grad
from .functional import hessian_vector_product, hvp, jacobian, jvp, value_and_grad, vjp
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled

__all__ = ["backward", "grad", "functional", "value_and_grad", "vjp", "jvp",
           "hessian_vector_product", "hvp", "jacobian", "no_grad", "enable_grad",
           "set_grad_enabled", "is_grad_enabled"]
