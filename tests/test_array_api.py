"""The Array API namespace contract: __array_namespace_info__, can_cast, and a
consumer written only against the standard running on tessera tensors."""
import numpy as np
import pytest

import tessera as ts

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device


def test_namespace_info():
    info = ts.__array_namespace_info__()
    assert info.default_dtypes()["real floating"] is ts.fp32
    assert info.default_dtypes()["indexing"] is ts.int64
    assert set(info.dtypes(kind="integral")) == {"int8", "int16", "int32", "int64", "uint8"}
    assert ts.device.CPU in info.devices()
    assert info.capabilities()["boolean indexing"] is True


@pytest.mark.parametrize("a,b,ok", [("int8", "int32", True), ("int32", "int8", False),
                                    ("fp32", "int32", False), ("uint8", "int16", True),
                                    ("fp16", "fp32", True), ("bf16", "fp16", False)])
def test_can_cast(a, b, ok):
    assert ts.can_cast(a, b) is ok


def _standard_consumer(x):
    """Code written against the standard only: it finds its namespace from x."""
    xp = x.__array_namespace__()
    m = xp.mean(x, axis=0)
    c = x - m
    cov = xp.matmul(xp.matrix_transpose(c), c) / (x.shape[0] - 1)
    return xp.sqrt(xp.sum(c * c, axis=0) / (x.shape[0] - 1)), cov


def test_standard_consumer_matches_numpy():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((50, 3))
    std, cov = _standard_consumer(ts.asarray(a, dtype="fp64"))
    np.testing.assert_allclose(std.numpy(), a.std(axis=0, ddof=1), rtol=1e-12)
    np.testing.assert_allclose(cov.numpy(), np.cov(a, rowvar=False), rtol=1e-12)
    assert ts.ones(2).__array_namespace__() is ts
    with pytest.raises(ValueError):
        ts.ones(2).__array_namespace__(api_version="1999.01")
