"""The training loop: determinism, the convergence rules, collapse detection and init redraws."""

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from unlearning import config, get_config
from unlearning.config import Convergence, TrainConfig
from unlearning.data import Data
from unlearning.data.registry import load_dataset
from unlearning.training import train as train_mod
from unlearning.training.models import build_model
from unlearning.training.train import MAX_INIT_REDRAWS, fit, fresh_model, train_original


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def record_numbers(rec) -> dict:
    return {k: getattr(rec, k) for k in ("epochs", "steps", "samples", "converged", "hit_cap", "collapsed", "rule",
                                         "initial_loss", "loss_history")}


@pytest.fixture(scope="module")
def synthetic():
    return load_dataset("synthetic", seed=0)


def small_model(seed=0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(1, 3), nn.ReLU(), nn.Linear(3, 1))


def full_bce(model, data) -> float:
    with torch.no_grad():
        return float(F.binary_cross_entropy_with_logits(model(data.x_train).reshape(-1), data.y_train))


# --- determinism -------------------------------------------------------------------------------------

def test_same_seed_is_bit_identical(synthetic):
    cfg = get_config("synthetic", seed=0)
    a = train_original(synthetic, cfg)
    b = train_original(synthetic, cfg)
    assert states_equal(a.model.state_dict(), b.model.state_dict())
    assert states_equal(a.init_state, b.init_state)
    assert record_numbers(a.record) == record_numbers(b.record)
    assert a.init_redraws == b.init_redraws
    assert a.record.converged is True and a.record.epochs > 0


def test_different_seed_differs(synthetic):
    a = train_original(synthetic, get_config("synthetic", seed=0, train=TrainConfig(
        convergence=Convergence("fixed_epochs", 0.0, 3))))
    b = train_original(synthetic, get_config("synthetic", seed=1, train=TrainConfig(
        convergence=Convergence("fixed_epochs", 0.0, 3))))
    assert not states_equal(a.init_state, b.init_state)
    assert not states_equal(a.model.state_dict(), b.model.state_dict())


def test_train_original_does_not_disturb_the_callers_rng(synthetic):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train_original(synthetic, get_config("synthetic", train=TrainConfig(convergence=Convergence("fixed_epochs", 0, 2))))
    assert torch.equal(torch.rand(3), expected)


def test_minibatch_shuffling_is_seeded(synthetic):
    cfg = TrainConfig("sgd", 0.05, 3, Convergence("fixed_epochs", 0.0, 4))
    runs = []
    for seed in (7, 7, 8):
        model = small_model()
        fit(model, synthetic.x_train, synthetic.y_train, "binary", cfg, seed=seed)
        runs.append(model.state_dict())
    assert states_equal(runs[0], runs[1])
    assert not states_equal(runs[0], runs[2])          # same init, different batch order


# --- convergence rules -------------------------------------------------------------------------------

def test_loss_below_stops_at_the_first_epoch_under_threshold(synthetic):
    model = small_model()
    cfg = TrainConfig("adam", 1e-2, None, Convergence("loss_below", 0.2, 5000))
    rec = fit(model, synthetic.x_train, synthetic.y_train, "binary", cfg, seed=0)
    assert rec.converged is True and rec.hit_cap is False and rec.collapsed is False
    assert 0 < rec.epochs < 5000 and len(rec.loss_history) == rec.epochs
    assert rec.loss_history[-1] < 0.2
    assert all(loss >= 0.2 for loss in rec.loss_history[:-1])
    assert rec.initial_loss >= 0.2
    # the watched loss is the full-set loss of the final model in eval mode
    assert rec.loss_history[-1] == pytest.approx(full_bce(model, synthetic), rel=1e-6)
    assert rec.steps == rec.epochs and rec.samples == rec.epochs * synthetic.n_train     # full batch
    assert not model.training


def test_hit_cap(synthetic):
    cfg = TrainConfig("adam", 1e-3, None, Convergence("loss_below", 1e-9, 3))
    rec = fit(small_model(), synthetic.x_train, synthetic.y_train, "binary", cfg)
    assert rec.epochs == 3 and len(rec.loss_history) == 3
    assert rec.hit_cap is True and rec.converged is False and rec.collapsed is False


