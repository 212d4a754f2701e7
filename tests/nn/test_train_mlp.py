"""End to end: a small MLP (tessera.nn + tessera.optim + tessera.cross_entropy)
learns a synthetic classification task."""
import numpy as np
import pytest

import tessera as ts
from tessera import nn
from tessera.random import Generator

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device


@pytest.mark.parametrize("opt_name,kw", [("Adam", dict(lr=1e-2)),
                                         ("SGD", dict(lr=0.2, momentum=0.9))])
def test_mlp_loss_drops_tenfold(opt_name, kw):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 8)).astype(np.float32)
    W = rng.normal(size=(8, 3))
    y = np.argmax(np.tanh(X @ W) + 0.1 * X[:, :3] ** 2, axis=1)  # 3 nonlinear classes
    Xt, yt = ts.asarray(X), ts.asarray(y, dtype="int64")
    model = nn.Sequential(nn.Linear(8, 64, generator=Generator(1)), nn.ReLU(),
                          nn.Linear(64, 64, generator=Generator(2)), nn.Tanh(),
                          nn.Linear(64, 3, generator=Generator(3)))
    opt = getattr(ts.optim, opt_name)(model.parameters(), **kw)
    losses = []
    for _ in range(150):
        opt.zero_grad()
        loss = nn.cross_entropy(model(Xt), yt)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 10, (losses[0], losses[-1])
    model.eval()
    with ts.no_grad():
        acc = float(ts.mean(ts.astype(ts.argmax(model(Xt), axis=1) == yt, "fp32")))
    assert acc > 0.95
