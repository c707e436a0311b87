"""Where each real dataset file comes from, and the hashes that vouch for it.

This is the ONE place that names public URLs and checksums (datasets/README.md
repeats them for people). Every file carries two hashes:

* ``download_md5`` -- md5 of the compressed file exactly as the public URL
  serves it. pooch checks it on download, *before* the file enters the cache.
* ``content_sha256`` -- sha256 of the bytes the loader actually parses: the
  decompressed IDX file for MNIST, the ``housing/housing.csv`` member of the
  archive for California. This is the hash checked for *every* file, local
  copies included, so a recompressed copy with identical contents (as the
  shared ``train-images-idx3-ubyte.gz``) is accepted, and a corrupt one is not.

Loaders read ``sources.MNIST[...]`` / ``sources.CALIFORNIA`` at call time, so
tests can monkeypatch them to point at small files they write themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

GZIP = "gzip"  # content = the whole file, gunzipped
TAR_MEMBER = "tar-member"  # content = one member of a (gzipped) tar archive


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable file and how to verify it.

    `subdir` is the folder the file lives in inside a local data directory
    (``<data_dir>/<subdir>/<fname>``; ``<data_dir>/<fname>`` is accepted too).
    `member` names the archive member whose sha256 is `content_sha256` when
    `kind` is TAR_MEMBER.
    """

    dataset: str
    subdir: str
    fname: str
    urls: tuple[str, ...]
    download_md5: str
    content_sha256: str
    kind: str = GZIP
    member: str | None = None

    def __post_init__(self):
        if self.kind not in (GZIP, TAR_MEMBER):
            raise ValueError(f"{self.fname}: unknown kind {self.kind!r}; allowed: {GZIP}, {TAR_MEMBER}")
        if (self.kind == TAR_MEMBER) != (self.member is not None):
            raise ValueError(f"{self.fname}: a member name is needed exactly when kind is {TAR_MEMBER!r}")
        if not self.urls:
            raise ValueError(f"{self.fname}: give at least one URL")


# The mirror torchvision downloads from (yann.lecun.com now often refuses
# plain downloads). md5s: the canonical gz files; sha256s: decompressed IDX.
MNIST_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"


def _mnist(fname: str, md5: str, sha256: str) -> RemoteFile:
    return RemoteFile("mnist", "mnist", fname, (MNIST_MIRROR + fname,), md5, sha256)


MNIST: dict[str, RemoteFile] = {
    "train_images": _mnist("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                           "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    "train_labels": _mnist("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432",
                           "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    "test_images": _mnist("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3",
                          "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    "test_labels": _mnist("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c",
                          "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}

# The Kaggle "california-housing-prices" table (camnugent) that paper 000
# cites, as archived in ageron/data (raw file on the `main` branch).
CALIFORNIA = RemoteFile(
    dataset="california",
    subdir="california_housing",
    fname="housing.tgz",
    urls=("https://github.com/ageron/data/raw/main/housing/housing.tgz",),
    download_md5="6ec6db9fe6680846c6a878e80b640303",
    content_sha256="2364609dc48bec7df3ba9dbb7041478e704ecddcee70ef1827ec3fc49d22c0cc",
    kind=TAR_MEMBER,
    member="housing/housing.csv",
)
