"""How a downloadable dataset file is described: its URLs and the hashes that vouch for it.

Each dataset module (`unlearning.data.<name>`) declares its own `RemoteFile`s
(datasets/README.md repeats them for people). Every file carries two hashes:

* ``download_md5`` -- md5 of the compressed file exactly as the public URL
  serves it. pooch checks it on download, *before* the file enters the cache.
* ``content_sha256`` -- sha256 of the bytes the loader actually parses: the
  decompressed IDX file for MNIST, the ``housing/housing.csv`` member of the
  archive for California. This is the hash checked for *every* file, local
  copies included, so a recompressed copy with identical contents (as the
  shared ``train-images-idx3-ubyte.gz``) is accepted, and a corrupt one is not.

Loaders read their module's ``FILES`` at call time, so tests can monkeypatch
them to point at small files they write themselves.
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
