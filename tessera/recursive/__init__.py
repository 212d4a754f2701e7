"""Recursive operators: linear operators defined by recursion on the problem size,
with adjoints derived from the same recursion, all `tessera.linop.LinearOperator`s
built from tessera ops (so they train under autodiff):

- `Butterfly`: an FFT-like product of log2(n) levels of 2x2 mixings with learnable
  factors (Hadamard, DFT-with-bit-reversal or random-rotation initializations);
- `HODLR`: a hierarchical (H-matrix-like) operator, dense leaf blocks and low-rank
  off-diagonal blocks at every level, learnable or compressed from a matrix;
- `MultigridPreconditioner`: a geometric multigrid V-cycle for the Dirichlet
  Poisson operator, symmetric positive definite, usable as `M=` in `linop.cg`.

>>> import tessera as ts
>>> from tessera import recursive
>>> B = recursive.Butterfly(8, init="hadamard", dtype="fp64")
>>> round(float(ts.sum(B.matvec(ts.ones(8, dtype="fp64"))).item()), 6)
2.828427
"""
from .butterfly import Butterfly, bit_reversal
from .hmatrix import HODLR
from .multigrid import MultigridPreconditioner, prolong, restrict

__all__ = ["Butterfly", "bit_reversal", "HODLR", "MultigridPreconditioner", "prolong", "restrict"]
