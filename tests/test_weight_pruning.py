"""Weight pruning (paper 000, Algorithm 1), checked against numbers worked out by hand.

The toy network is Linear(2, 2) → ReLU → Linear(2, 1) with

    W1 = [[1, 2], [-1, 3]]   b1 = [0, 0]
    W2 = [[3, -2]]           b2 = [0.5]

and the points

    i   x            h = ReLU(W1 x + b1)
    0   ( 2,  1)     (4, 1)      <- the target
    1   ( 1,  0)     (1, 0)
    2   ( 2,  3)     (8, 7)
    3   (-1,  1)     (1, 4)
    4   ( 5, -0.5)   (4, 0)
    5   ( 0,  2)     (4, 6)

With n_neighbors = 2 and the pool {1, 2, 3, 4} the target's neighbours are
{1, 2} in the input space (distances √2, 2, 3, √11.25) but {4, 1} in the
hidden space (distances 1, √10, √52, √18): a test that searched the wrong
space would get different masks.
"""

import copy

import pytest
import torch
from torch import nn
from toys import trained_of

from unlearning import get_config
from unlearning.data import Data
from unlearning.methods import MethodNotApplicable, unlearn
from unlearning.methods import weight_pruning as wp
from unlearning.methods.weight_pruning import PruningConfig, check_thresholds, layer_masks, prune, unsupported_reason
from unlearning.training.train import Trained, TrainRecord

X = torch.tensor([[2.0, 1.0], [1.0, 0.0], [2.0, 3.0], [-1.0, 1.0], [5.0, -0.5], [0.0, 2.0]])
W1 = [[1.0, 2.0], [-1.0, 3.0]]
W2 = [[3.0, -2.0]]


def toy_model() -> nn.Sequential:
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor(W1))
        model[0].bias.zero_()
        model[2].weight.copy_(torch.tensor(W2))
        model[2].bias.fill_(0.5)
    return model


def toy_trained() -> Trained:
    return trained_of(toy_model())


def toy_data(n=6) -> Data:
    x = X[:n].clone()
    y = torch.linspace(0.0, 1.0, n)
    return Data(name="toy", task="regression", x_train=x, y_train=y, x_test=x[:2].clone(), y_test=y[:2].clone())


def no_finetune(model, data, forget, config, on_epoch=None):
    return TrainRecord(rule="stub")


POOL = torch.tensor([1, 2, 3, 4])


# --- one target, the default (input) reading ---------------------------------------------------

def test_input_reading_masks_by_hand():
    # Layer 1: neighbours {1, 2} in input space, mean (1.5, 1.5), Δ = (0.5, -0.5);
    #   |Δ_j w_ij| = [[0.5·1, 0.5·2], [0.5·1, 0.5·3]] = [[0.5, 1.0], [0.5, 1.5]] > 0.7 → column 2.
    # Layer 2: neighbours {4, 1} in hidden space, mean (2.5, 0), Δ = (4, 1) − (2.5, 0) = (1.5, 1);
    #   |Δ_j w_ij| = [[1.5·3, 1·2]] = [[4.5, 2.0]] > 4 → w_11 only.
    cfg = PruningConfig(thresholds=(0.7, 4.0), n_neighbors=2)
    masks = layer_masks(toy_model(), X, 0, POOL, cfg)
    assert masks[0].tolist() == [[False, True], [False, True]]
    assert masks[1].tolist() == [[True, False]]


def test_input_reading_prune_zeroes_exactly_the_masked_weights_and_resets_biases():
    model = toy_model()
    cfg = PruningConfig(thresholds=(0.7, 4.0), n_neighbors=2)
    details = prune(model, X, torch.tensor([0]), POOL, cfg)
    assert model[0].weight.tolist() == [[1.0, 0.0], [-1.0, 0.0]]
    assert model[2].weight.tolist() == [[0.0, -2.0]]
    for layer in (model[0], model[2]):
        assert torch.all(layer.bias == torch.tensor(0.01)).item()
    assert details == {"weights_zeroed": 3, "weights_zeroed_per_layer": [2, 1], "weights_total": 6}


