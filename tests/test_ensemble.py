"""`fit_many` against K sequential `fit`s: the same epochs and the same weights within float rounding.

Tolerance: the stacked forward uses one batched matmul (`baddbmm`) where `fit` uses one matmul
per model (`addmm`); the two kernels may sum in a different order (which order depends on the
CPU's kernels, its ISA and the thread count), so the two runs agree to float32 rounding, not bit
for bit. Each optimizer step can leave the two copies of a weight a rounding error apart, of
the order of one float32 ulp of the weights' scale; the step after works on weights already
that far apart, and the differences add up. The bound used, `rounding_atol`, is that linear
accumulation: steps x eps(float32) x max|w|. It assumes no step amplifies a difference by more
than it adds, which holds here because every case trains towards a minimum. It does not depend
on the CPU: it counts rounding events, not a rounding size seen on one machine. Measured
(torch 2.13, AMD EPYC): AdaDelta at lr 1.0 with 2 threads under AVX2 drifts furthest,
2.3e-5 after 520 steps against a bound of 4.4e-5; with ATEN_CPU_CAPABILITY=default 2.4e-7.
Losses are compared with the same bound relative to the loss. Epoch counts are equal unless
a run's loss lands within that rounding of its convergence threshold: then one side can stop
an epoch earlier. The cases below do not sit on a threshold (their epochs are checked equal);
the California subset runs to its cap, so only weights are compared there.
"""

import copy

import pytest
import torch
from torch import nn

from unlearning.config import Convergence, TrainConfig
from unlearning.data import Data, DataUnavailableError
from unlearning.data.registry import load_dataset
from unlearning.training.ensemble import fit_many, stack_reason
from unlearning.training.models import build_model
from unlearning.training.train import fit, fresh_model

EPS = torch.finfo(torch.float32).eps


def rounding_atol(models, steps: int) -> float:
    """How far two float32 trainings of the same model that differ only in summation order may
    drift apart in `steps` optimizer steps: one ulp of the weights' scale per step (module docstring)."""
    scale = max(float(p.detach().abs().max()) for m in models for p in m.parameters())
    return max(steps, 1) * EPS * max(scale, 1.0)


def assert_close_weights(a, b, steps: int) -> None:
    atol = rounding_atol([a, b], steps)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(q.detach(), p.detach(), rtol=0, atol=atol)


def sequential_and_many(models, x, y, task, cfg, seeds):
    """Train copies of `models` with K `fit`s and with one `fit_many`; return both (models, records)."""
    one = [copy.deepcopy(m) for m in models]
    many = [copy.deepcopy(m) for m in models]
    xs = x if isinstance(x, list) else [x] * len(models)
    ys = y if isinstance(y, list) else [y] * len(models)
    recs_one = [fit(m, xi, yi, task, cfg, seed=s, device="cpu") for m, xi, yi, s in zip(one, xs, ys, seeds,
                                                                                      strict=True)]
    recs_many = fit_many(many, x, y, task, cfg, seeds=seeds, device="cpu")
    return (one, recs_one), (many, recs_many)


def assert_same(one, many, epochs=True):
    (models_a, recs_a), (models_b, recs_b) = one, many
    for a, b, ra, rb in zip(models_a, models_b, recs_a, recs_b, strict=True):
        assert_close_weights(a, b, max(ra.steps, rb.steps))
        assert (rb.converged, rb.hit_cap, rb.collapsed, rb.rule) == (ra.converged, ra.hit_cap, ra.collapsed, ra.rule)
        if epochs:
            assert (rb.epochs, rb.steps, rb.samples) == (ra.epochs, ra.steps, ra.samples)
            rel = rounding_atol([a], ra.steps)
            assert [v is None for v in rb.loss_history] == [v is None for v in ra.loss_history]  # fixed epochs
            assert [x for x in rb.loss_history if x is not None] == pytest.approx(
                [x for x in ra.loss_history if x is not None], rel=rel, abs=1e-7)
            assert (rb.initial_loss is None) == (ra.initial_loss is None)
            if ra.initial_loss is not None:                 # same weights, one pass: a few ulps apart at most
                assert rb.initial_loss == pytest.approx(ra.initial_loss, rel=8 * EPS, abs=1e-7)
        assert rb.batch_models == len(models_b) and ra.batch_models == 1


