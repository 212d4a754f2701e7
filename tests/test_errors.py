"""Bad input raises the right TesseraError subclass (which is also the matching
built-in ValueError / TypeError / IndexError / RuntimeError), with the op's name
and the shapes/dtypes involved in the message."""
import numpy as np
import pytest

import tessera as ts
from tessera.errors import fmt_shapes_aligned

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device

HIERARCHY = [(ts.ShapeError, ValueError), (ts.DTypeError, TypeError),
             (ts.DeviceError, ValueError), (ts.NumericsError, ValueError),
             (ts.IndexingError, IndexError), (ts.GradError, RuntimeError)]


@pytest.mark.parametrize("cls,builtin", HIERARCHY)
def test_hierarchy(cls, builtin):
    assert issubclass(cls, ts.TesseraError) and issubclass(cls, builtin)


# (callable, error class, regex the message must match)
CASES = [
    # shapes that do not broadcast: both shapes shown, right-aligned
    (lambda: ts.ones((2, 3)) + ts.ones((4, 3)), ts.ShapeError,
     r"^\[add\] shapes do not broadcast \(dimension -2 is 2 in one and 4 in another\):\n"
     r"    \(2, 3\)\n    \(4, 3\)$"),
    (lambda: ts.multiply(ts.ones((5, 2, 3)), ts.ones((4,))), ts.ShapeError,
     r"^\[multiply\] shapes do not broadcast.*\n    \(5, 2, 3\)\n    \( ,  , 4\)$"),
    (lambda: ts.where(ts.ones((2,), dtype="bool"), ts.ones((3,)), 1.0), ts.ShapeError,
     r"^\[where\] shapes do not broadcast"),
    (lambda: ts.broadcast_arrays(ts.ones((2,)), ts.ones((3,))), ts.ShapeError,
     r"^\[broadcast_arrays\]"),
    # axes
    (lambda: ts.sum(ts.ones((2, 3)), axis=2), ts.ShapeError,
     r"^\[sum\] axis 2 is out of range for a tensor of 2 dimension\(s\); accepted: -2\.\.1"),
    (lambda: ts.mean(ts.ones((2, 3)), axis=-3), ts.ShapeError, r"^\[mean\] axis -3 is out of range"),
    (lambda: ts.max(ts.ones((2, 3)), axis=(0, 0)), ts.ShapeError, r"^\[max\] repeated axis"),
    (lambda: ts.argmax(ts.ones((2, 3)), axis=5), ts.ShapeError, r"^\[argmax\] axis 5"),
    (lambda: ts.sum(ts.ones((2,)), axis=1.0), ts.ShapeError, r"^\[sum\] axis must be an integer"),
    (lambda: ts.flip(ts.ones((2,)), axis=1), ts.ShapeError, r"^\[flip\] axis 1 is out of range"),
    (lambda: ts.cumulative_sum(ts.ones((2, 2)), axis=2), ts.ShapeError, r"^\[cumulative_sum\]"),
    (lambda: ts.var(ts.ones((2,)), axis=3), ts.ShapeError, r"^\[var\] axis 3"),
    # shapes
    (lambda: ts.zeros((2.5, 3)), ts.ShapeError, r"^\[zeros\] shape must be a tuple of integers"),
    (lambda: ts.full(("x",), 1.0), ts.ShapeError, r"^\[full\] shape must be a tuple of integers"),
    (lambda: ts.empty((-1,)), ts.ShapeError, r"^\[empty\] negative dimension"),
    (lambda: ts.reshape(ts.ones((6,)), (4, 2)), ts.ShapeError,
     r"^\[reshape\] cannot reshape \(6,\) \(6 elements\) into \(4, 2\) \(8 elements\)"),
    (lambda: ts.matmul(ts.ones((3, 4)), ts.ones((5, 6))), ts.ShapeError,
     r"^\[matmul\] shapes \(3, 4\) and \(5, 6\): inner dimensions 4 and 5 differ$"),
    (lambda: ts.ones((2,)).item(), ts.ShapeError, r"^\[item\] only one-element tensors"),
    (lambda: ts.asarray([[1, 2], [3]]), ts.ShapeError, r"^\[asarray\] ragged nested sequence"),
    # dtypes
    (lambda: ts.zeros((2,), dtype="float31"), ts.DTypeError,
     r"^\[zeros\] unknown dtype 'float31'; accepted: bool, int8"),
    (lambda: ts.asarray([1.0], dtype="quux"), ts.DTypeError, r"^\[asarray\] unknown dtype 'quux'"),
    (lambda: ts.ones((2,)).astype("int3"), ts.DTypeError, r"^\[astype\] unknown dtype 'int3'"),
    (lambda: ts.arange(3, dtype="i3"), ts.DTypeError, r"^\[arange\] unknown dtype 'i3'"),
    (lambda: ts.sum(ts.ones((2,)), dtype="f9"), ts.DTypeError, r"^\[sum\] unknown dtype 'f9'"),
    (lambda: ts.full((2,), 1.0, dtype=np.uint32), ts.DTypeError,
     r"^\[full\] dtype uint32 has no tessera equivalent"),
    (lambda: ts.asarray(np.zeros(2, np.uint16)), ts.DTypeError, r"^\[asarray\] NumPy dtype uint16"),
    (lambda: ts.asarray(["a"]), ts.DTypeError, r"^\[asarray\] cannot make a tensor element"),
    (lambda: ts.bitwise_and(ts.ones((2,)), ts.ones((2,))), ts.DTypeError,
     r"^\[bitwise_and\] expects integer or bool tensors, got fp32"),
    (lambda: ts.ones((2,), dtype="bool") - ts.ones((2,), dtype="bool"), ts.DTypeError,
     r"^\[subtract\] is not defined for bool"),
    (lambda: ts.where(ts.ones((2,)), 1.0, 2.0), ts.DTypeError, r"^\[where\] condition must be bool"),
    (lambda: ts.asarray([1], dtype="uint8") + 256, ts.DTypeError,
     r"^\[add\] Python integer 256 is out of range for uint8"),
    (lambda: ts.asarray([1], dtype="int8") * (-200), ts.DTypeError,
     r"^\[multiply\] Python integer -200 is out of range for int8"),
    (lambda: ts.ones((2,)) + "a", ts.DTypeError, r"^\[asarray\]|\[add\]"),
    (lambda: ts.matmul(ts.ones((2, 2), dtype="bool"), ts.ones((2, 2), dtype="bool")),
     ts.DTypeError, r"^\[matmul\]"),
    (lambda: ts.erf(ts.ones((2,), dtype="complex64")), ts.DTypeError, r"^\[erf\]"),
    # indexing
    (lambda: ts.ones((3,))[3], ts.IndexingError,
     r"^\[getitem\] index 3 is out of range for axis 0 with size 3 \(shape \(3,\)\)"),
    (lambda: ts.ones((3, 2))[:, -3], ts.IndexingError,
     r"^\[getitem\] index -3 is out of range for axis 1 with size 2"),
    (lambda: ts.ones((3,))[ts.asarray([0, 5])], ts.IndexingError,
     r"^\[getitem\] index 5 is out of range for axis 0"),
    (lambda: ts.ones((3,))[0, 0], ts.IndexingError, r"^\[getitem\] too many indices"),
    (lambda: ts.take(ts.ones((3,)), ts.asarray([7])), ts.IndexingError, r"index 7 is out of range"),
    # devices
    (lambda: ts.asarray([1.0], device="tpu"), ts.DeviceError, r"unknown device 'tpu'"),
    # autodiff misuse
    (lambda: ts.asarray([1, 2]).requires_grad_(), ts.GradError, r"^\[requires_grad_\]"),
    (lambda: (ts.ones((2,), requires_grad=True) * 2).backward(), ts.GradError,
     r"^\[backward\] gradient can be implicitly created only for scalar outputs"),
    (lambda: ts.ones((2,)).sum().backward(), ts.GradError, r"^\[backward\] tensor does not require"),
    # messages that were NumPy's bare ones, or named [asarray] for another op's operand
    (lambda: ts.arange(5)[::0], ts.IndexingError, r"^\[getitem\] slice step cannot be zero"),
    (lambda: ts.arange(6).reshape(2, 3)[:, 1::0], ts.IndexingError, r"^\[getitem\] slice step .* axis 1"),
    (lambda: ts.eye(-1), ts.ShapeError, r"^\[eye\] negative dimension in shape \(-1, -1\)"),
    (lambda: ts.empty((2 ** 62, 4)), ts.ShapeError,
     r"^\[empty\] shape \(4611686018427387904, 4\) has \d+ elements, more than any device"),
    (lambda: ts.asarray(float("nan"), dtype="int32"), ts.DTypeError, r"^\[asarray\] NaN cannot be stored in int32"),
    (lambda: ts.asarray("abc"), ts.DTypeError, r"^\[asarray\] cannot make a tensor from the str 'abc'"),
    (lambda: ts.ones((2,)) * "a", ts.DTypeError, r"^\[multiply\] cannot make a tensor from the str 'a'"),
    (lambda: ts.add(ts.ones((2,)), None), ts.DTypeError, r"^\[add\] cannot make a tensor element from NoneType"),
    (lambda: ts.maximum(ts.ones((2,)), object()), ts.DTypeError, r"^\[maximum\] cannot make a tensor element"),
]


@pytest.mark.parametrize("fn,cls,pattern", CASES, ids=[f"{c[1].__name__}-{i}" for i, c in
                                                       enumerate(CASES)])
def test_bad_input(fn, cls, pattern):
    with pytest.raises(cls) as e:
        fn()
    assert isinstance(e.value, ts.TesseraError)
    import re
    assert re.search(pattern, str(e.value)), f"message {str(e.value)!r} !~ {pattern!r}"


def test_out_of_range_index_is_an_index_error():
    # NumPy-style code catching IndexError keeps working
    try:
        ts.ones((2,))[2]
    except IndexError as e:
        assert "[getitem]" in str(e)
    else:
        pytest.fail("no IndexError")


def test_fmt_shapes_aligned():
    assert fmt_shapes_aligned((2, 3), (10, 1, 3)) == "    (  ,  2,  3)\n    (10,  1,  3)"


def test_backward_twice_message():
    x = ts.asarray([1.0], requires_grad=True)
    y = ts.sum(ts.exp(x))
    y.backward()
    with pytest.raises(ts.GradError, match=r"^\[backward\] trying to backward through \w+ a second"):
        y.backward()
