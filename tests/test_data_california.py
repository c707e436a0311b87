"""California housing loader: parsing, encoding, fill, scaling, target, split; real data when available.

Unit tests write a tiny housing.csv inside a .tgz of their own and point
`california.FILE` at it; nothing is downloaded (the URL is http://127.0.0.1:9).
"""

import hashlib
import io
import math
import os
import re
import tarfile
from dataclasses import replace

import numpy as np
import pytest
import torch

from unlearning.data import california
from unlearning.data.base import ChecksumError, DataUnavailableError
from unlearning.data.california import FEATURES, OCEAN_PROXIMITY_CODES, load_california
from unlearning.data.fetch import fetch, find_local
from unlearning.data.registry import load_dataset

DEAD_URL = "http://127.0.0.1:9/nothing.gz"
REAL_DATA_DIR = os.environ.get("UNLEARNING_DATA_DIR") or None

HEADER = ("longitude,latitude,housing_median_age,total_rooms,total_bedrooms,population,households,"
          "median_income,median_house_value,ocean_proximity")
# 8 rows: three share the maximum value 500001 (rows 2, 4, 7), row 1 lacks
# total_bedrooms, all five ocean_proximity categories occur.
ROWS = [
    "-122.0,37.0,10,100,20,50,10,1.0,100000,NEAR BAY",
    "-121.0,38.0,20,200,,60,20,2.0,200000,INLAND",
    "-120.0,36.0,30,300,40,70,30,3.0,500001,<1H OCEAN",
    "-119.0,35.0,40,400,60,80,40,4.0,300000,NEAR OCEAN",
    "-118.0,34.0,50,500,80,90,50,5.0,500001,ISLAND",
    "-117.0,33.0,52,600,100,100,60,6.0,14999,INLAND",
    "-116.0,32.0,1,700,30,110,70,7.0,250000,<1H OCEAN",
    "-115.0,41.0,5,800,50,120,80,8.0,500001,NEAR BAY",
]
TARGET_ROW = 2  # first of the tied maxima


def tgz_bytes(csv_text: str, member: str = "housing/housing.csv") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        raw = csv_text.encode()
        info = tarfile.TarInfo(member)
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
    return buf.getvalue()


def install(root, monkeypatch, rows=ROWS, header=HEADER):
    """Write housing.tgz under <root>/california_housing and patch the hashes to match it."""
    text = "\n".join([header, *rows]) + "\n"
    archive = tgz_bytes(text)
    (root / "california_housing").mkdir(parents=True, exist_ok=True)
    (root / "california_housing" / "housing.tgz").write_bytes(archive)
    monkeypatch.setattr(california, "FILE", replace(
        california.FILE, content_sha256=hashlib.sha256(text.encode()).hexdigest(),
        download_md5=hashlib.md5(archive).hexdigest()))
    return root


pytestmark = pytest.mark.usefixtures("offline")


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    return install(tmp_path / "data", monkeypatch)


# --- parsing and preprocessing -------------------------------------------------------------

def test_shapes_dtypes_and_task(tiny):
    d = load_california(data_dir=tiny)
    assert d.task == "regression" and d.num_classes is None and d.name == "california"
    assert d.x_train.shape == (8, 9) and d.x_train.dtype == torch.float32
    assert d.y_train.shape == (8,) and d.y_train.dtype == torch.float32
    assert d.x_test.shape == (0, 9) and d.y_test.shape == (0,)
    assert d.info["features"] == list(FEATURES) and d.info["label"] == "median_house_value"
    assert d.info["origin"] == "local"


def test_minmax_scaling_over_all_rows(tiny):
    d = load_california(data_dir=tiny)
    x, y = d.x_train.numpy(), d.y_train.numpy()
    assert x.min() == 0 and x.max() == 1 and np.allclose(x.min(0), 0) and np.allclose(x.max(0), 1)
    np.testing.assert_allclose(x[:, 0], (np.arange(8) * 1.0) / 7, rtol=1e-6)  # longitude -122..-115
    np.testing.assert_allclose(y, (np.array([100000, 200000, 500001, 300000, 500001, 14999, 250000, 500001])
                                   - 14999) / (500001 - 14999), rtol=1e-6)
    assert d.info["label_min"] == 14999 and d.info["label_max"] == 500001


def test_ocean_proximity_alphabetical_codes(tiny):
    assert OCEAN_PROXIMITY_CODES == {name: i for i, name in enumerate(sorted(OCEAN_PROXIMITY_CODES))}
    d = load_california(data_dir=tiny)
    codes = d.x_train[:, FEATURES.index("ocean_proximity")] * 4  # scaled from 0..4
    assert codes.round().tolist() == [3, 1, 0, 4, 2, 1, 0, 3]


def test_missing_total_bedrooms_filled_with_median(tiny):
    d = load_california(data_dir=tiny)
    fill = d.info["missing_fill"]
    assert fill["column"] == "total_bedrooms" and fill["count"] == 1
    assert fill["value"] == 50.0  # median of 20, 30, 40, 50, 60, 80, 100
    j = FEATURES.index("total_bedrooms")
    assert d.x_train[1, j].item() == pytest.approx((50 - 20) / (100 - 20))
    assert not torch.isnan(d.x_train).any()


def test_target_is_first_of_tied_maxima(tiny):
    d = load_california(data_dir=tiny)
    assert d.target_index == TARGET_ROW
    assert d.info["target_csv_row"] == TARGET_ROW and d.info["target_ties"] == 3
    assert d.y_train[d.target_index].item() == 1.0


def test_registered_under_california(tiny):
    assert load_dataset("california", data_dir=tiny).target_index == TARGET_ROW


# --- the optional split --------------------------------------------------------------------

