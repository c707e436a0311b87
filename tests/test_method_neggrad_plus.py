"""NegGrad+ (`neggrad_plus`): α·L(retain) − (1 − α)·L(forget) over retain batches paired with cycled forget
batches, checked against updates worked out by hand, and run in train mode (the reference froze BatchNorm)."""

import copy

import pytest
import torch
from torch import nn
from toys import trained_of

from unlearning import get_config
from unlearning.data import Data
from unlearning.data.registry import DATASETS, load_dataset
from unlearning.methods import applicability, get_method, unlearn
from unlearning.methods.neggrad_plus import NegGradPlusConfig, paired_batches
from unlearning.training.train import Trained

CPU = torch.device("cpu")


def blobs(task: str = "multiclass", n: int = 24, seed: int = 1) -> Data:
    """Three separable Gaussian blobs in 2-D (or a linear target on them)."""
    gen = torch.Generator().manual_seed(seed)
    label = torch.arange(n) % 3
    x = torch.tensor([[2.0, 0.0], [-1.0, 2.0], [-1.0, -2.0]])[label] + 0.5 * torch.randn(n, 2, generator=gen)
    y = label if task == "multiclass" else x @ torch.tensor([1.0, -2.0])
    return Data(name=f"blobs-{task}", task=task, x_train=x, y_train=y, x_test=x[:6], y_test=y[:6],
                num_classes=3 if task == "multiclass" else None)


def fitted(data: Data, seed: int = 0, extra: tuple = (), steps: int = 150) -> Trained:
    """A toy MLP (Linear 2→8, `extra`, ReLU, Linear 8→3) trained on `data` with Adam, full batch."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 8), *extra, nn.ReLU(), nn.Linear(8, 3))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(data.x_train), data.y_train).backward()
        opt.step()
    model.eval()
    return trained_of(model, seed)


def config(seed: int = 0, **settings):
    return get_config("digits", seed=seed).with_method("neggrad_plus", **settings)


def states_close(a: dict, b: dict, atol: float = 1e-6) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k].float(), b[k].float(), atol=atol) for k in a)


# --- known answers -------------------------------------------------------------------------------------

def test_two_full_batch_steps_on_a_linear_model_match_the_closed_form():
    """y^ = Xw + b, grad MSE_S = (2/|S|) [X_S^T r, sum r]; the objective's gradient is
    α·grad MSE_retain − (1 − α)·grad MSE_forget (+ wd θ); torch's SGD with momentum μ, two steps."""
    data = blobs("regression")
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(2, 1))
    forget = [0, 4, 7, 11]
    alpha, lr, mu, wd = 0.8, 0.02, 0.5, 0.01
    res = unlearn("neggrad_plus", trained_of(model), data, forget,
                  config(alpha=alpha, lr=lr, epochs=2, momentum=mu, weight_decay=wd, batch_size=64))

    xb = torch.cat([data.x_train, torch.ones(data.n_train, 1)], 1).double()
    y = data.y_train.double()
    keep = data.retain_mask(torch.tensor(forget))

    def grad_mse(t, m):
        return (2 / int(m.sum())) * xb[m].T @ (xb[m] @ t - y[m])

    def g(t):
        return alpha * grad_mse(t, keep) - (1 - alpha) * grad_mse(t, ~keep) + wd * t

    theta = torch.cat([model[0].weight.detach().reshape(-1), model[0].bias.detach()]).double()
    v = g(theta)
    theta1 = theta - lr * v
    theta2 = theta1 - lr * (mu * v + g(theta1))
    got = torch.cat([res.model[0].weight.detach().reshape(-1), res.model[0].bias.detach()]).double()
    assert torch.allclose(got, theta2, rtol=1e-5, atol=1e-6)
    assert (res.cost.epochs, res.cost.steps, res.cost.samples) == (2, 2, 2 * data.n_train)  # 20 retain + 4 forget
    # the watched loss: the forget MSE before and after each epoch
    mse = [float(((xb[~keep] @ t - y[~keep]) ** 2).mean()) for t in (theta, theta1, theta2)]
    assert [res.cost.initial_loss, *res.cost.loss_history] == pytest.approx(mse, rel=1e-5)