def test_threshold_is_strict():
    # Layer-1 scores are [[0.5, 1.0], [0.5, 1.5]]: with T = 1.0 the exact 1.0 stays.
    cfg = PruningConfig(thresholds=(1.0, 4.5), n_neighbors=2)
    masks = layer_masks(toy_model(), X, 0, POOL, cfg)
    assert masks[0].tolist() == [[False, False], [False, True]]
    assert masks[1].tolist() == [[False, False]]          # 4.5 is not > 4.5


def test_one_neighbour_and_custom_bias_value():
    # n = 1: layer 1 neighbour is point 1 (distance √2), Δ = (1, 1): scores |W1| = [[1, 2], [1, 3]];
    # layer 2 neighbour is point 4 (distance 1), Δ = (0, 1): scores [[0, 2]].
    model = toy_model()
    cfg = PruningConfig(thresholds=(1.5, 1.0), n_neighbors=1, bias_value=-3.0)
    details = prune(model, X, torch.tensor([0]), POOL, cfg)
    assert model[0].weight.tolist() == [[1.0, 0.0], [-1.0, 0.0]]
    assert model[2].weight.tolist() == [[3.0, 0.0]]
    assert model[0].bias.tolist() == [-3.0, -3.0] and model[2].bias.tolist() == [-3.0]
    assert details["weights_zeroed_per_layer"] == [2, 1]


def test_more_neighbours_than_pool_uses_the_whole_pool():
    # Pool {1, 2}, n = 10: both are used in both layers.
    # Layer 1: mean (1.5, 1.5), Δ = (0.5, -0.5) as before.
    # Layer 2: hidden mean of (1, 0) and (8, 7) = (4.5, 3.5), Δ = (−0.5, −2.5): scores [[1.5, 5.0]].
    cfg = PruningConfig(thresholds=(0.7, 2.0), n_neighbors=10)
    masks = layer_masks(toy_model(), X, 0, torch.tensor([1, 2]), cfg)
    assert masks[0].tolist() == [[False, True], [False, True]]
    assert masks[1].tolist() == [[False, True]]


# --- the output reading ---------------------------------------------------------------------------

def test_output_reading_masks_by_hand():
    # Layer 1: same neighbours {1, 2} (searched in the layer's input space); Δ on the activated output:
    #   h0 − mean(h1, h2) = (4, 1) − (4.5, 3.5) = (−0.5, −2.5);
    #   |Δ_i w_ij| = [[0.5·1, 0.5·2], [2.5·1, 2.5·3]] = [[0.5, 1.0], [2.5, 7.5]] > 0.7.
    # Layer 2: neighbours {4, 1} in hidden space; outputs 3·4 − 2·1 + 0.5 = 10.5, 12.5, 3.5:
    #   Δ = 10.5 − (12.5 + 3.5) / 2 = 2.5; |Δ w| = [[7.5, 5.0]] > 4.
    cfg = PruningConfig(thresholds=(0.7, 4.0), n_neighbors=2, delta_on="output")
    masks = layer_masks(toy_model(), X, 0, POOL, cfg)
    assert masks[0].tolist() == [[False, True], [True, True]]
    assert masks[1].tolist() == [[True, True]]
    # A threshold between the two layer-2 scores keeps the smaller one.
    cfg = PruningConfig(thresholds=(0.7, 6.0), n_neighbors=2, delta_on="output")
    assert layer_masks(toy_model(), X, 0, POOL, cfg)[1].tolist() == [[True, False]]


