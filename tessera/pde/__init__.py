"""tessera.pde: PDE-constrained learning. Time steppers over linear operators
with checkpointed adjoint gradients (`integrate`, `step`), physics-informed
residuals through grad-of-grad (`derivatives`, `laplacian`, `residual`), and
`diffusion_operator` for div(kappa grad u) with a learned coefficient.

>>> import tessera as ts
>>> from tessera import pde
>>> A = pde.diffusion_operator(ts.ones((10,), dtype="fp64"), h=0.1)
>>> A.symmetric, A.definite
(True, 'neg')
"""
from .steppers import METHODS, integrate, step
from .pinn import derivatives, laplacian, residual
from .operators import diffusion_operator

__all__ = ["METHODS", "integrate", "step", "derivatives", "laplacian", "residual",
           "diffusion_operator"]