def test_alpha_zero_is_gradient_ascent_and_alpha_one_is_descent_on_the_retain_set():
    data = blobs()
    trained = fitted(data)
    forget = [0, 1, 2, 3]
    common = {"lr": 0.05, "epochs": 3, "momentum": 0.0, "weight_decay": 0.0, "batch_size": 64}
    ng0 = unlearn("neggrad_plus", trained, data, forget, config(alpha=0.0, **common))
    ga = unlearn("gradient_ascent", trained, data, forget,
                 get_config("digits").with_method("gradient_ascent", **common))
    assert states_close(ng0.model.state_dict(), ga.model.state_dict())

    ng1 = unlearn("neggrad_plus", trained, data, forget, config(alpha=1.0, **common))
    model = trained.copy_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = data.oracle_set(forget)
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    assert states_close(ng1.model.state_dict(), model.state_dict())


# --- the paired batches ----------------------------------------------------------------------------------

def test_each_retain_batch_is_paired_with_the_next_batch_of_a_reshuffled_forget_cycle():
    gens = [torch.Generator().manual_seed(s) for s in (0, 1)]
    pairs = list(paired_batches(10, 6, 4, gens, CPU))
    assert [tuple(r.shape) for r, _ in pairs] == [(2, 4), (2, 4), (2, 2)]              # one pass over the retain set
    assert [tuple(f.shape) for _, f in pairs] == [(2, 4), (2, 2), (2, 4)]              # forget: 4, 2, then again
    for k in range(2):
        assert sorted(torch.cat([r[k] for r, _ in pairs]).tolist()) == list(range(10))
        assert sorted(torch.cat([pairs[0][1][k], pairs[1][1][k]]).tolist()) == list(range(6))   # a full pass
    assert not torch.equal(pairs[0][0][0], pairs[0][0][1])                             # each model its own order
    assert [f for _, f in paired_batches(10, 3, 4, gens, CPU)] == [None] * 3           # one batch holds the set
    assert list(paired_batches(10, 3, None, gens, CPU)) == [(None, None)]              # full batch


# --- the reference's defect: BatchNorm frozen by model.eval() -----------------------------------------------

def test_steps_run_in_train_mode_batchnorm_normalises_by_the_batch_and_updates_its_statistics():
    """The reference's `run_neggrad_epoch` calls `model.eval()`: BatchNorm would use (and keep) its running
    statistics. Here one full-batch step equals the step of a train-mode model, not an eval-mode one, and
    the running statistics move (two forwards a step: the retain batch, then the forget batch)."""
    data = blobs()
    trained = fitted(data, extra=(nn.BatchNorm1d(8),))
    forget = [0, 1, 2, 3]
    bn0 = copy.deepcopy(trained.model[1].state_dict())
    res = unlearn("neggrad_plus", trained, data, forget, config(lr=0.1, epochs=1, batch_size=64))

    def one_step(train_mode: bool) -> nn.Module:
        model = trained.copy_model().train(train_mode)
        x, y = data.oracle_set(forget)
        loss = 0.95 * nn.functional.cross_entropy(model(x), y) - 0.05 * nn.functional.cross_entropy(
            model(data.x_train[forget]), data.y_train[forget])
        loss.backward()
        torch.optim.SGD(model.parameters(), lr=0.1).step()
        return model

    assert states_close(res.model.state_dict(), one_step(True).state_dict())
    assert not states_close(res.model.state_dict(), one_step(False).state_dict(), atol=1e-4)
    bn = res.model[1]
    assert int(bn.num_batches_tracked) == int(bn0["num_batches_tracked"]) + 2
    assert not torch.equal(bn.running_mean, bn0["running_mean"]) and not torch.equal(bn.running_var, bn0["running_var"])
    assert torch.equal(trained.model[1].running_mean, bn0["running_mean"])       # the original's stay put
    assert not res.model.training


