"""MNIST loader: IDX parsing, normalization, subsets, errors; real data when available.

Unit tests write tiny IDX files of their own and point `mnist.FILES` at
them; no test downloads anything (every URL points at http://127.0.0.1:9).
"""

import gzip
import hashlib
import os
from dataclasses import replace

import numpy as np
import pytest
import torch

from unlearning.data import mnist
from unlearning.data.base import ChecksumError, DataUnavailableError
from unlearning.data.fetch import fetch, find_local
from unlearning.data.mnist import PIXEL_MEAN, PIXEL_STD, load_mnist, parse_idx
from unlearning.data.registry import load_dataset

DEAD_URL = "http://127.0.0.1:9/nothing.gz"
# Read before the `offline` fixture clears it for the unit tests.
REAL_DATA_DIR = os.environ.get("UNLEARNING_DATA_DIR") or None


def idx_bytes(arr: np.ndarray, type_code: int = 0x08) -> bytes:
    header = bytes([0, 0, type_code, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(">u1" if type_code == 0x08 else arr.dtype).tobytes()


pytestmark = pytest.mark.usefixtures("offline")


@pytest.fixture
def tiny_mnist(tmp_path, monkeypatch):
    """12 train / 5 test images in <tmp>/data/mnist/, with `mnist.FILES` hashes patched to match."""
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        "train_labels": np.arange(12, dtype=np.uint8) % 10,
        "test_images": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        "test_labels": np.array([9, 8, 7, 6, 5], dtype=np.uint8),
    }
    arrays["train_images"][0] = 0
    arrays["train_images"][1] = 255
    root = tmp_path / "data"
    (root / "mnist").mkdir(parents=True)
    for key, arr in arrays.items():
        spec = mnist.FILES[key]
        raw = idx_bytes(arr)
        gz = gzip.compress(raw)
        (root / "mnist" / spec.fname).write_bytes(gz)
        monkeypatch.setitem(mnist.FILES, key, replace(spec, content_sha256=hashlib.sha256(raw).hexdigest(),
                                                        download_md5=hashlib.md5(gz).hexdigest()))
    return root, arrays


# --- the IDX parser -----------------------------------------------------------------

def test_parse_idx_images_and_labels(tmp_path):
    images = np.arange(2 * 28 * 28, dtype=np.uint32).reshape(2, 28, 28) % 256
    path = tmp_path / "imgs.idx"
    path.write_bytes(idx_bytes(images))
    parsed = parse_idx(path.read_bytes())
    assert parsed.shape == (2, 28, 28) and parsed.dtype == np.uint8
    np.testing.assert_array_equal(parsed, images)
    labels = parse_idx(idx_bytes(np.array([3, 1, 4], dtype=np.uint8)))
    assert labels.tolist() == [3, 1, 4]


def test_parse_idx_bad_magic_is_a_clear_error():
    raw = bytearray(idx_bytes(np.zeros((1, 28, 28), dtype=np.uint8)))
    raw[0:4] = b"\x1f\x8b\x08\x00"  # a gzip header where the IDX magic should be
    with pytest.raises(ValueError, match=r"train-images: bad IDX magic number 0x1f8b0800.*0x00000803"):
        parse_idx(bytes(raw), name="train-images")


@pytest.mark.parametrize("raw, message", [
    (b"\x00\x00", "too short"),
    (b"\x00\x00\x08\x00", "0 dimensions"),
    (b"\x00\x00\x08\x03\x00\x00\x00\x01", "truncated IDX header"),
    (idx_bytes(np.zeros((2, 28, 28), dtype=np.uint8))[:-5], r"shape \(2, 28, 28\).*needs 1584 bytes.*1579"),
])
def test_parse_idx_malformed(raw, message):
    with pytest.raises(ValueError, match=message):
        parse_idx(raw)


# --- the loader on tiny files ---------------------------------------------------------

def test_load_tiny_mnist(tiny_mnist):
    root, arrays = tiny_mnist
    data = load_mnist(data_dir=root)
    assert data.task == "multiclass" and data.num_classes == 10 and data.target_index is None
    assert data.x_train.shape == (12, 1, 28, 28) and data.x_train.dtype == torch.float32
    assert data.y_train.shape == (12,) and data.y_train.dtype == torch.int64
    assert data.x_test.shape == (5, 1, 28, 28) and data.y_test.tolist() == [9, 8, 7, 6, 5]
    expected = (arrays["train_images"].astype(np.float32) / 255 - PIXEL_MEAN) / PIXEL_STD
    np.testing.assert_allclose(data.x_train[:, 0].numpy(), expected, rtol=1e-6, atol=1e-6)
    assert data.x_train[0].max().item() == pytest.approx(-PIXEL_MEAN / PIXEL_STD)
    assert data.x_train[1].min().item() == pytest.approx((1 - PIXEL_MEAN) / PIXEL_STD)
    assert data.info["sizes"] == {"train": 12, "test": 5}
    assert data.info["origin"] == ["local"] and data.info["data_dirs"] == [str((root / "mnist").resolve())]
    assert all(urls == [DEAD_URL] for urls in data.info["source_urls"].values())


def test_registered_under_mnist(tiny_mnist):
    root, _ = tiny_mnist
    assert load_dataset("mnist", data_dir=root).n_train == 12


def test_data_dir_from_env(tiny_mnist, monkeypatch):
    root, _ = tiny_mnist
    monkeypatch.setenv("UNLEARNING_DATA_DIR", str(root))
    assert load_mnist().n_train == 12


def test_subsets_are_seeded(tiny_mnist):
    root, _arrays = tiny_mnist
    a = load_mnist(data_dir=root, train_size=5, test_size=2, seed=3)
    b = load_mnist(data_dir=root, train_size=5, test_size=2, seed=3)
    c = load_mnist(data_dir=root, train_size=5, test_size=2, seed=4)
    assert a.x_train.shape == (5, 1, 28, 28) and a.x_test.shape == (2, 1, 28, 28)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.y_train, c.y_train) or not torch.equal(a.x_train, c.x_train)
    # the subset is a selection of the file's rows, kept in file order
    full = load_mnist(data_dir=root)
    rows = [next(i for i in range(12) if torch.equal(full.x_train[i], x)) for x in a.x_train]
    assert rows == sorted(rows) and len(set(rows)) == 5
    assert a.info["subset"] == {"train_size": 5, "test_size": 2, "seed": 3}


