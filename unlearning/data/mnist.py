"""MNIST (LeCun, Cortes & Burges): 60,000 train / 10,000 test 28x28 digits.

Files come through `unlearning.data.fetch` (local directory first, then the
torchvision mirror), verified by the sha256 of their decompressed IDX bytes.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..config import Config, Convergence, TrainConfig
from .base import Data, seeded_split
from .fetch import fetch
from .registry import DatasetSpec, register_dataset
from .sources import RemoteFile

# The mirror torchvision downloads from (yann.lecun.com now often refuses
# plain downloads). md5s: the canonical gz files; sha256s: decompressed IDX.
MNIST_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"


def _mnist(fname: str, md5: str, sha256: str) -> RemoteFile:
    return RemoteFile("mnist", "mnist", fname, (MNIST_MIRROR + fname,), md5, sha256)


FILES: dict[str, RemoteFile] = {
    "train_images": _mnist("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                           "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    "train_labels": _mnist("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432",
                           "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    "test_images": _mnist("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3",
                          "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    "test_labels": _mnist("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c",
                          "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}

# Normalization of the PyTorch MNIST example (mean/std of the training pixels
# scaled to [0, 1]); the papers do not state theirs, and this is the usual one.
PIXEL_MEAN = 0.1307
PIXEL_STD = 0.3081
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10

# IDX type codes (third magic byte) -> numpy big-endian dtype.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def parse_idx(raw: bytes, *, name: str = "IDX data") -> np.ndarray:
    """Parse the bytes of one (decompressed) IDX file into an array of its shape.

    Format: magic ``00 00 <type> <ndim>``, then `ndim` big-endian uint32
    sizes, then the values. Raises ValueError naming `name` and what is wrong
    when the magic, the header or the length does not fit.
    """
    if len(raw) < 4:
        raise ValueError(f"{name}: {len(raw)} bytes is too short for an IDX header (needs at least 4)")
    zero, type_code, ndim = int.from_bytes(raw[:2], "big"), raw[2], raw[3]
    if zero != 0 or type_code not in _IDX_DTYPES:
        types = ", ".join(f"{c:02x}" for c in _IDX_DTYPES)
        raise ValueError(f"{name}: bad IDX magic number 0x{raw[:4].hex()}; expected 0x0000TTNN with type TT "
                         f"in {types} (MNIST images: 0x00000803, labels: 0x00000801)")
    if ndim == 0:
        raise ValueError(f"{name}: IDX header declares 0 dimensions; expected at least 1")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{name}: truncated IDX header: {len(raw)} bytes, the {ndim} dimension sizes need {header}")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[type_code])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{name}: IDX header declares shape {shape} of {dtype.name}, which needs {expected} bytes; "
                         f"the file has {len(raw)}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _images(raw: bytes, name: str) -> np.ndarray:
    arr = parse_idx(raw, name=name)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"{name}: expected uint8 images of shape (N, 28, 28), got {arr.dtype} {arr.shape}")
    return arr


def _labels(raw: bytes, name: str, n_images: int) -> np.ndarray:
    arr = parse_idx(raw, name=name)
    if arr.dtype != np.uint8 or arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D uint8 label vector, got {arr.dtype} {arr.shape}")
    if len(arr) != n_images:
        raise ValueError(f"{name}: {len(arr)} labels for {n_images} images; the counts must match")
    if arr.size and arr.max() >= NUM_CLASSES:
        raise ValueError(f"{name}: label {int(arr.max())} out of range; allowed 0..{NUM_CLASSES - 1}")
    return arr


def normalize_images(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28): scaled to [0, 1], then (x - PIXEL_MEAN) / PIXEL_STD."""
    x = torch.from_numpy(images.astype(np.float32)).div_(255.0)
    return x.sub_(PIXEL_MEAN).div_(PIXEL_STD).unsqueeze(1)


