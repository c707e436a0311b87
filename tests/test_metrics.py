"""The papers' metrics on tensors and models whose outputs are known exactly."""

import math

import pytest
import torch
from torch import nn

from unlearning.data import Data
from unlearning.evaluation.metrics import accuracy, correct, deletion_metric, evaluate, logit_l1, mse, ratio


def identity_linear(n: int) -> nn.Linear:
    """A Linear layer whose output equals its input: model(x) = x, so x *is* the logits."""
    layer = nn.Linear(n, n)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(n))
        layer.bias.zero_()
    return layer


def scaled(a: float, b: float) -> nn.Linear:
    layer = nn.Linear(1, 1)
    with torch.no_grad():
        layer.weight.fill_(a)
        layer.bias.fill_(b)
    return layer


# --- S and d ------------------------------------------------------------------------------------------

def test_logit_l1_on_tensors():
    a = torch.tensor([[1.0, -2.0], [0.5, 0.0]])
    b = torch.tensor([[0.0, 1.0], [0.5, -4.0]])
    assert logit_l1(a, b) == pytest.approx(1 + 3 + 0 + 4)
    assert logit_l1(a, a) == 0.0
    assert logit_l1(a, b) == logit_l1(b, a)


def test_logit_l1_on_models():
    x = torch.tensor([[0.0], [1.0], [-2.0]])
    # a(x) = 2x + 1 = (1, 3, −3); b(x) = −x = (0, −1, 2): |1| + |4| + |−5| = 10
    assert logit_l1(scaled(2.0, 1.0), scaled(-1.0, 0.0), x) == pytest.approx(10.0)
    # a model against precomputed outputs
    assert logit_l1(scaled(2.0, 1.0), torch.tensor([[1.0], [3.0], [-3.0]]), x) == 0.0


def test_deletion_metric_by_hand():
    x = torch.zeros(3, 1)                    # only its length (|Y| = 3) matters for tensors
    out_r = torch.tensor([[1.0], [2.0], [3.0]])
    out_c = torch.tensor([[1.5], [2.0], [1.0]])
    out_o = torch.tensor([[1.0], [1.0], [3.0]])
    m = deletion_metric(out_r, out_c, out_o, x)
    assert m["s_to_control"] == pytest.approx(0.5 + 0 + 2)
    assert m["s_to_oracle"] == pytest.approx(0 + 1 + 0)
    assert m["d"] == pytest.approx((2.5 - 1.0) / 3)


def test_deletion_metric_with_models_and_signs():
    x = torch.tensor([[1.0], [2.0]])
    control, oracle = scaled(1.0, 0.0), scaled(1.0, 1.0)      # outputs (1, 2) and (2, 3): S = 2
    # the oracle itself: S to control 2, S to oracle 0, d = 2 / 2 = 1 > 0
    assert deletion_metric(oracle, control, oracle, x) == pytest.approx({"s_to_control": 2.0, "s_to_oracle": 0.0,
                                                                         "d": 1.0})
    # the control itself: d = −1
    assert deletion_metric(control, control, oracle, x)["d"] == pytest.approx(-1.0)
    # half-way: outputs (1.5, 2.5): S_c = 1, S_o = 1, d = 0
    assert deletion_metric(scaled(1.0, 0.5), control, oracle, x)["d"] == pytest.approx(0.0)


# --- accuracy ----------------------------------------------------------------------------------------

def test_correct_binary_one_logit_positive_is_class_1():
    out = torch.tensor([[2.0], [-0.5], [0.0], [3.0]])
    y = torch.tensor([1.0, 0.0, 1.0, 0.0])           # 0.0 is not > 0: class 0
    assert correct(out, y, "binary").tolist() == [1.0, 1.0, 0.0, 0.0]


def test_correct_multiclass_argmax():
    out = torch.tensor([[0.1, 0.9, 0.0], [5.0, 1.0, 2.0], [0.0, 0.0, 1.0]])
    assert correct(out, torch.tensor([1, 0, 0]), "multiclass").tolist() == [1.0, 1.0, 0.0]


def test_correct_rejects_regression():
    with pytest.raises(ValueError, match="regression"):
        correct(torch.zeros(2, 1), torch.zeros(2), "regression")