def test_synthetic_full_batch_same_epochs_and_weights():
    data = load_dataset("synthetic", seed=0)
    seeds = [0, 1, 2, 3]
    models = [fresh_model(data, s, "cpu")[0] for s in seeds]
    cfg = TrainConfig("adam", 1e-3, None, Convergence("loss_below", 0.05, 2000))
    one, many = sequential_and_many(models, data.x_train, data.y_train, data.task, cfg, seeds)
    assert len({r.epochs for r in many[1]}) > 1          # models stop at different epochs: the stack shrinks
    assert_same(one, many)


def test_synthetic_trials_each_on_their_own_draw():
    """The paper's trials: one new draw of the data per seed (a list of K training sets)."""
    seeds = [0, 1, 2]
    sets = [load_dataset("synthetic", seed=s) for s in seeds]
    models = [fresh_model(d, s, "cpu")[0] for d, s in zip(sets, seeds, strict=True)]
    cfg = TrainConfig("adam", 1e-3, None, Convergence("loss_below", 0.05, 2000))
    one, many = sequential_and_many(models, [d.x_train for d in sets], [d.y_train for d in sets], "binary",
                                    cfg, seeds)
    assert_same(one, many)


@pytest.mark.parametrize("optimizer, lr, decay", [("adam", 1e-3, None), ("adadelta", 1.0, 0.7), ("sgd", 0.05, None)])
def test_digits_minibatches_each_optimizer(optimizer, lr, decay):
    data = load_dataset("digits").subset(400, 50, seed=0)
    seeds = [0, 1, 2, 3]
    models = [fresh_model(data, s, "cpu")[0] for s in seeds]
    cfg = TrainConfig(optimizer, lr, 32, Convergence("loss_below", 0.3, 40), lr_decay=decay)
    one, many = sequential_and_many(models, data.x_train, data.y_train, data.task, cfg, seeds)
    assert_same(one, many)


def test_fixed_epochs_rule():
    data = load_dataset("digits").subset(300, 50, seed=0)
    seeds = [5, 6]
    models = [fresh_model(data, s, "cpu")[0] for s in seeds]
    cfg = TrainConfig("adam", 1e-3, 64, Convergence("fixed_epochs", 0.0, 3))
    one, many = sequential_and_many(models, data.x_train, data.y_train, data.task, cfg, seeds)
    assert [r.epochs for r in many[1]] == [3, 3] and all(r.converged for r in many[1])
    assert_same(one, many)


@pytest.mark.data
def test_california_subset_batch_32():
    try:
        data = load_dataset("california").subset(600, None, seed=0)
    except DataUnavailableError as exc:
        pytest.skip(f"california data unavailable: {exc}")
    seeds = [0, 1, 2]
    models = [fresh_model(data, s, "cpu")[0] for s in seeds]
    cfg = TrainConfig("adam", 1e-3, 32, Convergence("loss_below", 0.015, 20))
    one, many = sequential_and_many(models, data.x_train, data.y_train, data.task, cfg, seeds)
    assert_same(one, many, epochs=False)
    assert [r.epochs for r in many[1]] == [r.epochs for r in one[1]]


def test_a_collapsed_model_stops_like_fit_and_the_others_go_on():
    torch.manual_seed(0)
    x, y = torch.rand(64, 9), torch.rand(64)
    data = Data("california", "regression", x, y, x[:0], y[:0])
    models = [fresh_model(data, s, "cpu")[0] for s in range(3)]      # live inits (dead ones are redrawn)
    with torch.no_grad():
        models[1][4].bias.fill_(-100.0)                  # the output ReLU is dead on every row
    cfg = TrainConfig("adam", 1e-3, 16, Convergence("loss_below", 1e-6, 5))
    one, many = sequential_and_many(models, x, y, "regression", cfg, [0, 1, 2])
    assert [r.collapsed for r in many[1]] == [False, True, False] and many[1][1].epochs == 0
    assert_same(one, many)


