"""ℓ1-sparse unlearning (Jia et al. 2023): fine-tune on the retain set with α_e·‖θ‖₁, α decaying linearly."""

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from toys import trained_of

from unlearning import evaluate, get_config, load_dataset, train_original
from unlearning.data import Data
from unlearning.methods import METHODS, unlearn
from unlearning.methods.l1_sparse import L1SparseConfig, alpha_at


def toy_data(task="multiclass", n=12, features=3, seed=1) -> Data:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=gen)
    y = (torch.arange(n) % 3) if task == "multiclass" else torch.randn(n, generator=gen)
    return Data(name="toy", task=task, num_classes=3 if task == "multiclass" else None, x_train=x, y_train=y,
                x_test=x[:4], y_test=y[:4])


def toy_model(outputs=3, seed=0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, outputs))


def config(dataset="digits", seed=0, **settings):
    return get_config(dataset, seed=seed).with_method("l1_sparse", L1SparseConfig(**settings))


# --- the paper's objective, by hand -------------------------------------------------------------------

def test_two_epochs_are_two_sgd_steps_on_ce_plus_decaying_l1_by_hand():
    """Full batch, plain SGD: epoch e steps on CE(retain) + α(1 − e/E)·‖θ‖₁ over every tensor (biases too)."""
    data, trained = toy_data(), trained_of(toy_model())
    forget = [0, 5]
    alpha, lr = 0.05, 0.1
    result = unlearn("l1_sparse", trained, data, forget, config(alpha=alpha, lr=lr, epochs=2, batch_size=None,
                                                                 momentum=0.0, weight_decay=0.0))
    keep = data.retain_mask(torch.tensor(forget))
    model = copy.deepcopy(trained.model)
    for a in (alpha, alpha / 2):                         # E = 2: α, then α·(1 − 1/2)
        loss = F.cross_entropy(model(data.x_train[keep]), data.y_train[keep])
        loss = loss + a * sum(p.abs().sum() for p in model.parameters())
        grads = torch.autograd.grad(loss, list(model.parameters()))
        with torch.no_grad():
            for p, g in zip(model.parameters(), grads, strict=True):
                p.sub_(lr * g)
    for got, want in zip(result.model.parameters(), model.parameters(), strict=True):
        assert torch.allclose(got, want, rtol=1e-6, atol=1e-7), (got - want).abs().max()
    assert (result.cost.epochs, result.cost.steps, result.cost.samples) == (2, 2, 2 * int(keep.sum()))
    assert result.cost.converged is None and "retain set" in result.cost.rule


def test_schedule_decays_linearly_per_epoch_as_the_reference():
    """Unlearn-Sparse FT.py: α·(1 − e/E) for e = 0..E−1 — the last epoch still has α/E, none has 0."""
    got = [alpha_at(0.2, e, 10) for e in range(10)]
    assert got == pytest.approx([0.2 * (10 - e) / 10 for e in range(10)])
    assert got[-1] == pytest.approx(0.02) and min(got) > 0


def test_the_penalty_shrinks_the_weights_and_alpha_zero_is_plain_finetuning():
    """What the paper promises: a sparser model than fine-tuning alone, from the same start."""
    data, trained = toy_data(n=30), trained_of(toy_model())
    forget = [1, 2, 3]
    runs = {a: unlearn("l1_sparse", trained, data, forget, config(alpha=a, lr=0.05, epochs=5, batch_size=8))
            for a in (0.0, 0.05)}
    l1 = {a: sum(float(p.detach().abs().sum()) for p in r.model.parameters()) for a, r in runs.items()}
    assert l1[0.05] < 0.8 * l1[0.0]
    assert runs[0.05].details["l1_norm_after"] == pytest.approx(l1[0.05], rel=1e-5)
    assert runs[0.05].details["l1_ratio"] < runs[0.0].details["l1_ratio"]
    before = sum(float(p.detach().abs().sum()) for p in trained.model.parameters())
    assert runs[0.0].details["l1_norm_before"] == pytest.approx(before, rel=1e-6)


