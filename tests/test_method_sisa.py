"""SISA (Bourtoule et al.): shards × slices with checkpoints; a removal retrains only what saw the removed rows."""


import pytest
import torch
from torch import nn
from toys import trained_of

from unlearning import get_config
from unlearning.data import Data
from unlearning.data.forget_sets import select
from unlearning.data.registry import DATASETS, load_dataset
from unlearning.methods import applicability, get_method, unlearn
from unlearning.methods.sisa import ShardEnsemble, SisaConfig, _train_from, partition, remove, train_shards

CPU = torch.device("cpu")


def digits(n: int = 120) -> Data:
    return load_dataset("digits").subset(n, 40, seed=0)


def config(seed: int = 0, epochs: int = 4, dataset: str = "digits", **sisa):
    return get_config(dataset, seed=seed).with_epoch_cap(epochs).with_method("sisa", **sisa)


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def states_close(a: dict, b: dict, atol: float = 1e-6) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], rtol=0, atol=atol) for k in a)


def train_shards_only_partition(data, cfg):
    """The shards of a SISA run, untrained (its partition)."""
    from unlearning.methods.sisa import Problem, Shard, derived_seed

    s = cfg.method_settings("sisa")
    cuts = partition(data.n_train, s.shards, s.slices, derived_seed("partition", cfg.seed))
    return Problem(data, cfg, data.x_train, data.y_train, [Shard(i, sl) for i, sl in enumerate(cuts)])


def trained_sisa(data, cfg):
    problems, _ = train_shards([data], [cfg], CPU)
    return problems[0]


# --- aggregation -------------------------------------------------------------------------------------------

def test_ensemble_averages_probabilities_or_predictions():
    torch.manual_seed(0)
    x = torch.randn(7, 3)
    nets = [nn.Linear(3, 4) for _ in range(3)]
    probs = torch.stack([n(x).softmax(-1) for n in nets]).mean(0)
    torch.testing.assert_close(ShardEnsemble(nets, "multiclass")(x).softmax(-1), probs)
    torch.testing.assert_close(ShardEnsemble(nets, "multiclass")(x).exp().sum(-1), torch.ones(7))
    heads = [nn.Linear(3, 1) for _ in range(3)]
    p = torch.stack([h(x).sigmoid() for h in heads]).mean(0)
    torch.testing.assert_close(ShardEnsemble(heads, "binary")(x).sigmoid(), p)
    torch.testing.assert_close(ShardEnsemble(heads, "regression")(x), torch.stack([h(x) for h in heads]).mean(0))


def test_partition_is_a_seeded_split_into_shards_and_slices():
    cuts = partition(23, 3, 2, seed=5)
    rows = torch.cat([s for shard in cuts for s in shard])
    assert sorted(rows.tolist()) == list(range(23))                      # every row once
    assert [sum(len(s) for s in shard) for shard in cuts] == [8, 8, 7]
    assert all(abs(len(a) - len(b)) <= 1 for shard in cuts for a in shard for b in shard)
    assert all(torch.equal(a, b) for sa, sb in zip(cuts, partition(23, 3, 2, seed=5), strict=True)
               for a, b in zip(sa, sb, strict=True))
    assert not torch.equal(rows, torch.cat([s for shard in partition(23, 3, 2, seed=6) for s in shard]))


def test_the_partition_is_not_the_permutation_a_random_forget_set_comes_from():
    """Regression: seeded with config.seed (or config.seed + 2**33, which torch's generator wraps to it),
    the partition was the permutation `forget_sets` draws a random forget set from, so every forget
    point of the audit's first model fell in shard 0."""
    data = load_dataset("digits")
    _, forget = select(data, 50, seed=0)
    problem = train_shards_only_partition(data, config(seed=0))
    hit = [bool(torch.isin(torch.cat(s.slices), forget).any()) for s in problem.shards]
    assert sum(hit) >= 4