@pytest.mark.parametrize("kwargs, message", [
    ({"train_size": 0}, r"train_size=0 out of range; allowed 1\.\.12"),
    ({"train_size": 13}, r"train_size=13 out of range; allowed 1\.\.12"),
    ({"test_size": 6}, r"test_size=6 out of range; allowed 0\.\.5"),
    ({"train_size": 2.5}, "train_size must be an integer or None, got 2.5"),
])
def test_bad_sizes(tiny_mnist, kwargs, message):
    root, _ = tiny_mnist
    with pytest.raises(ValueError, match=message):
        load_mnist(data_dir=root, **kwargs)


def test_label_count_mismatch(tiny_mnist, monkeypatch):
    root, _ = tiny_mnist
    raw = idx_bytes(np.zeros(11, dtype=np.uint8))
    spec = mnist.FILES["train_labels"]
    (root / "mnist" / spec.fname).write_bytes(gzip.compress(raw))
    monkeypatch.setitem(mnist.FILES, "train_labels", replace(spec, content_sha256=hashlib.sha256(raw).hexdigest()))
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte.gz: 11 labels for 12 images"):
        load_mnist(data_dir=root)


def test_malformed_idx_file_with_matching_hash(tiny_mnist, monkeypatch):
    root, _ = tiny_mnist
    raw = b"\x00\x00\x07\x03" + b"\x00" * 20
    spec = mnist.FILES["test_images"]
    (root / "mnist" / spec.fname).write_bytes(gzip.compress(raw))
    monkeypatch.setitem(mnist.FILES, "test_images", replace(spec, content_sha256=hashlib.sha256(raw).hexdigest()))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte.gz: bad IDX magic number 0x00000703"):
        load_mnist(data_dir=root)


def test_corrupted_file_raises_checksum_error(tiny_mnist):
    root, _ = tiny_mnist
    spec = mnist.FILES["train_images"]
    path = root / "mnist" / spec.fname
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[100] ^= 0xFF
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(ChecksumError) as err:
        load_mnist(data_dir=root)
    message = str(err.value)
    assert spec.fname in message and spec.content_sha256 in message
    assert hashlib.sha256(bytes(raw)).hexdigest() in message


def test_no_files_and_no_network(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataUnavailableError) as err:
        load_mnist(data_dir=tmp_path / "empty")
    message = str(err.value)
    assert "UNLEARNING_DATA_DIR" in message and DEAD_URL in message
    assert str((tmp_path / "empty").resolve()) in message


# --- the real files (only from a local directory; never downloaded here) -------------------

@pytest.fixture(scope="module")
def real_mnist():
    """MNIST from $UNLEARNING_DATA_DIR, or skip with the reason. Never downloads."""
    try:
        for spec in mnist.FILES.values():
            if find_local(spec, REAL_DATA_DIR) is None:
                fetch(spec, REAL_DATA_DIR, allow_download=False)  # raises, with the reason
    except DataUnavailableError as err:
        pytest.skip(f"real MNIST not available locally: {err}")
    with pytest.MonkeyPatch.context() as mp:
        for key, spec in mnist.FILES.items():  # belt and braces: every file is local, nothing may download
            mp.setitem(mnist.FILES, key, replace(spec, urls=(DEAD_URL,)))
        return load_mnist(data_dir=REAL_DATA_DIR)


@pytest.mark.data
def test_real_mnist_shapes_and_labels(real_mnist):
    d = real_mnist
    assert d.x_train.shape == (60000, 1, 28, 28) and d.y_train.shape == (60000,)
    assert d.x_test.shape == (10000, 1, 28, 28) and d.y_test.shape == (10000,)
    counts = torch.bincount(d.y_train, minlength=10)
    assert counts.sum() == 60000 and counts.min() > 5000 and counts.max() < 7000
    assert torch.bincount(d.y_test, minlength=10).min() > 800
    assert d.info["origin"] == ["local"]


@pytest.mark.data
def test_real_mnist_normalization(real_mnist):
    x = real_mnist.x_train
    assert abs(x.mean().item()) < 1e-2 and abs(x.std().item() - 1) < 1e-2
    assert x.min().item() == pytest.approx(-PIXEL_MEAN / PIXEL_STD, abs=1e-5)
    assert x.max().item() == pytest.approx((1 - PIXEL_MEAN) / PIXEL_STD, abs=1e-5)


@pytest.mark.data
def test_shared_recompressed_train_images_pass_by_content_hash(real_mnist):
    spec = mnist.FILES["train_images"]
    path = find_local(spec, REAL_DATA_DIR)
    with open(path, "rb") as f:
        md5 = hashlib.md5(f.read()).hexdigest()
    if md5 == spec.download_md5:
        pytest.skip("this local train-images copy is the canonical gzip; nothing recompressed to check")
    # a different gzip wrapper than the public download, yet accepted: the content is what is checked
    assert len(fetch(spec, REAL_DATA_DIR, allow_download=False).content) == 16 + 60000 * 28 * 28
