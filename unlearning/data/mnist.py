"""MNIST (LeCun, Cortes & Burges): 60,000 train / 10,000 test 28x28 digits.

Files come through `unlearning.data.fetch` (local directory first, then the
torchvision mirror), verified by the sha256 of their decompressed IDX bytes.
"""

from __future__ import annotations

import numpy as np
import torch

from . import sources
from .base import Data, register_loader
from .fetch import fetch

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
        raise ValueError(f"{name}: bad IDX magic number 0x{raw[:4].hex()}; expected 0x0000TTNN with type TT "
                         f"in {', '.join(f'{c:02x}' for c in _IDX_DTYPES)} (MNIST images: 0x00000803, labels: 0x00000801)")
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


def subset_indices(n: int, size: int, seed: int) -> torch.Tensor:
    """`size` of `n` indices drawn without replacement with a torch.Generator seeded by `seed`.

    Returned sorted, so a subset keeps the file order; `size == n` returns all
    indices unshuffled. Train and test draws each use their own generator
    seeded with `seed`, so one split's size does not change the other's subset.
    """
    if size == n:
        return torch.arange(n)
    gen = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=gen)[:size].sort().values


@register_loader("mnist", task="multiclass", input_shape=(1, 28, 28), num_classes=10)
def load_mnist(*, data_dir=None, train_size=None, test_size=None, seed=0) -> Data:
    """Load MNIST as normalized float32 images (N, 1, 28, 28) and int64 labels (N,).

    `data_dir` (else ``$UNLEARNING_DATA_DIR``) is searched for
    ``mnist/<file>.gz`` or ``<file>.gz`` before any download. `train_size` /
    `test_size` take a seeded random subset (default: all 60,000 / 10,000).
    """
    files = {key: fetch(spec, data_dir) for key, spec in sources.MNIST.items()}
    split = {}
    for part, size, minimum in (("train", train_size, 1), ("test", test_size, 0)):
        img, lab = files[f"{part}_images"], files[f"{part}_labels"]
        images = _images(img.content, img.spec.fname)
        labels = _labels(lab.content, lab.spec.fname, len(images))
        keep = subset_indices(len(images), _check_size(size, len(images), f"{part}_size", minimum), seed)
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
