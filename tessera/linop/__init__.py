"""tessera.linop: matrix-free linear operators with symbolic adjoints, the
dot-product test, and Krylov solvers whose gradients come from one adjoint solve.

What SciPy's `LinearOperator`, PyLops and lineax users reach for:

>>> import tessera as ts
>>> from tessera import linop
>>> L = -linop.laplacian((32, 32), h=1 / 33)        # positive definite
>>> f = ts.ones((32, 32), dtype="fp64")
>>> u, info = linop.cg(L, f, rtol=1e-10)
>>> info.converged, linop.dottest(L).passed
(True, True)

Modules: `base` (LinearOperator), `algebra` (composites, simplification), `builtins` (dense,
diagonal, identity, zero, restriction, from_function, kron, block), `stencils`
(finite differences, Laplacian), `convolve` (direct and FFT), `sparse` (CSR),
`dottest`, `krylov` (the iterations) and `solvers` (the differentiable API).
Importing it needs neither CuPy nor SciPy.
"""
from .base import LinearOperator, PropertyError, adjoint, add, compose, power, scale
from .builtins import (Block, Diagonal, FromFunction, Identity, Kronecker, MatrixOperator,
                       Restriction, Zero, aslinearoperator, block, block_diag, diagonal,
                       from_function, identity, kron, masking, restriction, zero)
from .stencils import (FirstDerivative, Laplacian, SecondDerivative, first_derivative,
                       laplacian, second_derivative)
from .convolve import Convolution, convolve
from .sparse import SparseOperator, csr, sparse
from .dottest import DotTestResult, check_symmetric, dottest
from .solvers import (ConvergenceError, ConvergenceWarning, SolveInfo, cg, gmres, lsqr, minres,
                      solve)

__all__ = ["LinearOperator", "PropertyError", "adjoint", "add", "compose", "power", "scale",
           "Block", "Diagonal", "FromFunction", "Identity", "Kronecker", "MatrixOperator",
           "Restriction", "Zero", "aslinearoperator", "block", "block_diag", "diagonal",
           "from_function", "identity", "kron", "masking", "restriction", "zero",
           "FirstDerivative", "Laplacian", "SecondDerivative", "first_derivative", "laplacian",
           "second_derivative", "Convolution", "convolve", "SparseOperator", "csr", "sparse",
           "DotTestResult", "check_symmetric", "dottest", "ConvergenceError",
           "ConvergenceWarning", "SolveInfo", "cg", "gmres", "lsqr", "minres", "solve"]