def test_output_reading_prune():
    model = toy_model()
    cfg = PruningConfig(thresholds=(0.7, 4.0), n_neighbors=2, delta_on="output")
    details = prune(model, X, torch.tensor([0]), POOL, cfg)
    assert model[0].weight.tolist() == [[1.0, 0.0], [0.0, 0.0]]
    assert model[2].weight.tolist() == [[0.0, 0.0]]
    assert model[0].bias.tolist() == pytest.approx([0.01, 0.01]) and model[2].bias.tolist() == pytest.approx([0.01])
    assert details["weights_zeroed"] == 5 and details["weights_zeroed_per_layer"] == [3, 2]


# --- sets of points: union vs sequential -----------------------------------------------------------
#
# Targets 0 and 3, pool {1, 2, 4, 5}, n = 2, T = (1.0, 2.0), input reading.
#
# On the trained model:
#   target 0: layer 1 neighbours {1, 2} (√2, 2; point 5 is at √5), Δ = (0.5, −0.5),
#             scores [[0.5, 1.0], [0.5, 1.5]] → [[F, F], [F, T]];
#             layer 2 neighbours {4, 1}, Δ = (1.5, 1), scores [[4.5, 2.0]] → [[T, F]].
#   target 3: layer 1 neighbours {5, 1} (√2, √5), mean (0.5, 1), Δ = (−1.5, 0),
#             scores [[1.5, 0], [1.5, 0]] → [[T, F], [T, F]];
#             hidden h3 = (1, 4), neighbours {5, 1} (√13, 4), mean (2.5, 3), Δ = (−1.5, 1),
#             scores [[4.5, 2.0]] → [[T, F]].
#   union:    W1 = [[0, 2], [0, 0]], W2 = [[0, −2]], 4 weights.
# Sequential, after target 0: W1 = [[1, 2], [−1, 0]], b1 = 0.01, W2 = [[0, −2]], b2 = 0.01.
#   target 3, layer 1: same Δ (input space), scores [[1.5, 0], [1.5, 0]] → [[T, F], [T, F]];
#   layer 2: h = ReLU(x_a + 2 x_b + 0.01, −x_a + 0.01): h3 = (1.01, 1.01), h1 = (1.01, 0),
#            h5 = (4.01, 0.01), h4 = (4.01, 0), h2 = (8.01, 0); neighbours {1, 5},
#            mean (2.51, 0.005), Δ = (−1.5, 1.005), scores [[0·1.5, 2·1.005]] = [[0, 2.01]] → [[F, T]].
#   sequential: W1 = [[0, 2], [0, 0]], W2 = [[0, 0]], 5 weights.

PAIR = torch.tensor([0, 3])
PAIR_POOL = torch.tensor([1, 2, 4, 5])
PAIR_CFG = dict(thresholds=(1.0, 2.0), n_neighbors=2)


def test_union_by_hand_and_equal_to_or_of_single_target_masks():
    cfg = PruningConfig(**PAIR_CFG, set_rule="union")
    m0 = layer_masks(toy_model(), X, 0, PAIR_POOL, cfg)
    m3 = layer_masks(toy_model(), X, 3, PAIR_POOL, cfg)
    assert m0[0].tolist() == [[False, False], [False, True]] and m0[1].tolist() == [[True, False]]
    assert m3[0].tolist() == [[True, False], [True, False]] and m3[1].tolist() == [[True, False]]

    model = toy_model()
    details = prune(model, X, PAIR, PAIR_POOL, cfg)
    for layer, a, b in zip((model[0], model[2]), m0, m3, strict=True):
        assert torch.equal(layer.weight == 0, a | b)
    assert model[0].weight.tolist() == [[0.0, 2.0], [0.0, 0.0]]
    assert model[2].weight.tolist() == [[0.0, -2.0]]
    assert details["weights_zeroed"] == 4 and details["weights_zeroed_per_layer"] == [3, 1]
    assert model[0].bias.tolist() == pytest.approx([0.01, 0.01]) and model[2].bias.tolist() == pytest.approx([0.01])


