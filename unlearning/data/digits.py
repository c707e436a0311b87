"""scikit-learn's `digits`: 1,797 8x8 handwritten digits, 10 classes — where both papers' methods meet.

The copy of the UCI "Optical Recognition of Handwritten Digits" test set (Alpaydin & Kaynak,
1998) that ships inside scikit-learn (`sklearn.datasets.load_digits`): no download, so it
runs in CI and on a fresh machine. Neither paper uses it; it is here because a small MLP of
Linear layers lets *every* method run on one classification task: naive retraining, weight
pruning (paper 000's Algorithm 1 is defined on Linear layers), the finetune ablation and
random relabeling (paper 002 needs class labels). The choices no paper makes for it are
the named constants below, recorded in `Data.info` and in the preset.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import torch
from torch import nn

from ..config import Config, Convergence, TrainConfig
from .base import Data, seeded_split
from .registry import DatasetSpec, register_dataset

N_ROWS = 1797
NUM_CLASSES = 10
N_FEATURES = 64
PIXEL_MAX = 16.0                   # pixels are integers 0..16: divided by 16, so features lie in [0, 1]
TEST_FRACTION = 0.2                # held-out share: round(0.2 · 1797) = 359 test rows, 1,438 training rows
SPLIT_SEED = 0                     # the split is fixed (like MNIST's test set), whatever the trial's seed
N_TRAIN = N_ROWS - math.floor(TEST_FRACTION * N_ROWS + 0.5)
# sha256 of the shipped pixels (uint8) then labels (uint8): a different copy of the data is reported
CONTENT_SHA256 = "87ff0c9e40dc7e2c0e34e7257799c2e3f3aec1a016363bb11cad869ec428a826"


def content_sha256(x: np.ndarray, y: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(x, dtype="<u1").tobytes()
                          + np.ascontiguousarray(y, dtype="<u1").tobytes()).hexdigest()


def load_digits(*, seed: int = 0, test_fraction: float = TEST_FRACTION, split_seed: int = SPLIT_SEED) -> Data:
    """Load digits: x float32 (N, 64) in [0, 1], y int64 (N,); multiclass, 10 classes.

    The test rows are the first round(test_fraction · 1797) of the suite's seeded
    permutation (`data.base.seeded_split` with `split_seed`), the rest train; both in file
    order. `seed` (the trial's) does not move the split. It takes no `data_dir`: the data
    ships with scikit-learn.
    """
    import sklearn  # a dependency; imported where used (importing the suite stays light)
    from sklearn.datasets import load_digits as sklearn_digits

    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) or not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction={test_fraction!r} not allowed; use a number in (0, 1) "
                         f"(default {TEST_FRACTION})")
    x_raw, y_raw = sklearn_digits(return_X_y=True)
    n_test = math.floor(float(test_fraction) * len(y_raw) + 0.5)
    test, train = seeded_split(len(y_raw), n_test, split_seed)
    x = torch.from_numpy((x_raw / PIXEL_MAX).astype(np.float32))
    y = torch.from_numpy(y_raw.astype(np.int64))
    digest = content_sha256(x_raw, y_raw)
    info = {
        "source": "sklearn.datasets.load_digits (UCI Optical Recognition of Handwritten Digits, test set)",
        "sklearn": sklearn.__version__, "content_sha256": digest, "content_as_expected": digest == CONTENT_SHA256,
        "n_rows": len(y_raw), "scaling": f"pixels / {PIXEL_MAX:g}", "test_fraction": float(test_fraction),
        "split_seed": split_seed, "split_rule": "test = first rows of seeded_split's permutation", "seed": seed,
        "sizes": {"train": len(train), "test": len(test)},
        "weight_pruning_thresholds": {"values": list(THRESHOLDS), "rule": THRESHOLD_RULE},
    }
    return Data(name="digits", task="multiclass", x_train=x[train], y_train=y[train], x_test=x[test],
                y_test=y[test], num_classes=NUM_CLASSES, target_index=None, info=info)


def digits_mlp() -> nn.Sequential:
    """64 → 32 → 16 → 10 (ReLU between), logits: Linear layers only, so Algorithm 1 applies."""
    return nn.Sequential(nn.Linear(N_FEATURES, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, NUM_CLASSES))


# Weight pruning's thresholds: no paper gives any for this net. The rule: on the trained control
# model of each of seeds 0-2 (this preset), `weight_pruning.calibrate_thresholds` pools the scores
# |Δ_j w_ij| of Algorithm 1 (Δ on the layer input, n = 10 neighbours) over 50 random training
# points per layer and takes their 0.99 quantile, so that ONE removed point zeroes about 1 % of
# each layer's weights. Measured (seed 0 / 1 / 2): layer 1 0.118 / 0.120 / 0.115, layer 2
# 0.226 / 0.231 / 0.250, layer 3 0.872 / 0.801 / 0.839; the thresholds are their means to 2
# significant digits (tests/test_data_digits.py re-derives seed 0). With the union rule, removing
# 1 / 50 / 100 / 600 points zeroed 10 / 531 / 655 / 962 of the 2,720 weights (seed 0); the
# 0.999 quantile (0.22, 0.40, 1.3) zeroed none for one point, like paper 000's synthetic threshold.
QUANTILE = 0.99
CALIBRATION_POINTS = 50
THRESHOLDS = (0.12, 0.24, 0.84)
THRESHOLD_RULE = (f"per-layer {QUANTILE} quantile of |Δ_j w_ij| over {CALIBRATION_POINTS} random training "
                  "points on the control models of seeds 0-2 (n = 10, Δ on the layer input): one removed "
                  "point zeroes ~1 % of each layer's weights")


def preset() -> Config:
    """Our preset (no paper uses digits): Adam lr 1e-3, batch 32, cross-entropy on the whole
    training set < 0.05, cap 500 epochs. Measured (seeds 0/1/2): 61/60/54 epochs, ~0.6 s,
    test accuracy 96.7/96.7/97.5 %; at 0.02 / 0.01 it takes ~100 / ~120 epochs for no better
    test accuracy (95.8-96.9 %). Relabeling keeps its defaults (AdaDelta lr 1e-3)."""
    return Config(
        dataset="digits",
        train=TrainConfig("adam", 1e-3, 32, Convergence("loss_below", 0.05, 500)),
        methods={"weight_pruning": {"thresholds": THRESHOLDS, "n_neighbors": 10}},
        forget_policy="remove",
    )


SPEC = register_dataset(DatasetSpec(
    name="digits", task="multiclass", input_shape=(N_FEATURES,), num_classes=NUM_CLASSES, n_train=N_TRAIN,
    loader=load_digits, model=digits_mlp, preset=preset, paper=None, order=3,
    description="scikit-learn's digits: 1,797 8x8 handwritten digits (UCI test set), 10 classes, MLP 64-32-16-10",
    provenance="ships inside scikit-learn (sklearn.datasets.load_digits): E. Alpaydin, C. Kaynak, UCI Optical "
               "Recognition of Handwritten Digits (1998); CC BY 4.0; no download",
))
