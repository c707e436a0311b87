"""Find a dataset file locally or download it, and verify it before use.

Order of search for each file (see `fetch`):

1. the local data directory -- the ``data_dir`` argument, else the
   ``UNLEARNING_DATA_DIR`` environment variable -- as
   ``<dir>/<subdir>/<file>`` (the layout of ../shared/datasets) or ``<dir>/<file>``;
2. the download cache (`cache_dir`), filled by ``pooch.retrieve`` from the
   public URL in `unlearning.data.sources`.

Every file is checked against the sha256 of its *decompressed* content,
wherever it came from; a download is in addition checked by pooch against the
md5 of the file as served, before it enters the cache. A mismatch raises
`ChecksumError` and never falls back to another copy silently.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import pooch

from .base import ChecksumError, DataUnavailableError
from .sources import GZIP, RemoteFile

ENV_DATA_DIR = "UNLEARNING_DATA_DIR"
ENV_CACHE_DIR = "UNLEARNING_CACHE_DIR"
ENV_OFFLINE = "UNLEARNING_OFFLINE"   # "1": never download; a file not found locally is unavailable
# Name of the per-user cache folder when not running from a source checkout.
APP_NAME = "unlearning-bench"


@dataclass(frozen=True)
class Fetched:
    """A verified file: where it lies, its verified content and where it was found.

    `content` is the decompressed file (gzip) or the archive member (tar) whose
    sha256 was checked; `origin` is ``"local"`` (the data directory) or
    ``"cache"`` (downloaded now or earlier into `cache_dir`).
    """

    spec: RemoteFile
    path: Path
    content: bytes
    origin: str


def resolve_data_dir(data_dir=None) -> Path | None:
    """The local data directory: `data_dir`, else ``$UNLEARNING_DATA_DIR``, else None.

    An empty environment variable counts as unset. A directory that is named
    but does not exist raises `DataUnavailableError`: a typo should not turn
    silently into a download (or, offline, into a confusing network error).
    """
    if data_dir is not None:
        chosen, origin = data_dir, "the data_dir argument"
    elif os.environ.get(ENV_DATA_DIR):
        chosen, origin = os.environ[ENV_DATA_DIR], f"${ENV_DATA_DIR}"
    else:
        return None
    path = Path(chosen).expanduser().resolve()
    if not path.is_dir():
        raise DataUnavailableError(
            f"data directory {path} (from {origin}) does not exist or is not a directory; "
            f"point {ENV_DATA_DIR} or data_dir= at a folder holding e.g. mnist/ and california_housing/, "
            f"such as {ENV_DATA_DIR}=../shared/datasets, or unset it to download"
        )
    return path


def _source_checkout() -> Path | None:
    """The repository root when running from a source checkout, else None.

    A checkout has ``datasets/README.md`` (and ``pyproject.toml``) next to the
    ``unlearning/`` package; an installed copy in site-packages does not (the
    pyproject check keeps Hugging Face's ``datasets`` package from matching).
    """
    root = Path(__file__).resolve().parents[2]
    if (root / "datasets" / "README.md").is_file() and (root / "pyproject.toml").is_file():
        return root
    return None


def cache_dir() -> Path:
    """Where downloads are kept: ``$UNLEARNING_CACHE_DIR``, else ``<repo>/datasets/cache``
    in a source checkout (git-ignored), else pooch's per-user cache for ``unlearning-bench``."""
    env = os.environ.get(ENV_CACHE_DIR)
    if env:
        return Path(env).expanduser().resolve()
    repo = _source_checkout()
    if repo is not None:
        return repo / "datasets" / "cache"
    return Path(pooch.os_cache(APP_NAME))


def local_candidates(spec: RemoteFile, root: Path) -> list[Path]:
    """The paths a file may have in a local directory, in search order."""
    root = Path(root)
    return [root / spec.subdir / spec.fname, root / spec.fname]


def find_local(spec: RemoteFile, data_dir=None) -> Path | None:
    """The file in the local data directory (unverified), or None if absent/no directory."""
    root = resolve_data_dir(data_dir)
    if root is None:
        return None
    return next((p for p in local_candidates(spec, root) if p.is_file()), None)


def _extract(spec: RemoteFile, raw: bytes) -> bytes:
    """The bytes whose sha256 is `spec.content_sha256`: gunzipped file or tar member."""
    if spec.kind == GZIP:
        return gzip.decompress(raw)
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:*") as archive:
        member = archive.extractfile(spec.member)  # KeyError if absent
        if member is None:
            raise KeyError(f"{spec.member} is not a regular file")
        return member.read()


def verified_content(spec: RemoteFile, path) -> bytes:
    """Read `path`, extract its content and check the content sha256.

    Raises `ChecksumError` naming the file, the expected and the actual hash
    (or why the content could not be read at all: truncated gzip, missing member).
    """
    path = Path(path)
    where = path if spec.member is None else f"{path} (member {spec.member})"
    try:
        content = _extract(spec, path.read_bytes())
    except (OSError, EOFError, zlib.error, tarfile.TarError, KeyError) as err:
        raise ChecksumError(where, "sha256", spec.content_sha256,
                            f"no hash, content unreadable ({type(err).__name__}: {err})") from err
    actual = hashlib.sha256(content).hexdigest()
    if actual != spec.content_sha256:
        raise ChecksumError(where, "sha256", spec.content_sha256, actual)
    return content


_POOCH_MISMATCH = re.compile(r"expected (?:md5:)?(?P<expected>\w+) but got (?P<actual>\w+)")


def _network_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "could not download" (requests for http(s), urllib/ftplib otherwise)."""
    import ftplib
    import urllib.error

    import requests

    return requests.exceptions.RequestException, urllib.error.URLError, ftplib.Error


def _unavailable(spec: RemoteFile, root: Path | None, failures: list[str]) -> DataUnavailableError:
    if root is None:
        where = f"no local data directory is set ({ENV_DATA_DIR} unset, data_dir=None)"
    else:
        looked = " and ".join(str(p) for p in local_candidates(spec, root))
        where = f"it is not in the local data directory {root} (looked for {looked})"
    return DataUnavailableError(
        f"{spec.dataset}: cannot get {spec.fname}: {where}, and {'; '.join(failures)}. "
        f"Set {ENV_DATA_DIR} (or pass data_dir=) to a folder holding {spec.subdir}/{spec.fname}, "
        f"e.g. {ENV_DATA_DIR}=../shared/datasets, or allow downloads with internet access "
        f"(they are cached in {cache_dir() / spec.subdir})."
    )


def _download(spec: RemoteFile, root: Path | None) -> Path:
    """Download `spec` into the cache with pooch (md5-checked before it lands); return its path.

    Each URL is tried in turn; if none can be reached, `DataUnavailableError`.
    A download whose md5 does not match raises `ChecksumError` (pooch has already deleted it).
    """
    failures = []
    for url in spec.urls:
        try:
            return Path(pooch.retrieve(url, known_hash=f"md5:{spec.download_md5}", fname=spec.fname,
                                       path=cache_dir() / spec.subdir, progressbar=False))
        except _network_errors() as err:
            failures.append(f"the download from {url} failed ({type(err).__name__}: {str(err)[:300]})")
        except ValueError as err:
            found = _POOCH_MISMATCH.search(str(err))
            if found is None:
                raise
            raise ChecksumError(f"{spec.fname} downloaded from {url}", "md5",
                                spec.download_md5, found["actual"]) from err
    raise _unavailable(spec, root, failures)


def downloads_allowed() -> bool:
    """False when ``$UNLEARNING_OFFLINE`` is set to 1/true/yes (e.g. tests that must not touch the network)."""
    return os.environ.get(ENV_OFFLINE, "").strip().lower() not in ("1", "true", "yes")


def fetch(spec: RemoteFile, data_dir=None, *, allow_download: bool | None = None) -> Fetched:
    """Get one verified file: from the local data directory first, else from the download cache.

    A local file that fails verification raises `ChecksumError` (no silent
    fallback to a download). A cached/downloaded file that fails the content
    check is deleted from the cache, then `ChecksumError` is raised, so the
    next call downloads it afresh. With ``allow_download=False`` a file absent
    locally or in the cache raises `DataUnavailableError` instead of touching
    the network; the default is `downloads_allowed()`.
    """
    if allow_download is None:
        allow_download = downloads_allowed()
    root = resolve_data_dir(data_dir)
    local = find_local(spec, root) if root is not None else None
    if local is not None:
        return Fetched(spec, local, verified_content(spec, local), "local")
    if not allow_download:
        cached = cache_dir() / spec.subdir / spec.fname
        if cached.is_file():
            return _verified_cached(spec, cached)
        raise _unavailable(spec, root, [f"downloading is disabled (${ENV_OFFLINE} or allow_download=False; "
                                        f"it would come from {', '.join(spec.urls)})"])
    return _verified_cached(spec, _download(spec, root))


def _verified_cached(spec: RemoteFile, path: Path) -> Fetched:
    """Content-check a file in the cache; one that fails is deleted before `ChecksumError` is raised."""
    try:
        content = verified_content(spec, path)
    except ChecksumError:
        path.unlink(missing_ok=True)
        raise
    return Fetched(spec, path, content, "cache")
