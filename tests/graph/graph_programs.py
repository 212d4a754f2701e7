"""Small programs captured by the graph tests (shared by the replay and IR tests), and
`parse_mlir(text)`, which checks a dump with mlir-opt (skipping, with the reason,
where mlir-opt is not installed)."""
import shutil
import subprocess

import numpy as np
import pytest

import tessera as ts

RNG = np.random.default_rng(1234)


def rand(*shape, dtype=np.float32):
    return ts.asarray(RNG.standard_normal(shape).astype(dtype))


def ew_chain(x, y):
    return ts.tanh(ts.exp(x * 0.5) * y + 1.0) - y / 3.0


def reductions(x):
    return {"sum": x.sum(axis=1), "max": x.max(axis=0, keepdims=True),
            "mean": x.mean(), "var": x.var(axis=1)}


def mm(a, b):
    return [ts.matmul(a, b), a @ b.T @ a if a.shape[0] == b.shape[0] else None]


def softmax(x):
    return ts.softmax(x, axis=-1)


def gather(x, idx):
    return x[idx] * 2.0


def mlp_params(rng, sizes=((32, 64), (64, 64), (64, 10))):
    ps = []
    for i, o in sizes:
        ps.append(ts.asarray((rng.standard_normal((i, o)) / np.sqrt(i)).astype(np.float32),
                             requires_grad=True))
        ps.append(ts.asarray(np.zeros(o, np.float32), requires_grad=True))
    return ps


def train_step(params, x, y, lr=0.1):
    """One SGD step of an MLP with a squared error loss; returns the loss."""
    for p in params:
        p.grad = None
    w1, b1, w2, b2, w3, b3 = params
    h = ts.relu(x @ w1 + b1)
    h = ts.tanh(h @ w2 + b2)
    out = h @ w3 + b3
    loss = ((out - y) ** 2).mean()
    loss.backward()
    with ts.no_grad():
        for p in params:
            p -= lr * p.grad
    return loss


MLIR_OPT = shutil.which("mlir-opt-15") or shutil.which("mlir-opt")


def parse_mlir(text):
    if MLIR_OPT is None:
        pytest.skip("mlir-opt(-15) not installed: cannot check that the dumps parse")
    p = subprocess.run([MLIR_OPT, "--allow-unregistered-dialect", "-"], input=text,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, f"mlir-opt rejected the dump:\n{p.stderr}\n--- dump ---\n{text}"
    return p.stdout