def test_split_keeps_target_in_train_and_is_seeded(tiny):
    full = load_california(data_dir=tiny)
    splits = {seed: load_california(data_dir=tiny, test_fraction=0.25, seed=seed) for seed in range(6)}
    for _seed, d in splits.items():
        assert d.x_train.shape == (6, 9) and d.x_test.shape == (2, 9) and d.info["sizes"] == {"train": 6, "test": 2}
        assert torch.equal(d.x_train[d.target_index], full.x_train[TARGET_ROW])
        assert d.y_train[d.target_index].item() == 1.0
        rows = torch.cat([d.x_train, d.x_test])  # train and test partition the rows
        assert sorted(map(tuple, rows.tolist())) == sorted(map(tuple, full.x_train.tolist()))
    again = load_california(data_dir=tiny, test_fraction=0.25, seed=3)
    assert torch.equal(again.x_test, splits[3].x_test) and again.target_index == splits[3].target_index
    assert len({tuple(d.y_test.tolist()) for d in splits.values()}) > 1  # the seed matters


def test_split_can_hold_out_everything_but_the_target(tiny):
    d = load_california(data_dir=tiny, test_fraction=0.95)
    assert d.n_train == 1 and d.target_index == 0 and d.y_train.tolist() == [1.0]


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, math.nan, "0.2", True, None])
def test_bad_test_fraction(tiny, bad):
    with pytest.raises(ValueError, match=re.escape(f"test_fraction={bad!r} not allowed") + r".*0\.0.*\(0, 1\)"):
        load_california(data_dir=tiny, test_fraction=bad)


# --- errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("rows, header, message", [
    (ROWS, HEADER.replace("population", "pop"), "unexpected header"),
    ([*ROWS[:2], "-120.0,36.0,30,300,40,70,30,3.0,500001,ON THE MOON"], HEADER,
     "data row 2: unknown ocean_proximity 'ON THE MOON'"),
    ([*ROWS[:3], "-119.0,35.0,,400,60,80,40,4.0,300000,NEAR OCEAN"], HEADER,
     "data row 3, column housing_median_age: '' is not a finite number"),
    ([*ROWS[:1], "-119.0,35.0,40,400,60,80"], HEADER, "data row 1 has 6 fields; expected 10"),
])
def test_malformed_csv(tmp_path, monkeypatch, rows, header, message):
    root = install(tmp_path / "data", monkeypatch, rows=rows, header=header)
    with pytest.raises(ValueError, match=message):
        load_california(data_dir=root)


def test_corrupted_archive_raises_checksum_error(tiny):
    expected = california.FILE.content_sha256
    tampered = "\n".join([HEADER, *ROWS[:-1]]) + "\n"
    (tiny / "california_housing" / "housing.tgz").write_bytes(tgz_bytes(tampered))
    with pytest.raises(ChecksumError) as err:
        load_california(data_dir=tiny)
    message = str(err.value)
    assert "housing.tgz" in message and "housing/housing.csv" in message and expected in message
    assert hashlib.sha256(tampered.encode()).hexdigest() in message


def test_flat_layout_and_env_var(tiny, monkeypatch):
    flat = tiny.parent / "flat"
    flat.mkdir()
    (flat / "housing.tgz").write_bytes((tiny / "california_housing" / "housing.tgz").read_bytes())
    monkeypatch.setenv("UNLEARNING_DATA_DIR", str(flat))
    assert load_california().info["file"] == str((flat / "housing.tgz").resolve())


def test_no_file_and_no_network(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataUnavailableError) as err:
        load_california(data_dir=tmp_path / "empty")
    message = str(err.value)
    assert "UNLEARNING_DATA_DIR" in message and DEAD_URL in message
    assert str((tmp_path / "empty").resolve()) in message and "california_housing/housing.tgz" in message


# --- the real file (only from a local directory; never downloaded here) -----------------------

@pytest.fixture(scope="module")
def real_california():
    """California housing from $UNLEARNING_DATA_DIR, or skip with the reason. Never downloads."""
    spec = california.FILE
    try:
        if find_local(spec, REAL_DATA_DIR) is None:
            fetch(spec, REAL_DATA_DIR, allow_download=False)  # raises, with the reason
    except DataUnavailableError as err:
        pytest.skip(f"real California housing not available locally: {err}")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(california, "FILE", replace(spec, urls=(DEAD_URL,)))  # the file is local: no download
        return load_california(data_dir=REAL_DATA_DIR)


@pytest.mark.data
def test_real_california_table(real_california):
    d = real_california
    assert d.x_train.shape == (20640, 9) and d.y_train.shape == (20640,)
    assert d.x_test.shape == (0, 9)
    assert d.x_train.min().item() == 0.0 and d.x_train.max().item() == 1.0
    assert d.y_train.min().item() == 0.0 and d.y_train.max().item() == 1.0
    assert d.info["missing_fill"]["count"] == 207 and d.info["missing_fill"]["value"] == 435.0
    assert d.info["label_max"] == 500001.0


@pytest.mark.data
def test_real_california_target_tie_break(real_california):
    d = real_california
    assert d.info["target_ties"] == 965
    assert d.target_index == d.info["target_csv_row"] == 89  # the first of the 965 rows at the cap
    assert int((d.y_train == 1.0).sum()) == 965 and int(torch.argmax(d.y_train)) == 89


@pytest.mark.data
def test_real_california_held_out_split(real_california):
    d = load_california(data_dir=REAL_DATA_DIR, test_fraction=0.2, seed=1)
    assert d.n_train == 16512 and d.x_test.shape == (4128, 9)
    assert torch.equal(d.x_train[d.target_index], real_california.x_train[89])