def test_on_epoch_is_called_before_and_after_each_epoch_with_current_weights():
    data, trained = toy_data(), trained_of(toy_model())
    seen = []
    result = unlearn("l1_sparse", trained, data, [0], config(epochs=3, lr=0.1),
                     on_epoch=lambda e, m: seen.append((e, copy.deepcopy(m.state_dict()))))
    assert [e for e, _ in seen] == [0, 1, 2, 3]
    assert all(torch.equal(seen[-1][1][k], v) for k, v in result.model.state_dict().items())
    assert not torch.equal(seen[0][1]["0.weight"], seen[-1][1]["0.weight"])


# --- where it applies, settings -------------------------------------------------------------------------

@pytest.mark.parametrize("task", ["regression", "multiclass"])
def test_applies_to_every_task(task):
    data = toy_data(task)
    trained = trained_of(toy_model(outputs=1 if task == "regression" else 3))
    assert METHODS["l1_sparse"].applies(data, trained.model) is None
    result = unlearn("l1_sparse", trained, data, [0, 1], config("california" if task == "regression" else "digits",
                                                              epochs=2, lr=0.05))
    changed = any(not torch.equal(a, b) for a, b in zip(result.model.parameters(), trained.model.parameters(),
                                                        strict=True))
    assert changed


def test_runs_on_the_binary_synthetic_set():
    from unlearning.data.synthetic import load_synthetic
    data = load_synthetic()
    cfg = config("synthetic", epochs=2)
    m_c = train_original(data, cfg.with_epoch_cap(20))
    result = unlearn("l1_sparse", m_c, data, [data.target_index], cfg)
    assert result.cost.steps == 2          # 10 points, one batch an epoch


@pytest.mark.parametrize(("field", "value", "message"), [
    ("alpha", -1e-3, "alpha"), ("lr", 0.0, "lr"), ("epochs", 0, "epochs"), ("batch_size", 0, "batch_size"),
    ("optimizer", "rmsprop", "optimizer"), ("momentum", 1.0, "momentum"), ("weight_decay", -1.0, "weight_decay"),
    ("epochs", 2.5, "epochs")])
def test_bad_settings_are_named(field, value, message):
    with pytest.raises(ValueError, match=message):
        L1SparseConfig(**{field: value})


def test_momentum_needs_sgd():
    with pytest.raises(ValueError, match=r"momentum=0\.9 is an SGD setting"):
        L1SparseConfig(optimizer="adam")
    assert L1SparseConfig(optimizer="adam", momentum=0.0).optimizer == "adam"


def test_defaults_are_the_references_and_inside_the_search_space():
    cfg = L1SparseConfig()
    assert (cfg.lr, cfg.epochs, cfg.batch_size, cfg.optimizer, cfg.momentum, cfg.weight_decay) == \
        (0.01, 10, 256, "sgd", 0.9, 5e-4)
    assert METHODS["l1_sparse"].search.preset_point(get_config("digits"), "l1_sparse") == \
        {"alpha": cfg.alpha, "lr": cfg.lr, "epochs": cfg.epochs}


# --- MNIST's ConvNet and digits -------------------------------------------------------------------------

def test_runs_on_the_mnist_convnet(convnet_problem):
    p = convnet_problem
    result = unlearn("l1_sparse", p.trained, p.data, p.forget, p.config.with_method("l1_sparse", epochs=2, batch_size=5,
                                                                                    alpha=1e-3))
    assert (result.cost.epochs, result.cost.steps) == (2, 6)         # 13 retain images, batches of 5
    assert result.details["l1_norm_after"] < result.details["l1_norm_before"]
    assert all(torch.isfinite(w).all() for w in result.model.parameters())


def test_on_digits_keeps_utility_at_the_defaults():
    data = load_dataset("digits", seed=0)
    cfg = get_config("digits", seed=0)
    m_c = train_original(data, cfg.with_epoch_cap(30))
    forget = list(range(40))
    result = unlearn("l1_sparse", m_c, data, forget, cfg)
    before, after = evaluate(m_c.model, data, forget), evaluate(result.model, data, forget)
    assert result.cost.epochs == 10 and result.details["l1_ratio"] < 1.0
    assert after["test_acc"] > before["test_acc"] - 0.05
