"""The papers' metrics.

- Paper 002, Table 1: accuracy on the standard test set, on the unlearned
  (forget) set with its true labels, and on the total test set (test ∪ forget).
- Paper 000, section 4.1: logit L1 distance `S(m_r, m†, X) = ||m_r(X) − m†(X)||_1`
  and deletion metric `d = (S(m_r, m_c, X) − S(m_r, m_o, X)) / |Y|`, where X is
  the control training set and |Y| its number of labels (points). d > 0: the
  unlearned model is closer to the oracle than to the control.
- Costs: epochs-to-convergence ratio and speed-ups over naive retraining.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config import EVAL_SETS
from ..data import Data
from ..training.train import predict


def correct(out: torch.Tensor, y: torch.Tensor, task: str) -> torch.Tensor:
    """Per-row 0/1 correctness of outputs (one logit for binary, k logits for multiclass)."""
    if task == "binary":
        return ((out.reshape(-1) > 0).float() == y).float()
    if task == "multiclass":
        return (out.argmax(dim=1) == y).float()
    raise ValueError(f"accuracy is defined for classification tasks, not {task!r}")


def score(out: torch.Tensor, y: torch.Tensor, task: str) -> float:
    """Accuracy (classification) or mean squared error (regression) of outputs; NaN on an empty set."""
    if len(y) == 0:
        return math.nan
    if task == "regression":
        return float(((out.reshape(-1) - y) ** 2).mean())
    return float(correct(out, y, task).mean())


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, task: str) -> float:
    """Fraction of rows classified correctly; NaN on an empty set."""
    if task == "regression":
        raise ValueError(f"accuracy is defined for classification tasks, not {task!r}")
    return score(predict(model, x), y, task)


def mse(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean squared error of a one-output regressor; NaN on an empty set."""
    return score(predict(model, x), y, "regression")


def evaluate(model: nn.Module, data: Data, forget: torch.Tensor, sets=EVAL_SETS,
             outputs: dict | None = None) -> dict[str, float]:
    """Quality on the test set, the forget set (true labels), their union and the training set.

    Classification: `test_acc`, `forget_acc`, `total_acc` (paper 002's three
    columns) and `train_acc` on the full training set (paper 000 reports
    accuracy on its 10 training points). Regression: the same with `_mse`.
    `sets` picks which (the training set is the costly one on MNIST). Each set
    is predicted once (the total reuses test and forget); pass a dict as
    `outputs` to receive the model's outputs on "test"/"train" for reuse.
    """
    unknown = set(sets) - set(EVAL_SETS)
    if unknown:
        raise ValueError(f"unknown evaluation set {sorted(unknown)[0]!r}; allowed: {', '.join(EVAL_SETS)}")
    outputs = {} if outputs is None else outputs
    inputs = {"test": (data.x_test, data.y_test), "forget": (data.x_train[forget], data.y_train[forget]),
              "train": (data.x_train, data.y_train)}

    def out(name):
        if name not in outputs:
            outputs[name] = predict(model, inputs[name][0])
        return outputs[name], inputs[name][1]

    def part(name):
        if name != "total":
            return out(name)
        (ot, yt), (of, yf) = out("test"), out("forget")
        return torch.cat([ot, of]), torch.cat([yt, yf])

    suffix = "mse" if data.task == "regression" else "acc"
    return {f"{k}_{suffix}": score(*part(k), data.task) for k in sets}


def logit_l1(a: nn.Module | torch.Tensor, b: nn.Module | torch.Tensor, x: torch.Tensor | None = None) -> float:
    """`S(a, b, X) = ||a(X) − b(X)||_1`: models are evaluated on x, tensors taken as outputs."""
    oa = predict(a, x) if isinstance(a, nn.Module) else a
    ob = predict(b, x) if isinstance(b, nn.Module) else b
    return float((oa - ob).abs().sum())


def deletion_metric(m_r, m_c, m_o, x: torch.Tensor) -> dict[str, float]:
    """`S(m_r, m_c)`, `S(m_r, m_o)` and `d = (S(m_r, m_c) − S(m_r, m_o)) / |Y|` on x.

    Each argument is a model or its precomputed outputs on x.
    """
    out = [predict(m, x) if isinstance(m, nn.Module) else m for m in (m_r, m_c, m_o)]
    s_c, s_o = logit_l1(out[0], out[1]), logit_l1(out[0], out[2])
    return {"s_to_control": s_c, "s_to_oracle": s_o, "d": (s_c - s_o) / len(x)}


def ratio(num: float, den: float) -> float:
    """num / den, NaN when the denominator is 0 (e.g. an oracle that needed 0 epochs)."""
    return num / den if den else math.nan
