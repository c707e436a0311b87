"""Regression tests: bad numbers, forget sets, dataset options and devices fail when they enter,
with a ValueError naming the field, the bad value and what is allowed (never later, never silently)."""

import math
import re

import numpy as np
import pytest
import torch

from unlearning import get_config
from unlearning.config import (
    Config,
    Convergence,
    TrainConfig,
    available_devices,
    check_device,
    check_int,
    check_real,
)
from unlearning.data.registry import check_dataset_options, load_dataset, loader_options
from unlearning.methods.random_relabel import RelabelConfig
from unlearning.methods.weight_pruning import PruningConfig
from unlearning.training.models import resolve_device

NAN, INF = math.nan, math.inf


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic", seed=0)


# --- the shared checks ------------------------------------------------------------------------------

def test_check_int_and_check_real_accept_numpy_and_refuse_bool():
    check_int("n", np.int64(3), 1)
    check_int("n", None, 1, none="all")
    check_real("x", np.float32(0.5), 0.0, 1.0)
    check_real("x", 2, 0.0, low_open=True)          # an int is a real number
    with pytest.raises(ValueError, match=r"n=True: must be an integer >= 1$"):
        check_int("n", True, 1)
    with pytest.raises(ValueError, match=r"n=None: must be an integer in 0\.\.5$"):
        check_int("n", None, 0, 5)
    with pytest.raises(ValueError, match=r"x=False: must be a finite number$"):
        check_real("x", False)
    with pytest.raises(ValueError, match=r"x=1\.0: must be a finite number in \[0, 1\)$"):
        check_real("x", 1.0, 0.0, 1.0, high_open=True)


# --- config fields ----------------------------------------------------------------------------------

