"""Naive retraining, the oracle: trains only on what remains, from the control's init or its own."""

import copy

import pytest
import torch

from unlearning import get_config
from unlearning.config import Convergence, TrainConfig
from unlearning.data.registry import load_dataset
from unlearning.methods import naive_retrain as nr
from unlearning.methods import unlearn
from unlearning.training.train import train_original

FAST = TrainConfig("adam", 1e-2, None, Convergence("fixed_epochs", 0.0, 5))


@pytest.fixture(scope="module")
def setup():
    data = load_dataset("synthetic", seed=3, n_points=12, n_test=50)
    cfg = get_config("synthetic", seed=3, train=FAST)
    trained = train_original(data, cfg)
    return data, cfg, trained


@pytest.fixture
def fit_spy(monkeypatch):
    calls = []
    real_fit = nr.fit

    def spy(model, x, y, task, cfg, **kw):
        calls.append({"x": x.clone(), "y": y.clone(), "init": copy.deepcopy(model.state_dict()),
                      "seed": kw.get("seed")})
        return real_fit(model, x, y, task, cfg, **kw)

    monkeypatch.setattr(nr, "fit", spy)
    return calls


def rows_in(rows: torch.Tensor, x: torch.Tensor) -> bool:
    return any(bool((x == r).all(dim=1).any()) for r in rows)


def test_remove_never_sees_a_forget_row(setup, fit_spy):
    data, _cfg, trained = setup
    forget = [2, 7, 11]
    result = unlearn("naive_retrain", trained, data, forget, get_config("synthetic", seed=3, train=FAST,
                                                                         forget_policy="remove"))
    assert len(fit_spy) == 1
    x = fit_spy[0]["x"]
    assert result.details["train_size"] == len(x) == data.n_train - 3
    assert not rows_in(data.x_train[forget], x)
    keep = [i for i in range(data.n_train) if i not in forget]
    assert torch.equal(x, data.x_train[keep]) and torch.equal(fit_spy[0]["y"], data.y_train[keep])
    assert result.cost.epochs == 5 and result.cost.samples == 5 * (data.n_train - 3)


def test_replace_keeps_size_and_swaps_in_the_replacement(setup, fit_spy):
    data, _cfg, trained = setup
    forget = [0, 5]
    result = unlearn("naive_retrain", trained, data, forget, get_config("synthetic", seed=3, train=FAST,
                                                                         forget_policy="replace"))
    x, y = fit_spy[0]["x"], fit_spy[0]["y"]
    assert result.details["train_size"] == len(x) == data.n_train
    assert torch.equal(x[forget], data.x_replacement[forget]) and torch.equal(y[forget], data.y_replacement[forget])
    keep = [i for i in range(data.n_train) if i not in forget]
    assert torch.equal(x[keep], data.x_train[keep]) and torch.equal(y[keep], data.y_train[keep])
    assert not rows_in(data.x_train[forget], x)
    # the data object itself is not modified
    assert not torch.equal(data.x_train[forget], data.x_replacement[forget])


def test_same_init_starts_from_the_controls_initial_weights(setup, fit_spy):
    data, cfg, trained = setup
    result = unlearn("naive_retrain", trained, data, [3], get_config("synthetic", seed=3, train=FAST,
                                                                      oracle_init="same", forget_policy="remove"))
    init = fit_spy[0]["init"]
    assert init.keys() == trained.init_state.keys()
    assert all(torch.equal(init[k], trained.init_state[k]) for k in init)
    assert fit_spy[0]["seed"] == cfg.seed                       # same shuffling seed as the control
    assert result.details["oracle_init"] == "same"
    assert result.details["init_redraws"] == trained.init_redraws
    # ... and is a new model: the trained control is not touched
    assert result.model is not trained.model
    assert not all(torch.equal(v, trained.model.state_dict()[k]) for k, v in result.model.state_dict().items())


def test_independent_init_differs_and_is_reproducible(setup, fit_spy):
    data, _cfg, trained = setup
    ind = get_config("synthetic", seed=3, train=FAST, oracle_init="independent")
    r1 = unlearn("naive_retrain", trained, data, [1], ind)
    r2 = unlearn("naive_retrain", trained, data, [1], ind)
    init1, init2 = fit_spy[0]["init"], fit_spy[1]["init"]
    assert not all(torch.equal(init1[k], trained.init_state[k]) for k in init1)
    assert all(torch.equal(init1[k], init2[k]) for k in init1)
    assert all(torch.equal(v, r2.model.state_dict()[k]) for k, v in r1.model.state_dict().items())
    assert r1.details["oracle_init"] == "independent"


def test_same_init_with_nothing_forgotten_would_reproduce_the_control(setup):
    # With `same` the oracle differs from the control only by its data: retraining the control's
    # exact set from the control's init with the control's config gives the control, bit for bit.
    data, cfg, trained = setup
    from unlearning.training.train import fit

    model = trained.initial_model(data.name)
    fit(model, data.x_train, data.y_train, data.task, cfg.train, seed=cfg.seed)
    assert all(torch.equal(v, trained.model.state_dict()[k]) for k, v in model.state_dict().items())
