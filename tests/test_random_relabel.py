"""Random relabeling (paper 002): one optimizer step per removal request on the point under the other labels."""

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from toys import trained_of

from unlearning import get_config
from unlearning.data import Data
from unlearning.methods import MethodNotApplicable, unlearn
from unlearning.methods.random_relabel import RelabelConfig, relabel_batch
from unlearning.training.train import Trained, TrainRecord

K = 3


def toy_data(n=12) -> Data:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(n, 2, generator=gen)
    y = torch.arange(n) % K
    return Data(name="toy3", task="multiclass", num_classes=K, x_train=x, y_train=y,
                x_test=torch.randn(4, 2, generator=gen), y_test=torch.tensor([0, 1, 2, 0]))


def toy_trained(dropout=False) -> Trained:
    torch.manual_seed(0)
    layers = [nn.Linear(2, 8), nn.ReLU()] + ([nn.Dropout(0.5)] if dropout else []) + [nn.Linear(8, K)]
    return trained_of(nn.Sequential(*layers))


def config(**relabel):
    return get_config("mnist", seed=0).with_method("random_relabel", RelabelConfig(**relabel))


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --- the relabeled batch ------------------------------------------------------------------------------

@pytest.mark.parametrize("k", [10, 2])
def test_relabel_batch_has_every_other_label_once(k):
    for y in range(k):
        labels = relabel_batch(y, k)
        assert sorted(labels.tolist()) == [c for c in range(k) if c != y]
        assert len(labels) == k - 1


def test_relabel_batch_k_prime():
    gen = torch.Generator().manual_seed(0)
    seen = set()
    for trial in range(50):
        y = trial % 10
        labels = relabel_batch(y, 10, k_prime=3, gen=gen).tolist()
        assert len(labels) == 3 and len(set(labels)) == 3 and y not in labels
        assert all(0 <= c < 10 for c in labels)
        seen.update(labels)
    assert seen == set(range(10))             # drawn at random, not always the same three
    # k' at or above k − 1 means all the others.
    assert sorted(relabel_batch(4, 10, k_prime=9).tolist()) == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    assert sorted(relabel_batch(4, 10, k_prime=20).tolist()) == [0, 1, 2, 3, 5, 6, 7, 8, 9]


def test_relabel_batch_k_prime_is_reproducible_from_the_generator():
    a = [relabel_batch(0, 10, 4, torch.Generator().manual_seed(5)).tolist() for _ in range(2)]
    assert a[0] == a[1]


# --- one request, one step ------------------------------------------------------------------------------

def test_one_request_is_one_sgd_step_on_the_other_labels():
    data, trained = toy_data(), toy_trained()
    i = 4                                                    # true label 4 % 3 = 1
    result = unlearn("random_relabel", trained, data, [i], config(optimizer="sgd", lr=0.1))

    # By hand: w ← w − lr · ∇ CE(model([x_i, x_i]), [0, 2]).
    model = copy.deepcopy(trained.model)
    xb = data.x_train[i].repeat(2, 1)
    F.cross_entropy(model(xb), torch.tensor([0, 2])).backward()
    expected = {k: p.detach() - 0.1 * p.grad for k, p in model.named_parameters()}
    for k, p in result.model.named_parameters():
        torch.testing.assert_close(p.detach(), expected[k], rtol=0, atol=1e-7)
    assert result.cost.steps == 1 and result.cost.samples == K - 1
    assert result.cost.epochs == 0 and result.cost.converged is None
    assert result.details == {"optimizer": "sgd", "lr": 0.1, "k_prime": K - 1}


def test_each_request_is_one_forward_pass_on_k_minus_1_copies():
    data, trained = toy_data(), toy_trained()
    batches = []
    trained.model[0].register_forward_hook(lambda mod, inp, out: batches.append(inp[0].detach().clone()))
    forget = [7, 2, 9]
    result = unlearn("random_relabel", trained, data, forget, config())
    assert len(batches) == len(forget)
    for xb, i in zip(batches, forget, strict=True):
        assert xb.shape == (K - 1, 2)
        assert torch.equal(xb, data.x_train[i].expand(K - 1, 2))
    assert result.cost.steps == len(forget)
    assert result.cost.samples == len(forget) * (K - 1)