def test_unsupported_models_and_bad_arguments():
    assert "Conv2d" in stack_reason(build_model("mnist"))
    with pytest.raises(ValueError, match=r"layer 0 is Conv2d; fit_many stacks Linear layers"):
        fit_many([build_model("mnist")], torch.zeros(2, 1, 28, 28), torch.zeros(2, dtype=torch.long), "multiclass",
                 TrainConfig(), seeds=[0])
    with pytest.raises(ValueError, match=r"one seed per model \(2 models, 1 seeds\)"):
        fit_many([build_model("synthetic"), build_model("synthetic")], torch.zeros(3, 1), torch.zeros(3), "binary",
                 TrainConfig(), seeds=[0])
    with pytest.raises(ValueError, match=r"fit_many stacks nn.Sequential nets"):
        fit_many([nn.Linear(1, 1)], torch.zeros(3, 1), torch.zeros(3), "binary", TrainConfig(), seeds=[0])


# -- the originals (`train_original_many`) and when `unlearn_many` does not batch; that each method's batched form
# equals its single runs is the contract test's (tests/test_method_contract.py) ----------------------------------
SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def synthetic_trials():
    """Paper 000's synthetic trials: a new draw, config and control model per seed (trained one by one)."""
    from unlearning import get_config
    from unlearning.running.experiment import select_forget
    from unlearning.training.train import train_original

    datas = [load_dataset("synthetic", seed=s) for s in SEEDS]
    configs = [get_config("synthetic", seed=s) for s in SEEDS]
    trained = [train_original(d, c) for d, c in zip(datas, configs, strict=True)]
    forgets = [select_forget(d, 1, s) for d, s in zip(datas, SEEDS, strict=True)]
    return datas, configs, trained, forgets


def test_train_original_many_matches_train_original(synthetic_trials):
    from unlearning.training.ensemble import train_original_many

    datas, configs, trained, _ = synthetic_trials
    many = train_original_many(datas, configs)
    for a, b in zip(trained, many, strict=True):
        assert (b.record.epochs, b.record.converged, b.init_redraws, b.seed) == (a.record.epochs, True,
                                                                                a.init_redraws, a.seed)
        assert b.record.batch_models == len(SEEDS) and b.record.seconds * len(SEEDS) == b.record.batch_seconds
        for k in a.init_state:
            assert torch.equal(a.init_state[k], b.init_state[k])
        assert_close_weights(a.model, b.model, max(a.record.steps, b.record.steps))


def test_unlearn_many_falls_back_to_one_run_each_and_says_why_not_batched(synthetic_trials):
    import dataclasses

    from unlearning.methods import unlearn, unlearn_many
    from unlearning.training.ensemble import batch_reason

    datas, configs, trained, forgets = synthetic_trials
    mixed = [configs[0], dataclasses.replace(configs[1], train=dataclasses.replace(configs[1].train, lr=3e-3))]
    assert batch_reason(datas[:2], mixed, trained[0].model) == "the configs differ in more than their seeds"
    assert batch_reason(datas[:1], configs[:1], trained[0].model) == "a single run"
    assert "nn.Sequential" in batch_reason(datas, configs, nn.Linear(1, 1))
    got = unlearn_many("naive_retrain", trained[:2], datas[:2], forgets[:2], mixed)
    want = [unlearn("naive_retrain", t, d, f, c) for t, d, f, c in zip(trained[:2], datas[:2], forgets[:2], mixed,
                                                                       strict=True)]
    for a, b in zip(want, got, strict=True):
        assert b.cost.batch_models == 1 and b.cost.epochs == a.cost.epochs
        assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True))
    with pytest.raises(ValueError, match="one data, forget set, config and on_epoch per trained model"):
        unlearn_many("finetune", trained, datas[:2], forgets, configs)
