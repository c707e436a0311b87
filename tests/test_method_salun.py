"""SalUn (Fan et al. 2024): a saliency mask of the largest forget-loss gradients, then masked random relabeling."""

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from toys import trained_of

from unlearning import evaluate, get_config, load_dataset, train_original
from unlearning.data import Data
from unlearning.data.digits import digits_mlp
from unlearning.methods import METHODS, MethodNotApplicable, unlearn
from unlearning.methods.salun import SalUnConfig, random_labels, top_share_mask


def seeded(build, seed=0):
    torch.manual_seed(seed)
    return build()


def toy_data(task="multiclass", n=12, seed=1) -> Data:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=gen)
    y = (torch.arange(n) % 3) if task == "multiclass" else torch.randn(n, generator=gen)
    return Data(name="toy", task=task, num_classes=3 if task == "multiclass" else None, x_train=x, y_train=y,
                x_test=x[:4], y_test=y[:4])


def toy_model(outputs=3) -> nn.Sequential:
    return seeded(lambda: nn.Sequential(nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, outputs)))


def config(dataset="digits", seed=0, **settings):
    return get_config(dataset, seed=seed).with_method("salun", SalUnConfig(**settings))


def forget_saliency(model: nn.Module, data: Data, forget) -> list[torch.Tensor]:
    """|∇ CE(forget set, true labels)| at the model's weights, computed independently of the method."""
    loss = F.cross_entropy(model(data.x_train[forget]), data.y_train[forget])
    return [g.abs() for g in torch.autograd.grad(loss, list(model.parameters()))]


def largest(scores: list[torch.Tensor], share: float) -> list[torch.Tensor]:
    """The floor(share · N) largest entries over all tensors, by a full descending sort (not the method's code)."""
    flat = torch.cat([s.reshape(-1) for s in scores])
    chosen = torch.zeros(flat.numel(), dtype=torch.bool)
    chosen[flat.argsort(descending=True)[:int(flat.numel() * share)]] = True
    return list(chosen.split([s.numel() for s in scores]))


def changed(a: nn.Module, b: nn.Module) -> list[torch.Tensor]:
    return [pa != pb for pa, pb in zip(a.parameters(), b.parameters(), strict=True)]


# --- the mask --------------------------------------------------------------------------------------------

def test_mask_keeps_the_largest_scores():
    """Regression: Unlearn-Saliency's generate_mask.py kept the SMALLEST gradients before commit b874ee9."""
    scores = [torch.tensor([0.1, 5.0, 0.2, 3.0]), torch.tensor([[4.0, 0.05]])]
    masks = top_share_mask(scores, 0.5)
    assert masks[0].tolist() == [False, True, False, True] and masks[1].tolist() == [[True, False]]


def test_mask_share_is_global_over_all_tensors_not_per_layer():
    """The reference concatenates every tensor before ranking: one layer may keep all its entries, another none."""
    scores = [torch.tensor([10.0, 11.0, 12.0, 13.0]), torch.tensor([0.1, 0.2, 0.3, 0.4])]
    masks = top_share_mask(scores, 0.5)
    assert masks[0].all() and not masks[1].any()
    assert [int(m.sum()) for m in top_share_mask(scores, 0.25)] == [2, 0]


def test_mask_size_is_floor_of_share_times_n_and_at_least_one():
    scores = [torch.arange(7.0)]
    assert int(top_share_mask(scores, 0.5)[0].sum()) == 3
    assert int(top_share_mask(scores, 0.01)[0].sum()) == 1
    assert top_share_mask(scores, 1.0)[0].all()


