"""NegGrad+ (`neggrad_plus`): α·(L(retain) + (λ/2)·‖θ − θ₀‖²) − (1 − α)·L(forget) over retain batches paired with
cycled forget batches, checked against updates worked out by hand, and run in train mode (the reference froze
BatchNorm); the suite's former setting (`SUITE_BATCH32`) against the former code's weights."""

import copy
import hashlib

import pytest
import torch
from torch import nn
from toys import toy_problem, trained_of

from unlearning import get_config
from unlearning.data import Data
from unlearning.data.registry import DATASETS, load_dataset
from unlearning.methods import applicability, get_method, unlearn, unlearn_many
from unlearning.methods.neggrad_plus import SEARCH, SUITE_BATCH32, NegGradPlusConfig, paired_batches
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

@pytest.mark.parametrize("l2", [0.0, 5.0])
def test_two_full_batch_steps_on_a_linear_model_match_the_closed_form(l2):
    """y^ = Xw + b, grad MSE_S = (2/|S|) [X_S^T r, sum r]; the objective's gradient is
    α·(grad MSE_retain + λ(θ − θ₀)) − (1 − α)·grad MSE_forget (+ wd θ); torch's SGD with momentum μ, two steps."""
    data = blobs("regression")
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(2, 1))
    forget = [0, 4, 7, 11]
    alpha, lr, mu, wd = 0.8, 0.02, 0.5, 0.01
    res = unlearn("neggrad_plus", trained_of(model), data, forget,
                  config(alpha=alpha, lr=lr, epochs=2, momentum=mu, weight_decay=wd, retain_batch=64,
                         forget_batch=64, l2_init=l2))

    xb = torch.cat([data.x_train, torch.ones(data.n_train, 1)], 1).double()
    y = data.y_train.double()
    keep = data.retain_mask(torch.tensor(forget))
    theta = torch.cat([model[0].weight.detach().reshape(-1), model[0].bias.detach()]).double()

    def grad_mse(t, m):
        return (2 / int(m.sum())) * xb[m].T @ (xb[m] @ t - y[m])

    def steps(lam):
        def g(t):
            return alpha * (grad_mse(t, keep) + lam * (t - theta)) - (1 - alpha) * grad_mse(t, ~keep) + wd * t

        v = g(theta)
        theta1 = theta - lr * v
        return theta1, theta1 - lr * (mu * v + g(theta1))

    theta1, theta2 = steps(l2)
    got = torch.cat([res.model[0].weight.detach().reshape(-1), res.model[0].bias.detach()]).double()
    assert torch.allclose(got, theta2, rtol=1e-5, atol=1e-6)
    if l2:       # the term moves the second step (the first starts at θ₀, where its gradient is 0) beyond tolerance
        assert (theta2 - steps(0.0)[1]).abs().max() > 1e-4
    assert (res.cost.epochs, res.cost.steps, res.cost.samples) == (2, 2, 2 * data.n_train)  # 20 retain + 4 forget
    # the watched loss: the forget MSE before and after each epoch
    mse = [float(((xb[~keep] @ t - y[~keep]) ** 2).mean()) for t in (theta, theta1, theta2)]
    assert [res.cost.initial_loss, *res.cost.loss_history] == pytest.approx(mse, rel=1e-5)


def test_the_l2_term_pulls_each_of_k_stacked_models_to_its_own_start():
    """K = 2 problems with different trained models run as one stack; each model's run equals its run alone (K = 1),
    so the penalty of model k is measured against model k's own θ₀, not a shared one."""
    a, b = toy_problem("digits", 0), toy_problem("digits", 1)
    cfg = a.config.with_method("neggrad_plus", epochs=2, lr=0.05, retain_batch=32, forget_batch=16, l2_init=5.0)
    forget = list(range(20))
    both = unlearn_many("neggrad_plus", [a.trained, b.trained], [a.data, b.data], [forget, forget], [cfg, cfg])
    for p, res in zip((a, b), both, strict=True):
        alone = unlearn("neggrad_plus", p.trained, p.data, forget, cfg)
        assert states_close(res.model.state_dict(), alone.model.state_dict(), atol=1e-5)
    assert not states_close(both[0].model.state_dict(), unlearn(
        "neggrad_plus", a.trained, a.data, forget, cfg.with_method("neggrad_plus", l2_init=0.0)).model.state_dict(),
        atol=1e-4)