# --- exactness ---------------------------------------------------------------------------------------------

def test_no_retrained_shard_ever_saw_a_removed_point():
    data, cfg = digits(), config(shards=4, slices=3)
    forget = torch.tensor([3, 17, 40, 41, 77, 101])
    res = unlearn("sisa", trained_of(nn.Linear(1, 1)), data, forget, cfg)
    before = trained_sisa(data, cfg)
    assert any(torch.isin(s.trained_rows(), forget).any() for s in before.shards)   # the training did see them
    assert len(res.model.constituents) == 4
    for rows in res.model.trained_rows:
        assert not torch.isin(rows, forget).any()
    retrained = [r for r in res.model.restarts if r is not None]
    assert res.details["shards_retrained"] == len(retrained) >= 1
    assert res.details["slices_retrained"] == sum(3 - r for r in retrained)
    assert res.cost.samples > 0 and res.details["training_samples"] > 0


def test_removing_points_of_one_shard_retrains_only_that_shard():
    data, cfg = digits(), config(shards=3, slices=2)
    before = trained_sisa(data, cfg)
    forget = before.shards[1].slices[1][:2]                       # two rows of shard 1's second slice
    after, _ = remove([before], [forget], CPU)
    after = after[0]
    for s in (0, 2):
        assert after.shards[s].restart is None
        assert states_equal(after.model_of[s].state_dict(), before.model_of[s].state_dict())   # bit for bit
    assert after.shards[1].restart == 1
    assert not states_equal(after.model_of[1].state_dict(), before.model_of[1].state_dict())
    assert states_equal(after.shards[1].checkpoints[1], before.shards[1].checkpoints[1])    # slice 0 kept
    # the retrained shard is the shard SISA trains from scratch without those rows (same seeds, same steps)
    scratch = trained_sisa(data, cfg)
    shard = scratch.shards[1]
    shard.slices = [s[~torch.isin(s, forget)] for s in shard.slices]
    shard.seen, shard.records = [], []
    _train_from([(scratch, shard, 0)], CPU)
    assert states_close(after.model_of[1].state_dict(), scratch.model_of[1].state_dict())
    res = unlearn("sisa", trained_of(nn.Linear(1, 1)), data, forget, cfg)
    assert (res.details["shards_retrained"], res.details["slices_retrained"]) == (1, 1)
    assert res.model.restarts == [None, 1, None]


def test_removing_everything_from_a_slice_onward_restarts_from_its_checkpoint():
    data, cfg = digits(), config(shards=2, slices=3)
    before = trained_sisa(data, cfg)
    forget = torch.cat(before.shards[0].slices[1:])              # shard 0's slices 1 and 2, whole
    after, _ = remove([before], [forget], CPU)
    shard = after[0].shards[0]
    assert shard.restart == 1
    # nothing new after slice 0: the model is the checkpoint taken after slice 0, untouched
    assert states_equal(after[0].model_of[0].state_dict(), before.shards[0].checkpoints[1])
    assert shard.records == []
    assert torch.equal(shard.trained_rows(), torch.sort(before.shards[0].slices[0]).values)
    res = unlearn("sisa", trained_of(nn.Linear(1, 1)), data, forget, cfg)
    assert res.cost.steps == 0 and res.details["slices_retrained"] == 2 and res.model.restarts == [1, None]


def test_a_removal_in_the_first_slice_restarts_from_the_init_and_an_emptied_shard_leaves():
    data, cfg = digits(60), config(shards=3, slices=2)
    before = trained_sisa(data, cfg)
    first = before.shards[0].slices[0][:1]
    after, _ = remove([before], [first], CPU)
    assert after[0].shards[0].restart == 0 and len(after[0].shards[0].checkpoints) == 3
    whole = torch.cat(before.shards[2].slices)
    res = unlearn("sisa", trained_of(nn.Linear(1, 1)), data, whole, cfg)
    assert res.details["shards_emptied"] == 1 and len(res.model.constituents) == 2
    assert res.model.restarts == [None, None]