def test_only_the_most_salient_weights_change_end_to_end():
    """Every changed entry is among the top half by |∇ forget loss| of the trained model; the other half
    is bit-identical — with SGD momentum 0.9 and weight decay 5e-4 on (the reference's 2026 fix)."""
    data, trained = toy_data(n=20), trained_of(toy_model())
    forget = [0, 4, 7, 9]
    result = unlearn("salun", trained, data, forget, config(lr=0.2, epochs=3, batch_size=4, momentum=0.9,
                                                             weight_decay=5e-4))
    salient = largest(forget_saliency(trained.model, data, forget), 0.5)
    moved = changed(result.model, trained.model)
    for keep, m, p_new, p_old in zip(salient, moved, result.model.parameters(), trained.model.parameters(),
                                     strict=True):
        keep = keep.reshape(m.shape)
        assert not (m & ~keep).any()                           # nothing outside the mask moved ...
        assert torch.equal(p_new[~keep], p_old[~keep])         # ... bit for bit
    n = sum(p.numel() for p in trained.model.parameters())
    assert sum(int(m.sum()) for m in moved) > n // 4            # and the masked-in half did train
    assert result.details["salun_updated_weights"] == n // 2 and result.details["salun_mask_share"] == pytest.approx(
        (n // 2) / n)


def test_weight_decay_and_momentum_alone_would_move_masked_out_weights():
    """The defect the exactness guards against: with the gradient masked but nothing restored, SGD's weight
    decay and momentum move masked-out weights. Shown on one tensor, then the method on the same setting."""
    p = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.5)
    for _ in range(2):
        p.grad = torch.tensor([0.3, 0.0])       # entry 1 masked out: its gradient is zero
        opt.step()
    assert p[1].item() != 2.0                    # weight decay moved it
    data, trained = toy_data(), trained_of(toy_model())
    result = unlearn("salun", trained, data, [1, 2], config(share=0.3, lr=0.1, weight_decay=0.5, epochs=4))
    salient = largest(forget_saliency(trained.model, data, [1, 2]), 0.3)
    for keep, p_new, p_old in zip(salient, result.model.parameters(), trained.model.parameters(), strict=True):
        keep = keep.reshape(p_old.shape)
        assert torch.equal(p_new[~keep], p_old[~keep])


def test_per_layer_shares_differ_on_digits_and_total_is_the_share():
    """Global ranking on a real model: the layers keep different fractions, the model exactly floor(0.5 N)."""
    data = load_dataset("digits", seed=0).subset(n_train=150, n_test=20)
    trained = trained_of(seeded(digits_mlp))
    forget = list(range(15))
    result = unlearn("salun", trained, data, forget, config(epochs=1))
    masks = largest(forget_saliency(trained.model, data, forget), 0.5)
    ours = top_share_mask(forget_saliency(trained.model, data, forget), 0.5)
    assert all(torch.equal(a.reshape(-1), b) for a, b in zip(ours, masks, strict=True))
    shares = [float(m.float().mean()) for m in masks]
    n = sum(m.numel() for m in masks)
    assert sum(int(m.sum()) for m in masks) == n // 2 == result.details["salun_updated_weights"]
    assert max(shares) - min(shares) > 0.1
    for keep, p_new, p_old in zip(masks, result.model.parameters(), trained.model.parameters(), strict=True):
        keep = keep.reshape(p_old.shape)                       # a per-layer mask would move some of these
        assert torch.equal(p_new[~keep], p_old[~keep])


# --- the relabeling, and the known answer with every weight free ---------------------------------------

def test_random_labels_are_uniform_over_all_classes_one_per_point():
    """RL.py's torch.randint(0, num_classes): a point may draw its own label (unlike paper 002's relabeling)."""
    y = torch.zeros(1, 2000, dtype=torch.long)
    drawn = random_labels(y, 4, [torch.Generator().manual_seed(0)])
    assert drawn.shape == y.shape and drawn.dtype == y.dtype
    counts = torch.bincount(drawn.reshape(-1), minlength=4)
    assert counts.min() > 400 and (drawn == 0).any()            # every class, the true label 0 included
    again = random_labels(y, 4, [torch.Generator().manual_seed(0)])
    assert torch.equal(drawn, again)


def test_share_one_is_plain_sgd_on_relabeled_forget_then_retain_by_hand():
    """With the whole model in the mask, one epoch (full batches, plain SGD) is two steps: the forget set
    under labels drawn from the seed's generator, then the retain set under its own labels."""
    data, trained = toy_data(), trained_of(toy_model())
    forget, lr, seed = [2, 3, 8], 0.3, 4
    result = unlearn("salun", trained, data, forget, config(seed=seed, share=1.0, lr=lr, epochs=1, batch_size=None,
                                                             momentum=0.0, weight_decay=0.0))
    labels = torch.randint(3, (len(forget),), generator=torch.Generator().manual_seed(seed))
    keep = data.retain_mask(torch.tensor(forget))
    model = copy.deepcopy(trained.model)
    for x, y in ((data.x_train[forget], labels), (data.x_train[keep], data.y_train[keep])):
        grads = torch.autograd.grad(F.cross_entropy(model(x), y), list(model.parameters()))
        with torch.no_grad():
            for p, g in zip(model.parameters(), grads, strict=True):
                p.sub_(lr * g)
    for got, want in zip(result.model.parameters(), model.parameters(), strict=True):
        assert torch.allclose(got, want, rtol=1e-6, atol=1e-7), (got - want).abs().max()
    assert (result.cost.epochs, result.cost.steps, result.cost.samples) == (1, 2, data.n_train)