def test_alpha_zero_is_gradient_ascent_and_alpha_one_is_descent_on_the_retain_set():
    data = blobs()
    trained = fitted(data)
    forget = [0, 1, 2, 3]
    common = {"lr": 0.05, "epochs": 3, "momentum": 0.0, "weight_decay": 0.0}
    ng = {"retain_batch": 64, "forget_batch": 64, "l2_init": 0.0}
    ng0 = unlearn("neggrad_plus", trained, data, forget, config(alpha=0.0, **common, **ng))
    ga = unlearn("gradient_ascent", trained, data, forget,
                 get_config("digits").with_method("gradient_ascent", **common, batch_size=64))
    assert states_close(ng0.model.state_dict(), ga.model.state_dict())

    ng1 = unlearn("neggrad_plus", trained, data, forget, config(alpha=1.0, **common, **ng))
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
    pairs = list(paired_batches(10, 6, 4, 4, gens, CPU))
    assert [tuple(r.shape) for r, _ in pairs] == [(2, 4), (2, 4), (2, 2)]              # one pass over the retain set
    assert [tuple(f.shape) for _, f in pairs] == [(2, 4), (2, 2), (2, 4)]              # forget: 4, 2, then again
    for k in range(2):
        assert sorted(torch.cat([r[k] for r, _ in pairs]).tolist()) == list(range(10))
        assert sorted(torch.cat([pairs[0][1][k], pairs[1][1][k]]).tolist()) == list(range(6))   # a full pass
    assert not torch.equal(pairs[0][0][0], pairs[0][0][1])                             # each model its own order
    assert [f for _, f in paired_batches(10, 3, 4, 4, gens, CPU)] == [None] * 3        # one batch holds the set
    assert list(paired_batches(10, 3, None, None, gens, CPU)) == [(None, None)]        # full batch


def test_the_two_batch_sizes_are_honoured(digits_problem):
    gens = [torch.Generator().manual_seed(s) for s in (0, 1)]
    pairs = list(paired_batches(10, 7, 3, 2, gens, CPU))
    assert [r.shape[1] for r, _ in pairs] == [3, 3, 3, 1]                            # retain in 3s
    assert [f.shape[1] for _, f in pairs] == [2, 2, 2, 1]                            # forget in 2s: 2, 2, 2, 1
    assert next(paired_batches(10, 7, None, 2, gens, CPU))[0] is None                  # retain in one batch
    # a whole run: 80 retain rows in 32, 32, 16, each paired with the next of the forget cycle 24, 16, 24
    p = digits_problem
    res = unlearn("neggrad_plus", p.trained, p.data, list(range(40)),
                  p.config.with_method("neggrad_plus", epochs=1, retain_batch=32, forget_batch=24))
    assert (res.cost.steps, res.cost.samples) == (3, 80 + 24 + 16 + 24)
    assert "retain batch 32, forget batch 24" in res.cost.rule


# --- the reference's defect: BatchNorm frozen by model.eval() -----------------------------------------------

def test_steps_run_in_train_mode_batchnorm_normalises_by_the_batch_and_updates_its_statistics():
    """The reference's `run_neggrad_epoch` calls `model.eval()`: BatchNorm would use (and keep) its running
    statistics. Here one full-batch step equals the step of a train-mode model, not an eval-mode one, and
    the running statistics move (two forwards a step: the retain batch, then the forget batch)."""
    data = blobs()
    trained = fitted(data, extra=(nn.BatchNorm1d(8),))
    forget = [0, 1, 2, 3]
    bn0 = copy.deepcopy(trained.model[1].state_dict())
    res = unlearn("neggrad_plus", trained, data, forget,
                  config(lr=0.1, epochs=1, retain_batch=64, forget_batch=64, l2_init=0.0))

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
    run = [unlearn("neggrad_plus", trained, data, [0, 1], config(seed=s, lr=0.05, epochs=1, retain_batch=64))
           for s in (0, 0, 1)]
    assert states_close(run[0].model.state_dict(), run[1].model.state_dict(), atol=0)     # same seed, same masks
    assert not states_close(run[0].model.state_dict(), run[2].model.state_dict())         # full batch: only dropout


# --- where it applies, and settings ----------------------------------------------------------------------

def test_it_applies_to_every_dataset_and_task():
    for name, spec in DATASETS.items():
        assert applicability(spec.probe(), spec.build_model(), ["neggrad_plus"]) == {"neggrad_plus": None}, name
    assert set(get_method("neggrad_plus").search.params) == {"lr", "epochs", "alpha", "retain_batch", "forget_batch"}


def test_the_replace_policy_trains_on_the_oracle_set_with_the_replacement():
    data = load_dataset("synthetic")
    cfg = get_config("synthetic")                                   # forget policy: replace
    torch.manual_seed(0)
    trained = trained_of(nn.Sequential(nn.Linear(data.x_train.shape[1], 4), nn.ReLU(), nn.Linear(4, 1)))
    res = unlearn("neggrad_plus", trained, data, [data.target_index], cfg.with_method("neggrad_plus", epochs=2))
    assert (res.cost.steps, res.cost.samples) == (2, 2 * (data.n_train + 1))   # all 10 rows (one replaced) + 1


