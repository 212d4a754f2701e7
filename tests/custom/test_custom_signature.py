"""MLIR type signatures of custom ops: parsing and per-call checks."""
import pytest

import tessera as ts
from tessera.custom.signature import parse

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device


@pytest.mark.parametrize("text,shapes,dtypes", [
    ("(tensor<1024xf32>) -> tensor<1024xf32>", [(1024,)], ["fp32"]),
    ("(tensor<?x4xbf16>, tensor<i64>) -> tensor<?xf32>", [(None, 4), ()], ["bf16", "int64"]),
    ("(tensor<2x?xf16>,tensor<3xi1>)->(tensor<2xf64>)", [(2, None), (3,)], ["fp16", "bool"]),
])
def test_parse(text, shapes, dtypes):
    s = parse(text, "f")
    assert [t.shape for t in s.inputs] == shapes and [t.dtype for t in s.inputs] == dtypes


@pytest.mark.parametrize("text,msg", [
    ("tensor<3xf32>", "is not an MLIR function type"),
    ("(memref<3xf32>) -> tensor<3xf32>", "is not a ranked tensor type"),
    ("(tensor<3xq7>) -> tensor<3xf32>", "element type 'q7' has no tessera dtype"),
    ("(tensor<3xf32>) -> (tensor<3xf32>, tensor<3xf32>)", "have one result"),
])
def test_parse_errors(text, msg):
    with pytest.raises(ValueError, match=r"\[myop\] signature .*" + msg):
        parse(text, "myop")


def test_check_inputs_and_output():
    s = parse("(tensor<?x4xf32>) -> tensor<?xf32>", "f")
    s.check_inputs("f", (ts.ones((7, 4)),))
    with pytest.raises(ts.ShapeError, match=r"\[f\] input 0 has shape \(7, 5\) fp32, the signature"):
        s.check_inputs("f", (ts.ones((7, 5)),))
    with pytest.raises(ts.DTypeError, match=r"\[f\] input 0 has shape \(7, 4\) fp64.*dtype fp32"):
        s.check_inputs("f", (ts.ones((7, 4), dtype="fp64"),))
    with pytest.raises(ts.ShapeError, match=r"takes 1 tensor\(s\), got 2"):
        s.check_inputs("f", (ts.ones((7, 4)), ts.ones(2)))
    with pytest.raises(ts.ShapeError, match=r"\[f\] the output has shape \(2, 2\)"):
        s.check_output("f", ts.ones((2, 2)))
