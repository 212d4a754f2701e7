"""Custom operators (the seed's section 7.1): `op.custom`, `op.kernel`, `op.gradcheck`.

Modules: `core` (CustomOp, the registry, `custom`), `kernel_source` (user CUDA/HIP
kernels: compiling through the kernel loader, errors in the user's lines,
launching), `signature` (MLIR type signatures), `gradcheck` (adjoint checks).
"""
from .core import CustomOp, RegistrationError, custom, registered, unregister
from .gradcheck import GradcheckReport, gradcheck
from .kernel_source import CustomKernelError, Kernel
from .signature import parse as parse_signature

kernel = Kernel

__all__ = ["CustomOp", "RegistrationError", "custom", "registered", "unregister", "gradcheck",
           "GradcheckReport", "CustomKernelError", "Kernel", "kernel", "parse_signature"]