def test_accuracy_on_known_logits():
    x = torch.tensor([[2.0], [-1.0], [0.5], [-3.0], [0.25]])
    y = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0])
    assert accuracy(identity_linear(1), x, y, "binary") == pytest.approx(3 / 5)
    xm = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    assert accuracy(identity_linear(3), xm, torch.tensor([0, 1, 1, 2]), "multiclass") == pytest.approx(0.5)


def test_accuracy_and_mse_nan_on_empty():
    assert math.isnan(accuracy(identity_linear(1), torch.zeros(0, 1), torch.zeros(0), "binary"))
    assert math.isnan(mse(identity_linear(1), torch.zeros(0, 1), torch.zeros(0)))


def test_mse_by_hand():
    x = torch.tensor([[1.0], [2.0], [3.0]])
    # outputs (1, 2, 3) against (0, 2, 5): (1 + 0 + 4) / 3
    assert mse(identity_linear(1), x, torch.tensor([0.0, 2.0, 5.0])) == pytest.approx(5 / 3)


# --- evaluate ----------------------------------------------------------------------------------------

def binary_data(n_test=4) -> Data:
    # the model is the identity: logit = x; class 1 iff x > 0
    x_train = torch.tensor([[1.0], [-1.0], [2.0], [-2.0], [3.0]])
    y_train = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0])          # rows 1 and 4 are wrong
    x_test = torch.tensor([[1.0], [-1.0], [1.0], [-1.0]])[:n_test]
    y_test = torch.tensor([1.0, 0.0, 0.0, 0.0])[:n_test]         # row 2 is wrong
    return Data(name="toy", task="binary", num_classes=2, x_train=x_train, y_train=y_train,
                x_test=x_test, y_test=y_test)


def test_evaluate_classification():
    data = binary_data()
    res = evaluate(identity_linear(1), data, torch.tensor([1, 2]))
    assert set(res) == {"test_acc", "forget_acc", "total_acc", "train_acc"}
    assert res["test_acc"] == pytest.approx(3 / 4)
    assert res["forget_acc"] == pytest.approx(1 / 2)            # row 1 wrong, row 2 right
    assert res["total_acc"] == pytest.approx((3 + 1) / (4 + 2))  # test ∪ forget
    assert res["train_acc"] == pytest.approx(3 / 5)


def test_evaluate_empty_test_set():
    data = binary_data(n_test=0)
    res = evaluate(identity_linear(1), data, torch.tensor([0, 1, 4]))
    assert math.isnan(res["test_acc"])
    assert res["forget_acc"] == pytest.approx(1 / 3)
    assert res["total_acc"] == res["forget_acc"]


def test_evaluate_multiclass():
    x = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    data = Data(name="toy3", task="multiclass", num_classes=3, x_train=x, y_train=torch.tensor([0, 1, 0, 0]),
                x_test=x[:2], y_test=torch.tensor([0, 2]))
    res = evaluate(identity_linear(3), data, torch.tensor([2]))
    assert res == pytest.approx({"test_acc": 0.5, "forget_acc": 0.0, "total_acc": 1 / 3, "train_acc": 0.75})


def test_evaluate_regression():
    x = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    data = Data(name="toyreg", task="regression", x_train=x, y_train=torch.tensor([0.0, 2.0, 2.0, 0.0]),
                x_test=torch.tensor([[1.0], [1.0]]), y_test=torch.tensor([1.0, 3.0]))
    res = evaluate(identity_linear(1), data, torch.tensor([1, 3]))
    assert set(res) == {"test_mse", "forget_mse", "total_mse", "train_mse"}
    # squared errors: train (0, 1, 0, 9); test (0, 4); forget = train rows 1, 3: (1, 9)
    assert res == pytest.approx({"test_mse": 2.0, "forget_mse": 5.0, "total_mse": 14 / 4, "train_mse": 10 / 4})


# --- ratio -------------------------------------------------------------------------------------------

def test_ratio():
    assert ratio(3, 4) == 0.75
    assert ratio(0, 5) == 0.0
    assert math.isnan(ratio(5, 0))
    assert math.isnan(ratio(0, 0))
    assert math.isnan(ratio(1.0, 0.0))