def test_union_does_not_depend_on_target_order():
    cfg = PruningConfig(**PAIR_CFG, set_rule="union")
    a, b = toy_model(), toy_model()
    prune(a, X, torch.tensor([0, 3]), PAIR_POOL, cfg)
    prune(b, X, torch.tensor([3, 0]), PAIR_POOL, cfg)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_sequential_by_hand_differs_from_union():
    cfg = PruningConfig(**PAIR_CFG, set_rule="sequential")
    model = toy_model()
    details = prune(model, X, PAIR, PAIR_POOL, cfg)
    assert model[0].weight.tolist() == [[0.0, 2.0], [0.0, 0.0]]
    assert model[2].weight.tolist() == [[0.0, 0.0]]      # union keeps w_12 = −2 (see above)
    assert details["weights_zeroed"] == 5 and details["weights_zeroed_per_layer"] == [3, 2]
    assert model[0].bias.tolist() == pytest.approx([0.01, 0.01]) and model[2].bias.tolist() == pytest.approx([0.01])

    # Second target's masks are computed on the model the first one left.
    after_first = toy_model()
    prune(after_first, X, torch.tensor([0]), PAIR_POOL, cfg)
    m3 = layer_masks(after_first, X, 3, PAIR_POOL, cfg)
    assert m3[1].tolist() == [[False, True]]


def test_single_target_union_equals_sequential():
    models = {}
    for rule in ("union", "sequential"):
        models[rule] = toy_model()
        prune(models[rule], X, torch.tensor([0]), POOL, PruningConfig(thresholds=(0.7, 4.0), n_neighbors=2,
                                                                        set_rule=rule))
    assert all(torch.equal(p, q) for p, q in zip(models["union"].state_dict().values(),
                                                 models["sequential"].state_dict().values(), strict=True))


# --- errors -------------------------------------------------------------------------------------------

def test_wrong_number_of_thresholds():
    model = toy_model()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError, match=r"3 thresholds given for 2 Linear layers"):
        prune(model, X, torch.tensor([0]), POOL, PruningConfig(thresholds=(1.0, 1.0, 1.0)))
    with pytest.raises(ValueError, match=r"1 thresholds given for 2 Linear layers"):
        check_thresholds(PruningConfig(thresholds=(1.0,)), model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())   # nothing zeroed


def test_conv_model_is_rejected_before_any_work(monkeypatch, convnet_problem):
    model = convnet_problem.trained.model
    assert "Conv2d" in unsupported_reason(model)
    with pytest.raises(ValueError, match=r"weight pruning: layer 0 is Conv2d.*fully-connected"):
        prune(model, torch.zeros(3, 1, 28, 28), torch.tensor([0]), torch.tensor([1, 2]), PruningConfig())

    def must_not_run(*args, **kwargs):
        raise AssertionError("work started before the applicability check")

    monkeypatch.setattr(wp, "prune", must_not_run)
    monkeypatch.setattr(wp, "warm_finetune", must_not_run)
    p = convnet_problem
    with pytest.raises(MethodNotApplicable, match=r"'weight_pruning'.*'mnist'.*Conv2d"):
        unlearn("weight_pruning", p.trained, p.data, p.forget, p.config)


def test_non_sequential_model_is_rejected():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 1)

    assert "nn.Sequential" in unsupported_reason(Net())


# --- through the method ------------------------------------------------------------------------------