def test_dropout_is_on_and_seeded():
    data = blobs()
    trained = fitted(data, extra=(nn.Dropout(0.5),))
    run = [unlearn("neggrad_plus", trained, data, [0, 1], config(seed=s, lr=0.05, epochs=1, batch_size=64))
           for s in (0, 0, 1)]
    assert states_close(run[0].model.state_dict(), run[1].model.state_dict(), atol=0)     # same seed, same masks
    assert not states_close(run[0].model.state_dict(), run[2].model.state_dict())         # full batch: only dropout


# --- where it applies, and settings ----------------------------------------------------------------------

def test_it_applies_to_every_dataset_and_task():
    for name, spec in DATASETS.items():
        assert applicability(spec.probe(), spec.build_model(), ["neggrad_plus"]) == {"neggrad_plus": None}, name
    assert set(get_method("neggrad_plus").search.params) == {"lr", "epochs", "alpha"}


def test_the_replace_policy_trains_on_the_oracle_set_with_the_replacement():
    data = load_dataset("synthetic")
    cfg = get_config("synthetic")                                   # forget policy: replace
    torch.manual_seed(0)
    trained = trained_of(nn.Sequential(nn.Linear(data.x_train.shape[1], 4), nn.ReLU(), nn.Linear(4, 1)))
    res = unlearn("neggrad_plus", trained, data, [data.target_index], cfg.with_method("neggrad_plus", epochs=2))
    assert (res.cost.steps, res.cost.samples) == (2, 2 * (data.n_train + 1))   # all 10 rows (one replaced) + 1


def test_defaults_are_the_reference_ones():
    s = NegGradPlusConfig()
    assert (s.alpha, s.lr, s.epochs, s.optimizer, s.momentum, s.weight_decay, s.batch_size) == \
        (0.95, 0.01, 10, "sgd", 0.0, 0.0, None)


@pytest.mark.parametrize(("changes", "named"), [
    ({"alpha": 1.5}, "alpha"), ({"alpha": -0.1}, "alpha"), ({"alpha": None}, "alpha"), ({"lr": -1.0}, "lr"),
    ({"epochs": 0}, "epochs"), ({"momentum": 1.0}, "momentum"), ({"weight_decay": -1.0}, "weight_decay"),
    ({"optimizer": "adadelta", "momentum": 0.9}, "momentum"), ({"batch_size": 0}, "batch_size"),
    ({"optimizer": "lbfgs"}, "optimizer"),
])
def test_bad_settings_are_named(changes, named):
    with pytest.raises(ValueError, match=named):
        NegGradPlusConfig(**changes)
    with pytest.raises(ValueError, match=named):
        config(**changes)


# --- the suite's architectures -------------------------------------------------------------------------------

def test_runs_on_the_mnist_convnet(convnet_problem):
    p = convnet_problem
    res = unlearn("neggrad_plus", p.trained, p.data, p.forget, p.config.with_method("neggrad_plus", epochs=1,
                                                                                    batch_size=4))
    assert (res.cost.steps, res.cost.samples) == (4, 13 + 4 * 3)     # 13 retain images in 4 batches, each + all 3
    assert not states_close(res.model.state_dict(), p.trained.model.state_dict(), atol=0)


def test_runs_on_digits(digits_problem):
    p = digits_problem
    res = unlearn("neggrad_plus", p.trained, p.data, list(range(40)), p.config.with_method("neggrad_plus", epochs=2))
    # an epoch: 80 retain rows in batches of 32, each paired with the next of the forget cycle 32, 8, 32, 8, ...
    assert (res.cost.epochs, res.cost.steps, res.cost.samples) == (2, 6, 2 * (80 + 32 + 8 + 32))
    assert len(res.cost.loss_history) == 2 and all(torch.isfinite(w).all() for w in res.model.parameters())
    assert not states_close(res.model.state_dict(), p.trained.model.state_dict(), atol=0)
