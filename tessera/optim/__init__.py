"""Optimizers, as `torch.optim`: `SGD`, `Adam`, `AdamW` on an `Optimizer` base
with parameter groups and state dicts."""
from .optimizer import Optimizer
from .sgd_adam import SGD, Adam, AdamW

__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]