def test_method_prunes_a_copy_with_the_retain_pool(monkeypatch):
    pools = []
    real_layer_masks = wp.layer_masks

    def spy(model, x, target, pool, cfg):
        pools.append(pool.tolist())
        return real_layer_masks(model, x, target, pool, cfg)

    monkeypatch.setattr(wp, "layer_masks", spy)
    monkeypatch.setattr(wp, "warm_finetune", no_finetune)
    config = get_config("synthetic", forget_policy="remove", methods={"weight_pruning": PruningConfig(**PAIR_CFG)})
    result = unlearn("weight_pruning", toy_trained(), toy_data(), [0, 3], config)

    assert pools == [[1, 2, 4, 5], [1, 2, 4, 5]]              # forget points are never neighbours
    assert result.model[0].weight.tolist() == [[0.0, 2.0], [0.0, 0.0]]   # the union worked out above
    assert result.model[2].weight.tolist() == [[0.0, -2.0]]
    d = result.details
    assert d["weights_zeroed"] == 4 and d["weights_zeroed_per_layer"] == [3, 1] and d["weights_total"] == 6
    assert d["set_rule"] == "union" and d["delta_on"] == "input" and d["n_neighbors"] == 2
    assert d["thresholds"] == [1.0, 2.0]
    assert result.cost.seconds >= d["prune_seconds"] >= 0


def test_method_sequential_rule(monkeypatch):
    monkeypatch.setattr(wp, "warm_finetune", no_finetune)
    config = get_config("synthetic", forget_policy="remove",
                        methods={"weight_pruning": PruningConfig(**PAIR_CFG, set_rule="sequential")})
    result = unlearn("weight_pruning", toy_trained(), toy_data(), [0, 3], config)
    assert result.model[2].weight.tolist() == [[0.0, 0.0]]
    assert result.details["weights_zeroed"] == 5


def test_method_finetunes_on_the_oracle_set_after_pruning(monkeypatch):
    seen = {}

    def fake_finetune(model, data, forget, config, on_epoch=None):
        seen["weights"] = [model[0].weight.clone(), model[2].weight.clone()]
        seen["forget"] = forget.tolist()
        return TrainRecord(epochs=7, rule="fake")

    monkeypatch.setattr(wp, "warm_finetune", fake_finetune)
    config = get_config("synthetic", forget_policy="remove",
                        methods={"weight_pruning": PruningConfig(thresholds=(0.7, 4.0), n_neighbors=2)})
    result = unlearn("weight_pruning", toy_trained(), toy_data(5), [0], config)
    assert seen["weights"][0].tolist() == [[1.0, 0.0], [-1.0, 0.0]]    # pruned before fine-tuning
    assert seen["weights"][1].tolist() == [[0.0, -2.0]]
    assert seen["forget"] == [0] and result.cost.epochs == 7


def test_method_end_to_end_on_synthetic_finetunes_to_convergence():
    from unlearning.data.registry import load_dataset
    from unlearning.training.train import train_original

    config = get_config("synthetic", seed=0)
    data = load_dataset("synthetic", seed=0)
    result = unlearn("weight_pruning", train_original(data, config), data, [data.target_index], config)
    assert result.cost.converged is True and result.cost.epochs == len(result.cost.loss_history)
    assert result.cost.loss_history[-1] < config.finetune_train.convergence.threshold
    assert result.details["weights_total"] == 6


def test_masks_are_scores_above_thresholds_and_calibration_takes_their_quantile():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    x = torch.randn(40, 4)
    cfg = PruningConfig(thresholds=(0.1, 0.2), n_neighbors=3)
    pool = torch.arange(1, 40)
    scores = wp.layer_scores(model, x, 0, pool, cfg)
    masks = layer_masks(model, x, 0, pool, cfg)
    assert [s.shape for s in scores] == [(6, 4), (3, 6)]
    assert all(torch.equal(m, s > t) for m, s, t in zip(masks, scores, cfg.thresholds, strict=True))
    targets = torch.arange(10)
    thresholds = wp.calibrate_thresholds(model, x, targets, 0.9, cfg)
    pooled = [torch.cat([wp.layer_scores(model, x, t, torch.cat([torch.arange(t), torch.arange(t + 1, 40)]),
                                         cfg)[li].flatten() for t in range(10)]) for li in range(2)]
    for t, p in zip(thresholds, pooled, strict=True):
        assert float((p > t).float().mean()) == pytest.approx(0.1, abs=0.02)    # ~10 % above the 0.9 quantile
