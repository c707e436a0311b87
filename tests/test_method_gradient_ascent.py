"""NegGrad (`gradient_ascent`): SGD up the forget set's training loss, checked against updates worked out by hand."""

import copy
import itertools

import pytest
import torch
from torch import nn
from toys import trained_of

from unlearning import get_config
from unlearning.data import Data
from unlearning.data.registry import DATASETS
from unlearning.methods import applicability, get_method, unlearn
from unlearning.methods.gradient_ascent import GradientAscentConfig
from unlearning.training.train import Trained


def blobs(task: str = "multiclass", n: int = 24, classes: int = 3, seed: int = 1) -> Data:
    """Three separable Gaussian blobs in 2-D (or their first class against the rest, or a linear target)."""
    gen = torch.Generator().manual_seed(seed)
    label = torch.arange(n) % classes
    centres = torch.tensor([[2.0, 0.0], [-1.0, 2.0], [-1.0, -2.0]])
    x = centres[label] + 0.5 * torch.randn(n, 2, generator=gen)
    y = {"multiclass": label, "binary": (label == 0).float(), "regression": x @ torch.tensor([1.0, -2.0])}[task]
    return Data(name=f"blobs-{task}", task=task, x_train=x, y_train=y, x_test=x[:6], y_test=y[:6],
                num_classes=classes if task == "multiclass" else None)


def mlp(outputs: int, seed: int = 0, extra: tuple = ()) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 8), *extra, nn.ReLU(), nn.Linear(8, outputs))


def fitted(data: Data, seed: int = 0, extra: tuple = (), steps: int = 150) -> Trained:
    """A toy MLP trained on `data` with Adam (full batch), so the forget points start well fitted."""
    model = mlp(data.num_classes or 1, seed, extra)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    loss = {"multiclass": nn.functional.cross_entropy,
            "binary": lambda o, y: nn.functional.binary_cross_entropy_with_logits(o.reshape(-1), y),
            "regression": lambda o, y: nn.functional.mse_loss(o.reshape(-1), y)}[data.task]
    for _ in range(steps):
        opt.zero_grad()
        loss(model(data.x_train), data.y_train).backward()
        opt.step()
    model.eval()
    return trained_of(model, seed)


def config(seed: int = 0, **settings):
    return get_config("digits", seed=seed).with_method("gradient_ascent", **settings)


def states_close(a: dict, b: dict, atol: float = 1e-6) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k].float(), b[k].float(), atol=atol) for k in a)


# --- known answers -------------------------------------------------------------------------------------

def test_two_sgd_steps_up_the_mse_of_a_linear_model_match_the_closed_form():
    """Linear regression y^ = Xw + b: grad MSE = (2/n) [X^T r, sum r], r = y^ - y. The ascent minimises
    -MSE + wd/2 |θ|^2 with torch's SGD: v1 = g0, θ1 = θ0 - lr v1, v2 = μ v1 + g1, θ2 = θ1 - lr v2,
    where g = -grad MSE + wd θ."""
    data = blobs("regression")
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(2, 1))
    forget = [0, 4, 7, 11]
    lr, mu, wd = 0.05, 0.9, 0.01
    res = unlearn("gradient_ascent", trained_of(model), data, forget,
                  config(lr=lr, epochs=2, momentum=mu, weight_decay=wd, batch_size=64))

    x, y = data.x_train[forget].double(), data.y_train[forget].double()
    theta = torch.cat([model[0].weight.detach().reshape(-1), model[0].bias.detach()]).double()
    xb = torch.cat([x, torch.ones(len(x), 1, dtype=torch.float64)], 1)

    def g(t):
        return -(2 / len(x)) * xb.T @ (xb @ t - y) + wd * t

    v = g(theta)
    theta1 = theta - lr * v
    v = mu * v + g(theta1)
    theta2 = theta1 - lr * v
    got = torch.cat([res.model[0].weight.detach().reshape(-1), res.model[0].bias.detach()]).double()
    assert torch.allclose(got, theta2, rtol=1e-5, atol=1e-6)
    # the watched loss is the forget MSE before and after each epoch
    mse = [float(((xb @ t - y) ** 2).mean()) for t in (theta, theta1, theta2)]
    assert res.cost.initial_loss == pytest.approx(mse[0], rel=1e-5)
    assert res.cost.loss_history == pytest.approx(mse[1:], rel=1e-5)
    assert mse[0] < mse[1] < mse[2]


@pytest.mark.parametrize("task", ["multiclass", "binary", "regression"])
def test_ascent_climbs_the_training_loss_on_the_forget_set_only_for_every_task(task):
    data = blobs(task)
    trained = fitted(data)
    forget = [0, 1, 2, 3, 4, 5]
    before = trained.copy_model()
    res = unlearn("gradient_ascent", trained, data, forget, config(lr=0.02, epochs=6, momentum=0.0))
    losses = [res.cost.initial_loss, *res.cost.loss_history]
    assert all(a < b for a, b in itertools.pairwise(losses)), losses       # small steps: monotone ascent
    assert res.cost.epochs == 6 and res.cost.steps == 6 and res.cost.samples == 36   # one batch holds the set
    assert res.cost.converged is None and "gradient ascent" in res.cost.rule
    assert states_close(trained.model.state_dict(), before.state_dict(), atol=0)     # trained.model untouched
    assert not res.model.training