def test_defaults_are_the_reference_notebooks():
    s = NegGradPlusConfig()
    assert (s.alpha, s.lr, s.epochs, s.optimizer, s.momentum, s.weight_decay) == (0.95, 0.01, 10, "sgd", 0.0, 0.0)
    assert (s.retain_batch, s.forget_batch, s.l2_init) == (128, 64, 0.1)


def test_the_search_space_holds_the_preset_and_reaches_a_near_no_op():
    cfg = get_config("digits")
    assert SEARCH.preset_point(cfg, "neggrad_plus") == {"lr": 0.01, "epochs": 10, "alpha": 0.95, "retain_batch": 128,
                                                        "forget_batch": 64}
    assert (SEARCH.params["lr"].low, SEARCH.params["epochs"].low) == (1e-5, 1)
    assert SEARCH.preset_point(cfg.with_method("neggrad_plus", **SUITE_BATCH32), "neggrad_plus") is None   # batch None


# The former code (main at 54a0dc5, one `batch_size` = the training's, no L2 term) on the digits toy problem, 40 points
# forgotten, 2 epochs: sha256 of its state_dict's bytes and its watched forget losses.
FORMER_WEIGHTS = "852bba4dde5edf1ebf591dfe703a6573ae2aac6f397ba5ef8104de034ada2b0c"
FORMER_LOSSES = [2.291567325592041, 2.2912068367004395, 2.2909538745880127]


def test_the_suite_batch32_variant_gives_the_former_codes_weights_bit_for_bit(digits_problem):
    p = digits_problem
    res = unlearn("neggrad_plus", p.trained, p.data, list(range(40)),
                  p.config.with_method("neggrad_plus", epochs=2, **SUITE_BATCH32))
    weights = b"".join(t.detach().contiguous().numpy().tobytes() for t in res.model.state_dict().values())
    assert [res.cost.initial_loss, *res.cost.loss_history] == FORMER_LOSSES
    assert hashlib.sha256(weights).hexdigest() == FORMER_WEIGHTS
    assert "retain batch 32, forget batch 32" in res.cost.rule and "θ₀" not in res.cost.rule


@pytest.mark.parametrize(("changes", "named"), [
    ({"alpha": 1.5}, "alpha"), ({"alpha": -0.1}, "alpha"), ({"alpha": None}, "alpha"), ({"lr": -1.0}, "lr"),
    ({"epochs": 0}, "epochs"), ({"momentum": 1.0}, "momentum"), ({"weight_decay": -1.0}, "weight_decay"),
    ({"optimizer": "adadelta", "momentum": 0.9}, "momentum"), ({"retain_batch": 0}, "retain_batch"),
    ({"forget_batch": 0}, "forget_batch"), ({"retain_batch": 2.5}, "retain_batch"), ({"l2_init": -0.1}, "l2_init"),
    ({"l2_init": float("nan")}, "l2_init"),
    ({"optimizer": "lbfgs"}, "optimizer"),
])
def test_bad_settings_are_named(changes, named):
    with pytest.raises(ValueError, match=named):
        NegGradPlusConfig(**changes)
    with pytest.raises(ValueError, match=named):
        config(**changes)


def test_the_former_single_batch_size_is_refused_with_the_two_that_replace_it():
    with pytest.raises(ValueError, match=r"batch_size.*retain_batch, forget_batch"):
        config(batch_size=32)


# --- the suite's architectures -------------------------------------------------------------------------------

def test_runs_on_the_mnist_convnet(convnet_problem):
    p = convnet_problem
    res = unlearn("neggrad_plus", p.trained, p.data, p.forget, p.config.with_method("neggrad_plus", epochs=1,
                                                                                    retain_batch=4, forget_batch=4))
    assert (res.cost.steps, res.cost.samples) == (4, 13 + 4 * 3)     # 13 retain images in 4 batches, each + all 3
    assert not states_close(res.model.state_dict(), p.trained.model.state_dict(), atol=0)


def test_runs_on_digits(digits_problem):
    p = digits_problem
    res = unlearn("neggrad_plus", p.trained, p.data, list(range(40)), p.config.with_method("neggrad_plus", epochs=2))
    # the preset's batches (128, 64) each hold the toy's set (80 retain rows, 40 forget rows): one step an epoch
    assert (res.cost.epochs, res.cost.steps, res.cost.samples) == (2, 2, 2 * (80 + 40))
    assert len(res.cost.loss_history) == 2 and all(torch.isfinite(w).all() for w in res.model.parameters())
    assert not states_close(res.model.state_dict(), p.trained.model.state_dict(), atol=0)