def _check_size(size, available: int, what: str, minimum: int) -> int:
    if size is None:
        return available
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise ValueError(f"{what} must be an integer or None, got {size!r}")
    if not minimum <= size <= available:
        raise ValueError(f"{what}={size} out of range; allowed {minimum}..{available} (None = all {available})")
    return int(size)


def load_mnist(*, data_dir=None, train_size=None, test_size=None, seed=0) -> Data:
    """Load MNIST as normalized float32 images (N, 1, 28, 28) and int64 labels (N,).

    `data_dir` (else ``$UNLEARNING_DATA_DIR``) is searched for
    ``mnist/<file>.gz`` or ``<file>.gz`` before any download. `train_size` /
    `test_size` take a seeded random subset (default: all 60,000 / 10,000).
    """
    files = {key: fetch(spec, data_dir) for key, spec in FILES.items()}
    split = {}
    for part, size, minimum in (("train", train_size, 1), ("test", test_size, 0)):
        img, lab = files[f"{part}_images"], files[f"{part}_labels"]
        images = _images(img.content, img.spec.fname)
        labels = _labels(lab.content, lab.spec.fname, len(images))
        keep = seeded_split(len(images), _check_size(size, len(images), f"{part}_size", minimum), seed)[0]
        split[part] = (normalize_images(images[keep.numpy()]), torch.from_numpy(labels[keep.numpy()].astype(np.int64)))
    info = {
        "source_urls": {f.spec.fname: list(f.spec.urls) for f in files.values()},
        "files": {f.spec.fname: str(f.path) for f in files.values()},
        "origin": sorted({f.origin for f in files.values()}),
        "data_dirs": sorted({str(f.path.parent) for f in files.values()}),
        "sizes": {"train": len(split["train"][1]), "test": len(split["test"][1])},
        "subset": {"train_size": train_size, "test_size": test_size, "seed": seed},
        "normalization": {"mean": PIXEL_MEAN, "std": PIXEL_STD},
    }
    return Data(name="mnist", task="multiclass", x_train=split["train"][0], y_train=split["train"][1],
                x_test=split["test"][0], y_test=split["test"][1], num_classes=NUM_CLASSES,
                target_index=None, info=info)


def mnist_convnet() -> nn.Sequential:
    """The ConvNet of the PyTorch MNIST example (paper 002's 2-conv net), returning logits.

    conv 3x3 → 32, conv 3x3 → 64, max-pool 2, dropout 0.25, fc 9216 → 128,
    dropout 0.5, fc 128 → 10. The example returns log-softmax and uses NLL;
    logits with cross-entropy are the same loss.
    """
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, 1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, 1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(),
        nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(128, 10),
    )


def preset() -> Config:
    """Paper 002 builds on the PyTorch MNIST example: AdaDelta lr 1.0, StepLR gamma 0.7,
    batch 64, 14 epochs. Fine-tuning (the warm-start ablation) gets one epoch; random
    relabeling keeps its defaults (`RelabelConfig`: AdaDelta lr 1e-3)."""
    train = TrainConfig("adadelta", 1.0, 64, Convergence("fixed_epochs", 0.0, 14), lr_decay=0.7)
    return Config(dataset="mnist", train=train,
                  finetune=TrainConfig("adadelta", 1.0, 64, Convergence("fixed_epochs", 0.0, 1), lr_decay=0.7),
                  forget_policy="remove")


# Predicting the 60,000 training images for every record costs minutes on a CPU: S and d
# are measured on the test set, and the training accuracy is not computed.
SPEC = register_dataset(DatasetSpec(
    name="mnist", task="multiclass", input_shape=(1, *IMAGE_SHAPE), num_classes=NUM_CLASSES, n_train=60_000,
    loader=load_mnist, model=mnist_convnet, preset=preset, paper="002", order=2,
    description="MNIST handwritten digits: 60,000 train / 10,000 test 28x28 images, 10 classes",
    provenance=f"LeCun, Cortes & Burges; the mirror torchvision uses: {MNIST_MIRROR} (see datasets/README.md)",
    eval_sets=("test", "forget", "total"), d_on="test",
))