def test_ascent_on_one_point_lowers_its_true_class_probability_until_the_prediction_flips():
    """One forget point: the mean loss is -log p(true class), so the ascent drives p down every epoch
    (small steps) until the point is misclassified. (Nothing holds the other points: here 14 of the 23
    flip with it, the collateral damage NegGrad+ adds its retain term against.)"""
    data = blobs()
    trained = fitted(data, steps=20)
    res = unlearn("gradient_ascent", trained, data, [0], config(lr=0.5, epochs=20, momentum=0.0))
    losses = [res.cost.initial_loss, *res.cost.loss_history]
    assert all(a < b for a, b in itertools.pairwise(losses)), losses
    with torch.no_grad():
        before, after = trained.model(data.x_train[:1]).argmax(1), res.model(data.x_train[:1]).argmax(1)
        p_true = res.model(data.x_train[:1]).softmax(1)[0, data.y_train[0]]
    assert before[0] == data.y_train[0] and after[0] != data.y_train[0]
    assert float(p_true) == pytest.approx(float(torch.exp(-torch.tensor(losses[-1]))), rel=1e-4)


# --- on_epoch and seeds (eval mode, final weights, batched = K single runs: tests/test_method_contract.py) ----------

def test_on_epoch_sees_the_original_first_then_each_epoch_of_shuffled_batches():
    data, trained = blobs(), fitted(blobs())
    calls = []
    res = unlearn("gradient_ascent", trained, data, [0, 1, 2, 3, 4, 5], config(lr=0.01, epochs=3, batch_size=4),
                  on_epoch=lambda e, m: calls.append((e, copy.deepcopy(m.state_dict()))))
    assert [e for e, _ in calls] == [0, 1, 2, 3]
    assert states_close(calls[0][1], trained.model.state_dict(), atol=0)
    assert (res.cost.steps, res.cost.samples) == (6, 18)                   # 2 shuffled batches (4, 2) an epoch


def test_the_same_seed_gives_the_same_model_and_another_seed_another_shuffle():
    data = blobs()
    trained = fitted(data)
    forget = list(range(8))
    a, b = (unlearn("gradient_ascent", trained, data, forget, config(seed=0, lr=0.05, batch_size=3))
            for _ in range(2))
    c = unlearn("gradient_ascent", trained, data, forget, config(seed=1, lr=0.05, batch_size=3))
    assert states_close(a.model.state_dict(), b.model.state_dict(), atol=0)
    assert not states_close(a.model.state_dict(), c.model.state_dict())


# --- where it applies, and settings ----------------------------------------------------------------------

def test_it_applies_to_every_dataset_and_task():
    for name, spec in DATASETS.items():
        assert applicability(spec.probe(), spec.build_model(), ["gradient_ascent"]) == {"gradient_ascent": None}, name
    assert get_method("gradient_ascent").search is not None


def test_defaults_are_the_reference_ones():
    s = GradientAscentConfig()
    assert (s.lr, s.epochs, s.optimizer, s.momentum, s.weight_decay, s.batch_size) == (1e-4, 5, "sgd", 0.9, 5e-4, None)


@pytest.mark.parametrize(("changes", "named"), [
    ({"lr": 0.0}, "lr"), ({"lr": float("nan")}, "lr"), ({"epochs": 0}, "epochs"), ({"epochs": 2.5}, "epochs"),
    ({"momentum": 1.0}, "momentum"), ({"momentum": -0.1}, "momentum"), ({"weight_decay": -1e-4}, "weight_decay"),
    ({"optimizer": "rmsprop"}, "optimizer"), ({"optimizer": "adam"}, "momentum"), ({"batch_size": 0}, "batch_size"),
])
def test_bad_settings_are_named(changes, named):
    with pytest.raises(ValueError, match=named):
        GradientAscentConfig(**changes)
    with pytest.raises(ValueError, match=named):
        config(**changes)


def test_adam_without_momentum_runs():
    data = blobs()
    res = unlearn("gradient_ascent", fitted(data), data, [0, 1], config(optimizer="adam", momentum=0.0, lr=1e-3))
    assert res.cost.loss_history[-1] > res.cost.initial_loss


# --- train mode, like the training -------------------------------------------------------------------------

def test_steps_run_in_train_mode_batchnorm_statistics_move():
    data = blobs()
    trained = fitted(data, extra=(nn.BatchNorm1d(8),))
    bn0 = copy.deepcopy(trained.model[1].state_dict())
    res = unlearn("gradient_ascent", trained, data, [0, 1, 2, 3], config(lr=0.01, epochs=2))
    bn = res.model[1]
    assert int(bn.num_batches_tracked) == int(bn0["num_batches_tracked"]) + 2    # one forward per step
    assert not torch.equal(bn.running_mean, bn0["running_mean"])
    assert torch.equal(trained.model[1].running_mean, bn0["running_mean"])       # the original's stay put


# --- the suite's architectures -------------------------------------------------------------------------------

def test_runs_on_the_mnist_convnet(convnet_problem):
    p = convnet_problem
    res = unlearn("gradient_ascent", p.trained, p.data, p.forget, p.config.with_method("gradient_ascent", lr=0.01,
                                                                                      epochs=2))
    assert res.cost.steps == 2 and res.cost.loss_history[-1] > res.cost.initial_loss
    assert not states_close(res.model.state_dict(), p.trained.model.state_dict(), atol=0)


def test_runs_on_digits(digits_problem):
    p, forget = digits_problem, list(range(40))                        # 2 batches of the preset's 32 an epoch
    res = unlearn("gradient_ascent", p.trained, p.data, forget, p.config.with_method("gradient_ascent", lr=0.01))
    assert (res.cost.epochs, res.cost.steps, res.cost.samples) == (2, 4, 80)  # the preset's 5 epochs capped at 2
    assert res.cost.loss_history[-1] > res.cost.initial_loss
