"""Forget-set regimes (random, classwise, canaries) and the no-op floor."""

import pytest
import torch

from unlearning import get_config
from unlearning.config import Convergence, TrainConfig
from unlearning.data import Data
from unlearning.data import forget_sets as fs
from unlearning.data.registry import load_dataset
from unlearning.methods import unlearn
from unlearning.training.train import train_original


def toy(task: str, n: int = 40) -> Data:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=gen)
    if task == "regression":
        y = torch.rand(n, generator=gen)
    elif task == "binary":
        y = (torch.arange(n) % 2).float()
    else:
        y = torch.arange(n) % 4
    return Data("toy", task, x, y, x[:5], y[:5], num_classes=None if task == "regression" else
                (2 if task == "binary" else 4))


def test_random_is_the_papers_rule():
    data = load_dataset("synthetic", seed=0)
    same, forget = fs.select(data, 3, seed=1)
    assert same is data and forget[0] == data.target_index
    assert torch.equal(forget, fs.select_random(data, 3, seed=1))


def test_classwise_takes_seeded_points_of_one_class_up_to_all_of_it():
    data = toy("multiclass")
    _, forget = fs.select(data, 4, seed=3, regime="classwise", forget_class=2)
    assert (data.y_train[forget] == 2).all() and len(forget) == 4
    assert torch.equal(forget, fs.select_class(data, 4, seed=3, forget_class=2))
    every = fs.select_class(data, 10, forget_class=1)
    assert torch.equal(every, torch.nonzero(data.y_train == 1).flatten())
    with pytest.raises(ValueError, match=r"class 1 of toy has 10 training points; allowed 1\.\.10"):
        fs.select_class(data, 11, forget_class=1)
    with pytest.raises(ValueError, match=r"unknown forget class 7; allowed: 0, 1, 2, 3"):
        fs.select_class(data, 2, forget_class=7)
    with pytest.raises(ValueError, match="'classwise' needs classes; toy is regression"):
        fs.select(toy("regression"), 2, regime="classwise")


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_canaries_carry_wrong_labels_on_a_copy(task):
    data = toy(task)
    canaried, forget = fs.select(data, 8, seed=5, regime="canaries")
    rest = data.retain_mask(forget)
    assert canaried is not data and torch.equal(canaried.y_train[rest], data.y_train[rest])
    assert (canaried.y_train[forget] != data.y_train[forget]).all()
    assert canaried.info["canaries"]["true_labels"] == data.y_train[forget].tolist()
    assert torch.equal(data.y_train, toy(task).y_train)                 # the input is left alone
    if task == "regression":
        lo, hi = float(data.y_train.min()), float(data.y_train.max())
        moved = (canaried.y_train[forget] - data.y_train[forget]).abs()
        assert torch.allclose(moved, torch.full_like(moved, (hi - lo) / 2), atol=1e-6)
    again, forget2 = fs.with_canaries(data, 8, seed=5)
    assert torch.equal(forget, forget2) and torch.equal(again.y_train, canaried.y_train)


def test_regime_and_size_errors():
    data = toy("binary")
    with pytest.raises(ValueError, match="unknown forget regime 'edge'; allowed: random, classwise, canaries"):
        fs.select(data, 2, regime="edge")
    for size in (0, 40, 2.5):
        with pytest.raises(ValueError, match=f"removal size {size!r}: allowed 1..39 for toy"):
            fs.select(data, size, regime="canaries")


def test_noop_returns_an_untouched_copy_at_zero_cost():
    data = load_dataset("synthetic", seed=0)
    cfg = get_config("synthetic", train=TrainConfig(convergence=Convergence("fixed_epochs", 0.0, 3)))
    trained = train_original(data, cfg)
    result = unlearn("noop", trained, data, [data.target_index], cfg)
    assert result.model is not trained.model
    for a, b in zip(result.model.state_dict().values(), trained.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    cost = result.cost.cost()
    assert (cost["epochs"], cost["steps"], cost["samples_processed"], cost["seconds"]) == (0, 0, 0, 0.0)
    assert cost["converged"] is None
