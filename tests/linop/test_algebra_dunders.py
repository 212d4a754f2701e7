"""A 0-d tensor on the left of `*` defers to the operator (NumPy's __array_ufunc__ =
None convention), so scalar-tensor * operator builds a scaled operator."""
import numpy as np
import pytest

import tessera as ts
from tessera import linop

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device


def test_tensor_scalar_times_operator_defers_to_the_operator():
    A = linop.diagonal(ts.asarray([1.0, 2.0, 3.0], dtype="fp64"))
    B = ts.asarray(2.0, dtype="fp64") * A
    assert isinstance(B, linop.LinearOperator)
    np.testing.assert_allclose((B @ ts.ones(3, dtype="fp64")).numpy(), [2.0, 4.0, 6.0])


def test_unconvertible_operand_still_raises():
    import pytest
    with pytest.raises(TypeError):
        ts.ones(3) * object()