def test_cost_counts_with_k_prime():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(20, 2, generator=gen)
    data = Data(name="toy10", task="multiclass", num_classes=10, x_train=x, y_train=torch.arange(20) % 10,
                x_test=x[:2], y_test=torch.tensor([0, 1]))
    model = nn.Sequential(nn.Linear(2, 10))
    trained = Trained(model, copy.deepcopy(model.state_dict()), TrainRecord(), 0, 0, torch.device("cpu"))
    result = unlearn("random_relabel", trained, data, [0, 5, 11, 19], config(k_prime=3))
    assert result.cost.steps == 4 and result.cost.samples == 12
    assert result.details["k_prime"] == 3
    full = unlearn("random_relabel", trained, data, [0, 5, 11, 19], config())
    assert full.cost.samples == 4 * 9 and full.details["k_prime"] == 9


def test_optimizer_state_is_carried_across_requests():
    # Adam's second request differs from a fresh Adam's first step on the same point.
    data, trained = toy_data(), toy_trained()
    two = unlearn("random_relabel", trained, data, [3, 3 + K], config(optimizer="adam", lr=0.01))  # same label
    after_first = unlearn("random_relabel", trained, data, [3], config(optimizer="adam", lr=0.01))
    restarted = Trained(after_first.model, {}, TrainRecord(), 0, 0, torch.device("cpu"))
    fresh = unlearn("random_relabel", restarted, data, [3 + K], config(optimizer="adam", lr=0.01))
    assert not states_equal(two.model.state_dict(), fresh.model.state_dict())


# --- checkpoints: the stream property ------------------------------------------------------------------

@pytest.mark.parametrize("k_prime", [None, 1])
def test_checkpoints_equal_shorter_streams(k_prime):
    data, trained = toy_data(), toy_trained(dropout=True)
    forget = [5, 0, 10]
    full = unlearn("random_relabel", trained, data, forget, config(checkpoints=(1, 2), k_prime=k_prime))
    assert [c.removed for c in full.checkpoints] == [1, 2]
    for ckpt in full.checkpoints:
        short = unlearn("random_relabel", trained, data, forget[:ckpt.removed], config(k_prime=k_prime))
        assert states_equal(ckpt.state, short.model.state_dict())
        assert ckpt.cost.steps == ckpt.removed == short.cost.steps
        assert ckpt.cost.samples == short.cost.samples
    rerun = unlearn("random_relabel", trained, data, forget, config(k_prime=k_prime))
    assert states_equal(full.model.state_dict(), rerun.model.state_dict())
    # the checkpoints are snapshots, not views of the live model
    assert not states_equal(full.checkpoints[0].state, full.model.state_dict())


def test_checkpoint_at_stream_end():
    data, trained = toy_data(), toy_trained()
    full = unlearn("random_relabel", trained, data, [1, 2, 3], config(checkpoints=(3,)))
    assert len(full.checkpoints) == 1
    assert states_equal(full.checkpoints[0].state, full.model.state_dict())
    assert full.checkpoints[0].cost.steps == 3


def test_checkpoint_beyond_stream_length():
    data, trained = toy_data(), toy_trained()
    with pytest.raises(ValueError, match=r"checkpoint\(s\) \[4\] exceed the 3 removal requests"):
        unlearn("random_relabel", trained, data, [1, 2, 3], config(checkpoints=(2, 4)))


# --- applicability -------------------------------------------------------------------------------------

def test_regression_data_is_not_applicable():
    x = torch.randn(6, 9)
    data = Data(name="california", task="regression", x_train=x, y_train=torch.rand(6), x_test=x[:2],
                y_test=torch.rand(2))
    trained = trained_of(nn.Sequential(nn.Linear(9, 1)))
    with pytest.raises(MethodNotApplicable, match=r"'random_relabel'.*'california'.*regression"):
        unlearn("random_relabel", trained, data, [0], get_config("california"))


def test_binary_synthetic_relabels_to_the_other_class():
    # k = 2: the single other label; one BCE step pushes the point's logit towards it.
    from unlearning.data.registry import load_dataset
    from unlearning.training.train import predict, train_original

    data = load_dataset("synthetic", seed=0)
    cfg = get_config("synthetic", seed=0)
    trained = train_original(data, cfg)
    i = data.target_index
    result = unlearn("random_relabel", trained, data, [i], cfg)
    assert result.cost.steps == 1 and result.cost.samples == 1
    before = float(predict(trained.model, data.x_train[i:i + 1]))
    after = float(predict(result.model, data.x_train[i:i + 1]))
    if data.y_train[i] == 1:
        assert after < before
    else:
        assert after > before