def test_forgets_on_digits_keeping_utility():
    """What the paper reports: forget accuracy falls (towards a retrained model's), test accuracy holds."""
    data = load_dataset("digits", seed=0)
    cfg = get_config("digits", seed=0)
    m_c = train_original(data, cfg.with_epoch_cap(60))
    forget = list(range(100))
    result = unlearn("salun", m_c, data, forget, cfg.with_method("salun", lr=0.05))
    before, after = evaluate(m_c.model, data, forget), evaluate(result.model, data, forget)
    assert after["forget_acc"] < before["forget_acc"] - 0.1
    assert after["test_acc"] > before["test_acc"] - 0.05


def test_on_epoch_is_called_before_and_after_each_epoch():
    epochs = []
    unlearn("salun", trained_of(toy_model()), toy_data(), [0], config(lr=0.5, epochs=2),
            on_epoch=lambda e, m: epochs.append(e))
    assert epochs == [0, 1, 2]


# --- where it applies, settings -------------------------------------------------------------------------

def test_not_applicable_to_regression():
    data, trained = toy_data("regression"), trained_of(toy_model(outputs=1))
    with pytest.raises(MethodNotApplicable, match=r"needs class labels.*regression"):
        unlearn("salun", trained, data, [0], config("california"))


def test_runs_on_the_binary_synthetic_set():
    from unlearning.data.synthetic import load_synthetic
    data = load_synthetic()
    cfg = get_config("synthetic", seed=0)
    m_c = train_original(data, cfg.with_epoch_cap(20))
    result = unlearn("salun", m_c, data, [data.target_index], cfg.with_method("salun", epochs=2))
    details = result.details
    assert result.cost.steps == 4 and details["salun_updated_weights"] == details["salun_total_weights"] // 2


@pytest.mark.parametrize(("field", "value", "message"), [
    ("share", 0.0, "share"), ("share", 1.5, "share"), ("lr", -1.0, "lr"), ("epochs", 0, "epochs"),
    ("batch_size", 0, "batch_size"), ("optimizer", "rmsprop", "optimizer"), ("momentum", -0.1, "momentum"),
    ("weight_decay", -1e-4, "weight_decay")])
def test_bad_settings_are_named(field, value, message):
    with pytest.raises(ValueError, match=message):
        SalUnConfig(**{field: value})
    with pytest.raises(ValueError, match=r"momentum=0\.9 is an SGD setting"):
        SalUnConfig(optimizer="adadelta")


def test_defaults_are_the_references_and_inside_the_search_space():
    cfg = SalUnConfig()
    assert (cfg.share, cfg.lr, cfg.epochs, cfg.batch_size, cfg.optimizer, cfg.momentum, cfg.weight_decay) == \
        (0.5, 0.013, 10, 256, "sgd", 0.9, 5e-4)
    assert METHODS["salun"].search.preset_point(get_config("digits"), "salun") == \
        {"share": 0.5, "lr": 0.013, "epochs": 10, "momentum": 0.9}


# --- MNIST's ConvNet ------------------------------------------------------------------------------------

def test_runs_on_the_mnist_convnet_and_masked_out_weights_stay(convnet_problem):
    p = convnet_problem
    result = unlearn("salun", p.trained, p.data, p.forget, p.config.with_method("salun", epochs=2, batch_size=4,
                                                                              lr=0.05))
    assert (result.cost.epochs, result.cost.steps) == (2, 10)        # 1 forget + 4 retain batches an epoch
    n = sum(w.numel() for w in p.trained.model.parameters())
    moved = sum(int(m.sum()) for m in changed(result.model, p.trained.model))
    assert 0 < moved <= n // 2 == result.details["salun_updated_weights"]
    assert all(torch.isfinite(w).all() for w in result.model.parameters())