def test_warm_start_below_threshold_costs_nothing(synthetic):
    model = small_model()
    cfg = TrainConfig("adam", 1e-2, None, Convergence("loss_below", 0.2, 5000))
    fit(model, synthetic.x_train, synthetic.y_train, "binary", cfg)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    epochs_seen = []
    rec = fit(model, synthetic.x_train, synthetic.y_train, "binary", cfg, on_epoch=lambda e, m: epochs_seen.append(e))
    assert rec.epochs == 0 and rec.steps == 0 and rec.samples == 0 and rec.loss_history == []
    assert rec.converged is True and rec.hit_cap is False
    assert rec.initial_loss < 0.2
    assert epochs_seen == [0]
    assert states_equal(before, model.state_dict())


@pytest.mark.parametrize("batch_size, steps_per_epoch", [(None, 1), (3, 4), (10, 1), (64, 1)])
def test_fixed_epochs(synthetic, batch_size, steps_per_epoch):
    cfg = TrainConfig("sgd", 0.01, batch_size, Convergence("fixed_epochs", 0.0, 6))
    epochs_seen = []
    rec = fit(small_model(), synthetic.x_train, synthetic.y_train, "binary", cfg,
              on_epoch=lambda e, m: epochs_seen.append(e))
    assert rec.epochs == 6 and len(rec.loss_history) == 6
    assert rec.steps == 6 * steps_per_epoch and rec.samples == 6 * synthetic.n_train
    assert rec.converged is True and rec.hit_cap is False and rec.initial_loss is None
    assert epochs_seen == list(range(7))
    assert rec.rule == "fixed 6 epochs"


def test_fixed_epochs_ignores_a_low_loss(synthetic):
    # already below any threshold, `fixed_epochs` still runs every epoch
    model = small_model()
    fit(model, synthetic.x_train, synthetic.y_train, "binary",
        TrainConfig("adam", 1e-2, None, Convergence("loss_below", 0.2, 5000)))
    rec = fit(model, synthetic.x_train, synthetic.y_train, "binary",
              TrainConfig("adam", 1e-3, None, Convergence("fixed_epochs", 0.2, 2)))
    assert rec.epochs == 2


def test_on_epoch_sees_the_model_after_each_epoch(synthetic):
    losses = []
    model = small_model()
    cfg = TrainConfig("adam", 1e-2, None, Convergence("loss_below", 0.3, 5000))
    rec = fit(model, synthetic.x_train, synthetic.y_train, "binary", cfg,
              on_epoch=lambda e, m: losses.append((e, full_bce(m, synthetic))))
    assert [e for e, _ in losses] == list(range(rec.epochs + 1))
    assert losses[0][1] == pytest.approx(rec.initial_loss, rel=1e-6)
    assert [loss for _, loss in losses[1:]] == pytest.approx(rec.loss_history, rel=1e-6)


def test_lr_decay(synthetic, monkeypatch):
    seen = []

    class Spy(torch.optim.SGD):
        def step(self, closure=None):
            seen.append(self.param_groups[0]["lr"])
            return super().step(closure)

    monkeypatch.setitem(config.OPTIMIZERS, "sgd", Spy)
    cfg = TrainConfig("sgd", 1.0, None, Convergence("fixed_epochs", 0.0, 3), lr_decay=0.5)
    fit(small_model(), synthetic.x_train, synthetic.y_train, "binary", cfg)
    assert seen == [1.0, 0.5, 0.25]


def test_empty_training_set():
    with pytest.raises(ValueError, match="empty"):
        fit(small_model(), torch.zeros(0, 1), torch.zeros(0), "binary", TrainConfig())


# --- collapse and init redraws ------------------------------------------------------------------------

def california_like(n=20) -> Data:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, 9, generator=gen)
    y = torch.rand(n, generator=gen)
    return Data(name="california", task="regression", x_train=x, y_train=y, x_test=x[:4], y_test=y[:4])


def dead_california_net() -> nn.Sequential:
    model = build_model("california")
    with torch.no_grad():
        model[4].weight.fill_(-1.0)
        model[4].bias.fill_(-1.0)          # pre-activation < 0 for every non-negative hidden vector
    return model


def live_california_net() -> nn.Sequential:
    model = build_model("california")
    with torch.no_grad():
        model[4].weight.abs_()
        model[4].bias.fill_(0.5)           # pre-activation > 0 everywhere: the output ReLU is alive
    return model