def test_replace_policy_trains_on_the_replacement_points():
    data = load_dataset("synthetic", seed=0)
    cfg = config(dataset="synthetic", epochs=20, shards=2, slices=2)
    forget = torch.tensor([data.target_index])
    res = unlearn("sisa", trained_of(nn.Linear(1, 1)), data, forget, cfg)
    rows = torch.cat(res.model.trained_rows)
    assert data.target_index not in rows.tolist() and data.n_train + data.target_index in rows.tolist()
    assert res.details["train_size"] == data.n_train
    assert res.model(data.x_test).shape == (len(data.x_test), 1)


# --- where it applies, and bad settings ---------------------------------------------------------------------

def test_applies_to_every_dataset():
    for name, spec in DATASETS.items():
        assert applicability(spec.probe(), spec.build_model(), ["sisa"]) == {"sisa": None}, name


def test_more_shards_times_slices_than_rows_is_refused_before_training():
    data = load_dataset("synthetic", seed=0)
    with pytest.raises(ValueError, match=r"shards × slices = 5 × 3 = 15 exceeds the 10 training rows"):
        unlearn("sisa", trained_of(nn.Linear(1, 1)), data, [0], config(dataset="synthetic", shards=5, slices=3))


def test_paper_schedule_needs_a_fixed_epoch_rule():
    with pytest.raises(ValueError, match=r"slice_epochs='paper'.*use slice_epochs='train'"):
        unlearn("sisa", trained_of(nn.Linear(1, 1)), digits(), [0], config(slice_epochs="paper"))


@pytest.mark.parametrize(("field", "value", "match"), [
    ("shards", 0, r"shards=0: must be an integer in 1\.\.1000"), ("slices", 1.5, "slices=1.5"),
    ("shards", True, "shards=True"), ("slice_epochs", "fast", "unknown slice_epochs 'fast'; allowed: train, paper")])
def test_settings_are_validated(field, value, match):
    with pytest.raises(ValueError, match=match):
        SisaConfig(**{field: value})


def test_search_space_fits_the_smallest_dataset():
    space = get_method("sisa").search.params
    assert space["shards"].high * space["slices"].high <= DATASETS["synthetic"].n_train
    assert space["shards"].low <= SisaConfig().shards <= space["shards"].high
    assert space["slices"].low <= SisaConfig().slices <= space["slices"].high


# --- the suite's architectures -------------------------------------------------------------------------------

def test_runs_on_the_mnist_convnet_with_the_paper_schedule(convnet_problem):
    p = convnet_problem
    cfg = p.config.with_epoch_cap(3).with_method("sisa", shards=2, slices=2, slice_epochs="paper")
    res = unlearn("sisa", p.trained, p.data, p.forget, cfg)
    assert len(res.model.constituents) == 2 and isinstance(res.model.constituents[0], nn.Sequential)
    # e = 3 epochs over R = 2 slices: a = 2, so slices get 2 and 2 epochs (sisa.py's avg_epochs_per_slice)
    assert res.details["training_epochs"] == 2 * 4
    out = res.model.eval()(p.data.x_test)
    torch.testing.assert_close(out.exp().sum(-1), torch.ones(len(out)))
    assert not any(torch.isin(rows, p.forget).any() for rows in res.model.trained_rows)


def test_runs_on_digits_with_the_preset_rule():
    data = digits(300)
    res = unlearn("sisa", trained_of(nn.Linear(1, 1)), data, list(range(10)), config(epochs=60))
    assert res.details["shards"] == 5 and res.details["training_epochs"] > 0
    assert res.cost.rule.startswith("SISA: retrain") and res.cost.batch_models == 1
    acc = (res.model(data.x_test).argmax(-1) == data.y_test).float().mean()
    assert acc > 0.6                                  # 10 classes: chance is 0.1