@pytest.mark.parametrize("make, match", [
    # Convergence
    (lambda: Convergence(threshold=-1), r"threshold=-1: must be a finite number > 0"),
    (lambda: Convergence(threshold=NAN), r"threshold=nan: must be a finite number > 0"),
    (lambda: Convergence(threshold=0), r"threshold=0: must be a finite number > 0"),     # never reached
    (lambda: Convergence(threshold="0.1"), r"threshold='0\.1': must be a finite number > 0"),
    (lambda: Convergence("fixed_epochs", NAN, 2), r"threshold=nan: must be a finite number >= 0"),
    (lambda: Convergence(max_epochs=NAN), r"max_epochs=nan: must be an integer >= 1"),
    (lambda: Convergence(max_epochs=2.5), r"max_epochs=2\.5: must be an integer >= 1"),
    (lambda: Convergence(max_epochs=True), r"max_epochs=True: must be an integer >= 1"),
    (lambda: Convergence(max_epochs="10"), r"max_epochs='10': must be an integer >= 1"),
    # TrainConfig
    (lambda: TrainConfig(lr=NAN), r"lr=nan: must be a finite number > 0"),
    (lambda: TrainConfig(lr=INF), r"lr=inf: must be a finite number > 0"),
    (lambda: TrainConfig(lr=-1), r"lr=-1: must be a finite number > 0"),
    (lambda: TrainConfig(lr="x"), r"lr='x': must be a finite number > 0"),
    (lambda: TrainConfig(lr=True), r"lr=True: must be a finite number > 0"),
    (lambda: TrainConfig(batch_size=2.5), r"batch_size=2\.5: must be an integer >= 1 or None \(full batch\)"),
    (lambda: TrainConfig(batch_size=True), r"batch_size=True: must be an integer >= 1 or None"),
    (lambda: TrainConfig(lr_decay=NAN), r"lr_decay=nan: must be a finite number in \(0, 1\] or None \(no decay\)"),
    (lambda: TrainConfig(lr_decay=0), r"lr_decay=0: must be a finite number in \(0, 1\]"),
    (lambda: TrainConfig(lr_decay=-0.5), r"lr_decay=-0\.5: must be a finite number in \(0, 1\]"),
    (lambda: TrainConfig(lr_decay=1.5), r"lr_decay=1\.5: must be a finite number in \(0, 1\]"),
    (lambda: TrainConfig(convergence={"rule": "loss_below"}), r"convergence=\{'rule': 'loss_below'\}: must be a "
                                                              r"Convergence"),
    # Config
    (lambda: Config(seed="x"), r"seed='x': must be an integer in 0\.\.4294967295"),
    (lambda: Config(seed=1.5), r"seed=1\.5: must be an integer in 0\.\.4294967295"),
    (lambda: Config(seed=True), r"seed=True: must be an integer in 0\.\.4294967295"),
    (lambda: Config(seed=-1), r"seed=-1: must be an integer in 0\.\.4294967295"),
    (lambda: Config(seed=2**70), r"seed=1180591620717411303424: must be an integer in 0\.\.4294967295"),
    (lambda: Config(train={"lr": 1e-3}), r"train=\{'lr': 0\.001\}: must be a TrainConfig"),
    (lambda: Config(finetune=3), r"finetune=3: must be a TrainConfig or None"),
    (lambda: Config(methods=[]), r"methods=\[\]: must be a dict"),
    (lambda: get_config("synthetic", sead=1), r"unknown config field 'sead'; allowed: dataset, train, "),
    (lambda: get_config("synthetic").with_epoch_cap(2.5), r"max_epochs=2\.5: must be an integer >= 1"),
    (lambda: get_config("synthetic").with_epoch_cap(0), r"max_epochs=0: must be an integer >= 1"),
    (lambda: get_config("synthetic").with_method("random_relabel", learning_rate=1),
     r"unknown setting of method 'random_relabel' 'learning_rate'; allowed: optimizer, lr, k_prime, checkpoints"),
    (lambda: get_config("synthetic").with_method("noop", lr=1), r"method 'noop' takes no settings"),
    # weight pruning
    (lambda: PruningConfig(thresholds=9.0), r"thresholds=9\.0: must be a sequence of numbers >= 0, one per Linear"),
    (lambda: PruningConfig(thresholds="99"), r"thresholds='99': must be a sequence of numbers"),
    (lambda: PruningConfig(thresholds=(NAN, 1.0)), r"thresholds=\(nan, 1\.0\): each must be a finite number >= 0 "
                                                   r"\(got nan\)"),
    (lambda: PruningConfig(thresholds=(1.0, INF)), r"each must be a finite number >= 0 \(got inf\)"),
    (lambda: PruningConfig(thresholds=(-1.0, 1.0)), r"each must be a finite number >= 0 \(got -1\.0\)"),
    (lambda: PruningConfig(thresholds=("9", 9)), r"each must be a finite number >= 0 \(got '9'\)"),
    (lambda: PruningConfig(n_neighbors=2.5), r"n_neighbors=2\.5: must be an integer >= 1"),
    (lambda: PruningConfig(n_neighbors=True), r"n_neighbors=True: must be an integer >= 1"),
    (lambda: PruningConfig(bias_value=NAN), r"bias_value=nan: must be a finite number"),
    (lambda: PruningConfig(bias_value="0.01"), r"bias_value='0\.01': must be a finite number"),
    # random relabel
    (lambda: RelabelConfig(lr=NAN), r"lr=nan: must be a finite number > 0"),
    (lambda: RelabelConfig(lr=INF), r"lr=inf: must be a finite number > 0"),
    (lambda: RelabelConfig(lr="x"), r"lr='x': must be a finite number > 0"),
    (lambda: RelabelConfig(k_prime=1.5), r"k_prime=1\.5: must be an integer >= 1 or None \(all other labels\)"),
    (lambda: RelabelConfig(k_prime=True), r"k_prime=True: must be an integer >= 1"),
    (lambda: RelabelConfig(checkpoints=50), r"checkpoints=50: must be a sequence of removal counts"),
    (lambda: RelabelConfig(checkpoints="50"), r"checkpoints='50': must be a sequence of removal counts"),
    (lambda: RelabelConfig(checkpoints=(50, 2.5)), r"checkpoints=\(50, 2\.5\): removal counts must be integers "
                                                   r">= 1 \(got 2\.5\)"),
])
def test_bad_field(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_field_through_settings_dicts():
    # a dict of overrides in Config.methods goes through the same checks, where the config is resolved
    with pytest.raises(ValueError, match=r"n_neighbors=2\.5: must be an integer >= 1"):
        get_config("synthetic", methods={"weight_pruning": {"n_neighbors": 2.5}})
    with pytest.raises(ValueError, match=r"n_neighbors=2\.5: must be an integer >= 1"):
        get_config("synthetic").with_method("weight_pruning", {"n_neighbors": 2.5})
    with pytest.raises(ValueError, match=r"lr=nan: must be a finite number > 0"):
        get_config("mnist").with_method("random_relabel", lr=NAN)


def test_good_numbers_still_pass():
    Convergence("fixed_epochs", 0, 2)                   # the threshold is ignored there; 0 by convention
    Convergence("loss_below", 1e-9, np.int64(3))
    TrainConfig("sgd", np.float64(0.05), np.int64(8), lr_decay=1)
    TrainConfig(lr=1, lr_decay=0.7)
    PruningConfig(thresholds=[0, np.float32(2.5)], n_neighbors=np.int32(2), bias_value=-3)
    RelabelConfig(lr=np.float64(0.5), k_prime=np.int64(3), checkpoints=[np.int64(5), 10])
    assert Config(seed=np.int64(4)).seed == 4
    assert Config(seed=2**32 - 1).seed == 2**32 - 1


# --- forget indices ---------------------------------------------------------------------------------

ALLOWED_FORGET = re.escape("give one integer or a 1-D list, range, tensor or array of distinct integer indices "
                           "in 0..9 (the training points of synthetic)")


@pytest.mark.parametrize("forget, match", [
    ("3", r"forget '3' \(str\) is not an integer; "),
    ("ab", r"forget 'ab' \(str\) is not an integer; "),
    (None, r"forget None \(NoneType\) is not an integer; "),
    (1.5, r"forget 1\.5 \(float\) is not an integer; "),
    (True, r"forget True is a bool, not an index; "),
    ({1, 2}, r"forget \{1, 2\} \(set\) is not an integer; "),
    ([1, "2"], r"forget index '2' \(str\) is not an integer; "),
    ([1, None], r"forget index None \(NoneType\) is not an integer; "),
    ([1.7, 3.0], r"forget index 1\.7 \(float\) is not an integer; "),
    ([1, True], r"forget index True is a bool, not an index; "),
    ([[1, 2], [3, 4]], r"forget index \[1, 2\] is nested: forget must be 1-D; "),
    ([1, [2, 3]], r"forget index \[2, 3\] is nested: forget must be 1-D; "),
    ([(1,), (2,)], r"forget index \(1,\) is nested: forget must be 1-D; "),
    (torch.tensor([[1, 2], [3, 4]]), r"forget is 2-D \(shape \(2, 2\)\), not 1-D; "),
    (np.array([[1, 2]]), r"forget is 2-D \(shape \(1, 2\)\), not 1-D; "),
    (np.array(["1", "2"]), r"forget index '1' \(str\) is not an integer; "),
    (torch.tensor([0.5, 1.0]), r"forget indices must be integers, got torch\.float32 \(first: 0\.5\); "),
    (np.array([1.5]), r"forget indices must be integers, got torch\.float64 \(first: 1\.5\); "),
])
def test_bad_forget_values(data, forget, match):
    with pytest.raises(ValueError, match=match + ALLOWED_FORGET):
        data.check_forget(forget)


@pytest.mark.parametrize("forget, shown", [
    (2**70, 2**70),
    ([1, 2**70], 2**70),
    ([-(2**64)], -(2**64)),
    (np.array([1, 2**70], dtype=object), 2**70),
    (np.array([1, 2**64 - 1], dtype=np.uint64), 2**64 - 1),     # not wrapped to -1 by a cast to int64
])
def test_huge_forget_index_is_out_of_range(data, forget, shown):
    with pytest.raises(ValueError, match=rf"forget index {shown} out of range: allowed 0\.\.9 for synthetic"):
        data.check_forget(forget)


@pytest.mark.parametrize("forget, expected", [
    ([7, 2, 5], [7, 2, 5]),
    ((3, 4), [3, 4]),
    (range(3), [0, 1, 2]),
    (range(6, 3, -1), [6, 5, 4]),
    (3, [3]),
    (np.int64(3), [3]),
    (torch.tensor(4), [4]),
    (torch.tensor([1, 2], dtype=torch.int32), [1, 2]),
    (torch.tensor([1, 2], dtype=torch.uint8), [1, 2]),
    (np.array([3, 1]), [3, 1]),
    (np.array([3, 1], dtype=np.uint16), [3, 1]),
    (np.arange(5)[::-1][:3], [4, 3, 2]),                       # negative strides
    ([np.int32(2), torch.tensor(1)], [2, 1]),
])
def test_good_forget_values(data, forget, expected):
    out = data.check_forget(forget)
    assert out.dtype == torch.long and out.dim() == 1 and out.tolist() == expected


# --- dataset options --------------------------------------------------------------------------------

def test_loader_options():
    assert loader_options("synthetic") == ["n_points", "n_test", "seed", "target"]
    assert "train_size" in loader_options("mnist")


def test_unknown_dataset_option_in_config():
    # what the CLI builds for `--dataset synthetic --train-size 100`: a TypeError traceback before
    with pytest.raises(ValueError, match=r"unknown option 'train_size' for dataset 'synthetic'; "
                                         r"allowed: n_points, n_test, target$"):
        get_config("synthetic", dataset_options={"train_size": 100})
    with pytest.raises(ValueError, match=r"unknown option 'test_fraction' for dataset 'mnist'; "
                                         r"allowed: data_dir, test_size, train_size$"):
        get_config("mnist", dataset_options={"data_dir": None, "test_fraction": 0.2})
    with pytest.raises(ValueError, match=r"option 'seed' for dataset 'digits' is not allowed here: "
                                         r"the loader gets Config.seed; set seed instead"):
        get_config("digits", dataset_options={"seed": 3})
    with pytest.raises(ValueError, match=r"dataset_options=\['train_size'\]: must be a dict"):
        get_config("mnist", dataset_options=["train_size"])
    cfg = get_config("mnist", dataset_options={"data_dir": None, "train_size": 100})
    assert cfg.dataset_options == {"data_dir": None, "train_size": 100}
    get_config("california", dataset_options={"data_dir": None, "test_fraction": 0.2})


def test_unknown_dataset_option_in_load_dataset():
    with pytest.raises(ValueError, match=r"unknown option 'train_size' for dataset 'synthetic'; "
                                         r"allowed: n_points, n_test, seed, target$"):
        load_dataset("synthetic", train_size=3)


def test_loader_with_kwargs_takes_any_option(monkeypatch):
    from unlearning.data.registry import DATASETS

    spec = DATASETS["synthetic"]
    monkeypatch.setitem(DATASETS, "synthetic", type(spec)(**{**spec.__dict__, "loader": lambda **kw: kw}))
    assert loader_options("synthetic") is None
    check_dataset_options("synthetic", {"anything": 1})


# --- devices ----------------------------------------------------------------------------------------

HERE = re.escape(f"available here: {', '.join(available_devices())}")


@pytest.mark.skipif(torch.cuda.is_available() or torch.backends.mps.is_available(), reason="needs a CPU-only machine")
@pytest.mark.parametrize("name, match", [
    ("mps", r"device 'mps' asked for, but MPS is not available here; available here: cpu$"),
    ("cuda", r"device 'cuda' asked for, but CUDA is not available here; available here: cpu$"),
    ("cuda:1", r"device 'cuda:1' asked for, but CUDA is not available here; available here: cpu$"),
])
def test_device_this_machine_lacks(name, match):
    with pytest.raises(ValueError, match=match):
        check_device(name)
    with pytest.raises(ValueError, match=match):
        Config(device=name)


@pytest.mark.parametrize("name, match", [
    ("xla", r"unknown device 'xla'; allowed: cpu, cuda, cuda:N, mps, or None .*; " + HERE + "$"),
    ("meta", r"unknown device 'meta'; allowed: cpu, cuda, cuda:N, mps"),
    ("gpu", r"unknown device 'gpu'; allowed: cpu, cuda, cuda:N, mps"),
    ("", r"unknown device ''; allowed"),
    ("cpu:5", r"device 'cpu:5' asked for, but the CPU is device 'cpu' \(or 'cpu:0'\); " + HERE + "$"),
    (torch.device("meta"), r"unknown device device\(type='meta'\); allowed"),
    (0, r"device=0: must be a device name \(str\) or a torch.device; allowed: cpu, cuda"),
    (f"cuda:{torch.cuda.device_count()}", r"asked for, but (CUDA is not available here|this machine has \d+ CUDA)"),
])
def test_device_refused_everywhere(name, match, monkeypatch):
    with pytest.raises(ValueError, match=match):
        check_device(name)
    with pytest.raises(ValueError, match=match):
        get_config("synthetic", device=name)
    with pytest.raises(ValueError, match=match):
        resolve_device(name)
    if isinstance(name, str):                  # the environment variable gets the same check
        monkeypatch.setenv("UNLEARNING_DEVICE", name or " ")
        with pytest.raises(ValueError, match=r"device"):
            resolve_device(None)


def test_devices_this_machine_has(monkeypatch):
    for name in ("cpu", "cpu:0", torch.device("cpu"), *available_devices()):
        assert check_device(name).type in ("cpu", "cuda", "mps")
        assert resolve_device(name) == check_device(name)
    assert get_config("synthetic", device="cpu").device == "cpu"
    monkeypatch.setenv("UNLEARNING_DEVICE", "cpu")
    assert resolve_device(None) == torch.device("cpu")
    assert available_devices()[0] == "cpu"


def test_a_config_built_by_hand_runs_a_method_with_its_overrides_or_defaults():
    """`Config` holds what it is given; where a method is looked up (`unlearn`), a dict of overrides becomes its
    settings dataclass and a method the config holds nothing for gets its defaults, as `get_config` would give."""
    from dataclasses import replace

    from unlearning import train_original, unlearn
    from unlearning.config import Config

    data = load_dataset("synthetic", seed=0)
    preset = get_config("synthetic")
    trained = train_original(data, preset)
    by_hand = Config(dataset="synthetic", train=preset.train, methods={"gradient_ascent": {"epochs": 2}})
    with pytest.raises(ValueError, match="still a dict of overrides"):                 # held as given
        by_hand.method_settings("gradient_ascent")
    ran = unlearn("gradient_ascent", trained, data, [data.target_index], by_hand)
    assert ran.cost.epochs == 2
    resolved = replace(preset, methods={**preset.methods, "gradient_ascent": replace(
        preset.method_settings("gradient_ascent"), epochs=2)})
    same = unlearn("gradient_ascent", trained, data, [data.target_index], resolved)
    assert all(torch.equal(a, b) for a, b in zip(ran.model.state_dict().values(), same.model.state_dict().values(),
                                                 strict=True))
    defaults = unlearn("l1_sparse", trained, data, [data.target_index], Config(dataset="synthetic", train=preset.train))
    assert defaults.cost.epochs == preset.method_settings("l1_sparse").epochs
    with pytest.raises(ValueError, match=r"unknown setting of method 'gradient_ascent' 'epoch'; allowed: lr, epochs"):
        unlearn("gradient_ascent", trained, data, [data.target_index],
                Config(dataset="synthetic", methods={"gradient_ascent": {"epoch": 2}}))