def test_dead_output_relu_collapses_immediately():
    data = california_like()
    cfg = get_config("california").train
    rec = fit(dead_california_net(), data.x_train, data.y_train, data.task, cfg)
    assert rec.collapsed is True and rec.converged is False and rec.hit_cap is False
    assert rec.epochs == 0 and rec.steps == 0 and rec.loss_history == []
    assert rec.initial_loss == pytest.approx(float((data.y_train ** 2).mean()), rel=1e-6)   # output 0 everywhere


def test_healthy_california_net_is_not_collapsed():
    data = california_like()
    torch.manual_seed(0)
    model, _redraws = fresh_model(data, seed=0)
    cfg = TrainConfig("adam", 1e-3, 8, Convergence("loss_below", 1e-9, 2))
    rec = fit(model, data.x_train, data.y_train, data.task, cfg)
    assert rec.collapsed is False and rec.epochs == 2 and rec.hit_cap is True


def test_fresh_model_redraws_dead_inits(monkeypatch):
    calls = {"n": 0}

    def flaky_build(data):
        assert data.name == "california"
        calls["n"] += 1
        return dead_california_net() if calls["n"] <= 2 else live_california_net()

    monkeypatch.setattr(train_mod, "model_for", flaky_build)
    data = california_like()
    model, redraws = fresh_model(data, seed=0)
    assert redraws == 2 and calls["n"] == 3
    out = model(data.x_train).detach()
    assert float(out.max() - out.min()) > 1e-7


def test_fresh_model_gives_up_after_max_redraws(monkeypatch):
    monkeypatch.setattr(train_mod, "model_for", lambda data: dead_california_net())
    with pytest.raises(RuntimeError, match=f"california: every one of {MAX_INIT_REDRAWS} inits from seed 5"):
        fresh_model(california_like(), seed=5)


def test_train_original_records_redraws(monkeypatch):
    calls = {"n": 0}

    def flaky_build(data):
        calls["n"] += 1
        return dead_california_net() if calls["n"] <= 1 else live_california_net()

    monkeypatch.setattr(train_mod, "model_for", flaky_build)
    cfg = get_config("california", train=TrainConfig("adam", 1e-3, 8, Convergence("fixed_epochs", 0.0, 1)))
    trained = train_original(california_like(), cfg)
    assert trained.init_redraws == 1 and calls["n"] == 2
    assert not math.isnan(trained.record.loss_history[0])


def test_adam_uses_the_fused_kernel_and_matches_the_default_update():
    torch.manual_seed(0)
    x, y = torch.randn(64, 9), torch.randn(64)
    models = [nn.Linear(9, 1) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    fused = config.make_optimizer("adam", models[0].parameters(), 1e-2)
    plain = torch.optim.Adam(models[1].parameters(), lr=1e-2)
    assert fused.defaults["fused"] is True
    assert not plain.defaults.get("fused")
    for _ in range(20):
        for m, opt in zip(models, (fused, plain), strict=True):
            opt.zero_grad()
            F.mse_loss(m(x).reshape(-1), y).backward()
            opt.step()
    for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_optimizer_falls_back_where_no_fused_kernel_exists(monkeypatch):
    class NoFused(torch.optim.Adam):
        def __init__(self, params, lr, fused=None):
            if fused:
                raise RuntimeError("`fused=True` requires all the params to be floating point Tensors "
                                   "of supported devices")
            super().__init__(params, lr=lr)

    monkeypatch.setitem(config.OPTIMIZERS, "adam", NoFused)
    opt = config.make_optimizer("adam", nn.Linear(2, 1).parameters(), 1e-3)
    assert isinstance(opt, NoFused) and len(opt.param_groups[0]["params"]) == 2


def test_predict_on_images_matches_the_plain_forward_and_leaves_the_model_alone():
    """Images are predicted by a channels_last copy in small passes: the same outputs as one
    plain forward within float rounding, the same classes, and the caller's model untouched."""
    torch.manual_seed(0)
    model = build_model("mnist").train()
    x = torch.randn(150, 1, 28, 28)          # more than one pass of EVAL_BATCH_IMAGES_CPU
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        plain = model.eval()(x)
    model.train()
    out = train_mod.predict(model, x)
    assert out.shape == (150, 10)
    assert torch.allclose(out, plain, atol=1e-5, rtol=1e-5)
    assert torch.equal(out.argmax(1), plain.argmax(1))
    assert model.training and states_equal(model.state_dict(), before)
    assert all(p.is_contiguous() for p in model.parameters())
    assert len(x) > train_mod.EVAL_BATCH_IMAGES_CPU
