"""Find a dataset file locally or download it, and verify it before use.

Order of search for each file (see `fetch`):

1. the local data directory -- the ``data_dir`` argument (``--data-dir`` on the
   command line), else the ``UNLEARNING_DATA_DIR`` environment variable -- as
   ``<dir>/<subdir>/<file>`` (the layout of ../shared/datasets) or ``<dir>/<file>``.
   Something there that is not a regular file (a directory, a broken link) is an
   error, not a reason to download;
2. the download cache (`cache_dir`): a copy there whose content verifies is used
   as it is, without touching the network;
3. a download from the public URL in `unlearning.data.sources`, unless downloads
   are disabled (``UNLEARNING_OFFLINE=1`` or ``allow_download=False``).

Every file is checked against the sha256 of its *decompressed* content,
wherever it came from. A download is in addition checked against the md5 of
the file as served, and both checks pass before the file enters the cache:
it is streamed into a partial file named ``unlearning-download-*.part`` next to
its final place and moved there in one atomic rename, so the cache never holds
a partial or unverified file. A partial file left by a killed process is
removed by a later call once it is stale (`STALE_PARTIAL_AGE_S`).

A local file that fails verification raises `ChecksumError` and is left alone
(it is the user's). A cached file that fails is deleted; with downloads allowed
it is replaced by a fresh (verified) download, logged as a warning, else
`ChecksumError` is raised.

Each download has, besides the per-read timeout `READ_TIMEOUT_S`, an overall
deadline: `DOWNLOAD_DEADLINE_S` seconds, or ``$UNLEARNING_DOWNLOAD_TIMEOUT``
when set. A download still running then is aborted (`DataUnavailableError`).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import tarfile
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import pooch

from .base import ChecksumError, DataUnavailableError
from .sources import GZIP, RemoteFile

ENV_DATA_DIR = "UNLEARNING_DATA_DIR"
ENV_CACHE_DIR = "UNLEARNING_CACHE_DIR"
ENV_OFFLINE = "UNLEARNING_OFFLINE"   # "1": never download; a file not found locally is unavailable
ENV_DOWNLOAD_TIMEOUT = "UNLEARNING_DOWNLOAD_TIMEOUT"  # seconds one download may take in all
# Name of the per-user cache folder when not running from a source checkout.
APP_NAME = "unlearning-bench"
# How to name a local data directory, for messages: the CLI option and the Python argument.
DATA_DIR_OPTION = "--data-dir"
# Overall deadline of one download. The largest file (MNIST train images, ~10 MB) takes
# seconds on a normal line; 10 minutes still allows ~17 kB/s, and bounds a server that
# trickles bytes (which the per-read timeout alone never stops).
DOWNLOAD_DEADLINE_S = 600.0
# Longest silence tolerated while connecting and between two reads (as pooch's downloader).
READ_TIMEOUT_S = 30.0
# Largest piece read at once; a read returns as soon as *some* bytes have arrived.
CHUNK_BYTES = 1 << 16
# Partial downloads: "<prefix><file name>-<random><suffix>" next to the file's place in the cache.
PARTIAL_PREFIX = "unlearning-download-"
PARTIAL_SUFFIX = ".part"
# A partial file untouched for this long belongs to no live download and is removed. A live
# one is written at least every READ_TIMEOUT_S (connecting and the first header read may take
# twice that), so this margin never removes another process's download in progress.
STALE_PARTIAL_AGE_S = 4 * READ_TIMEOUT_S

log = logging.getLogger(__name__)


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


# --- where files may lie ------------------------------------------------------------------------

def resolve_data_dir(data_dir=None) -> Path | None:
    """The local data directory: `data_dir`, else ``$UNLEARNING_DATA_DIR``, else None.

    An empty environment variable counts as unset. A directory that is named
    but does not exist raises `DataUnavailableError`: a typo should not turn
    silently into a download (or, offline, into a confusing network error).
    """
    if data_dir is not None:
        chosen, origin = data_dir, f"{DATA_DIR_OPTION} / the data_dir argument"
    elif os.environ.get(ENV_DATA_DIR):
        chosen, origin = os.environ[ENV_DATA_DIR], f"${ENV_DATA_DIR}"
    else:
        return None
    path = Path(chosen).expanduser().resolve()
    if not path.is_dir():
        raise DataUnavailableError(
            f"data directory {path} (from {origin}) does not exist or is not a directory; "
            f"point {ENV_DATA_DIR} or {DATA_DIR_OPTION} (data_dir= in Python) at a folder holding e.g. "
            f"mnist/ and california_housing/, such as {ENV_DATA_DIR}=../shared/datasets, or give neither "
            "to have the public files downloaded automatically (datasets/README.md lists their URLs)"
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


def _not_a_file(path: Path) -> str | None:
    """What stands at `path` when it is something other than a regular file; None if nothing is there
    or it is a regular file (or a link to one)."""
    if path.is_file():
        return None
    if path.is_dir():
        return "a directory"
    if path.is_symlink():
        return "a symbolic link to nothing" if not path.exists() else "a link to something that is not a file"
    return "not a regular file" if path.exists() else None


def find_local(spec: RemoteFile, data_dir=None) -> Path | None:
    """The file in the local data directory (unverified), or None if absent/no directory.

    The first regular file among `local_candidates` wins. When none is a file
    but one of them exists as something else (say a folder where a .gz was
    unpacked), `DataUnavailableError` names it: quietly downloading instead
    would hide the mistake.
    """
    root = resolve_data_dir(data_dir)
    if root is None:
        return None
    candidates = local_candidates(spec, root)
    found = next((p for p in candidates if p.is_file()), None)
    if found is not None:
        return found
    for path in candidates:
        what = _not_a_file(path)
        if what is not None:
            raise DataUnavailableError(
                f"{spec.dataset}: {path} in the local data directory is {what}, not a regular file, so "
                f"{spec.fname} cannot be read from it; put the file {spec.fname} itself there (as downloaded, "
                f"not unpacked) or remove it. {_how_to_get(spec)}")
    return None


def cached_path(spec: RemoteFile) -> Path:
    """Where `spec` lies in the download cache; `DataUnavailableError` if something else than a file is there
    (it could neither be read nor replaced by a download)."""
    path = cache_dir() / spec.subdir / spec.fname
    what = _not_a_file(path)
    if what is not None:
        raise DataUnavailableError(
            f"{spec.dataset}: the download cache path {path} is {what}, not a regular file, so {spec.fname} "
            f"can neither be read from it nor downloaded to it; remove it, or set {ENV_CACHE_DIR} to another "
            f"folder. {_how_to_get(spec)}")
    return path


def remove_stale_partials(folder: Path) -> list[Path]:
    """Delete partial downloads in `folder` left by killed processes (older than `STALE_PARTIAL_AGE_S`).

    An interrupted download removes its own partial file; only a process that
    was killed outright leaves one behind. Returns the paths removed.
    """
    if not folder.is_dir():
        return []
    removed = []
    now = time.time()
    for path in folder.glob(f"{PARTIAL_PREFIX}*{PARTIAL_SUFFIX}"):
        try:
            if now - path.stat().st_mtime > STALE_PARTIAL_AGE_S:
                path.unlink()
                removed.append(path)
        except OSError:  # gone meanwhile (another process cleaned it) or not ours to delete: leave it
            continue
    return removed


# --- verification ------------------------------------------------------------------------------

def _extract(spec: RemoteFile, raw: bytes) -> bytes:
    """The bytes whose sha256 is `spec.content_sha256`: gunzipped file or tar member."""
    if spec.kind == GZIP:
        return gzip.decompress(raw)
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:*") as archive:
        member = archive.extractfile(spec.member)  # KeyError if absent
        if member is None:
            raise KeyError(f"{spec.member} is not a regular file")
        return member.read()


def _checked_content(spec: RemoteFile, raw: bytes, name) -> bytes:
    """The content of the file bytes `raw` (called `name` in errors), if its sha256 is the expected one."""
    where = name if spec.member is None else f"{name} (member {spec.member})"
    try:
        content = _extract(spec, raw)
    except (OSError, EOFError, zlib.error, tarfile.TarError, KeyError) as err:
        raise ChecksumError(where, "sha256", spec.content_sha256,
                            f"no hash, content unreadable ({type(err).__name__}: {err})") from err
    actual = hashlib.sha256(content).hexdigest()
    if actual != spec.content_sha256:
        raise ChecksumError(where, "sha256", spec.content_sha256, actual)
    return content


def verified_content(spec: RemoteFile, path) -> bytes:
    """Read `path`, extract its content and check the content sha256.

    Raises `ChecksumError` naming the file, the expected and the actual hash
    (or why the content could not be read at all: truncated gzip, missing member).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ChecksumError(path, "sha256", spec.content_sha256,
                            f"no hash, file unreadable ({type(err).__name__}: {err})") from err
    return _checked_content(spec, raw, path)


# --- messages ----------------------------------------------------------------------------------

def _how_to_get(spec: RemoteFile) -> str:
    """The advice that ends every "cannot get" message: how to point at a local copy, and where the
    file comes from for someone who has none (no ../shared folder)."""
    return (f"To use a local copy, pass {DATA_DIR_OPTION} DIR on the command line (data_dir=DIR in Python) "
            f"or set {ENV_DATA_DIR}=DIR, where DIR holds {spec.subdir}/{spec.fname} (or {spec.fname}), "
            f"e.g. {ENV_DATA_DIR}=../shared/datasets. Without a local copy, the public file "
            f"{' or '.join(spec.urls)} is downloaded automatically (this needs internet access, and "
            f"{ENV_OFFLINE} unset) and kept in {cache_dir() / spec.subdir}.")


def _unavailable(spec: RemoteFile, root: Path | None, failures: list[str]) -> DataUnavailableError:
    if root is None:
        where = f"no local data directory is given ({ENV_DATA_DIR} unset, no {DATA_DIR_OPTION} / data_dir=)"
    else:
        looked = " and ".join(str(p) for p in local_candidates(spec, root))
        where = f"it is not in the local data directory {root} (looked for {looked})"
    return DataUnavailableError(
        f"{spec.dataset}: cannot get {spec.fname}: {where}, and {'; '.join(failures)}. {_how_to_get(spec)}")


# --- downloading -------------------------------------------------------------------------------

class _DeadlineExceeded(DataUnavailableError):
    """A download still running when its overall deadline passed."""

    def __init__(self, url: str, deadline_s: float):
        super().__init__(
            f"the download from {url} was aborted after {deadline_s:g} s, its deadline (the server sends too "
            f"slowly); set {ENV_DOWNLOAD_TIMEOUT}=SECONDS to allow longer (default {DOWNLOAD_DEADLINE_S:g})")


def download_deadline() -> float:
    """Seconds one download may take in all: ``$UNLEARNING_DOWNLOAD_TIMEOUT``, else `DOWNLOAD_DEADLINE_S`."""
    raw = os.environ.get(ENV_DOWNLOAD_TIMEOUT, "").strip()
    if not raw:
        return DOWNLOAD_DEADLINE_S
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0:  # also refuses nan
        raise ValueError(f"{ENV_DOWNLOAD_TIMEOUT}={raw!r}: give the seconds a download may take in all, "
                         f"a number > 0 (default {DOWNLOAD_DEADLINE_S:g}), or unset it")
    return value


def _transfer_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "this download failed": requests' (connecting, HTTP status), urllib3's
    (reading the body: connection dropped, read timeout) and OSError (writing the partial file)."""
    import requests
    import urllib3

    return requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError


def _stream(url: str, out, deadline_s: float) -> None:
    """Write the body of `url` to the binary file `out`; give up after `deadline_s` seconds in all.

    requests' timeout bounds each read only, so a server that sends a byte now
    and then would keep a download going forever: the clock is checked after
    every read. `read1` returns whatever has arrived (a fixed-size read would
    wait for a whole chunk, never looking at the clock); the per-read timeout
    is capped by the deadline, so a silent server cannot outlast it much
    either. The body is decoded as requests (and pooch) would, so the bytes
    are the same as before.
    """
    import requests

    start = time.monotonic()
    with requests.get(url, stream=True, timeout=min(READ_TIMEOUT_S, deadline_s)) as response:
        response.raise_for_status()
        while chunk := response.raw.read1(CHUNK_BYTES, decode_content=True):
            out.write(chunk)
            if time.monotonic() - start > deadline_s:
                raise _DeadlineExceeded(url, deadline_s)


def _check_md5(spec: RemoteFile, url: str, raw: bytes) -> None:
    actual = hashlib.md5(raw).hexdigest()
    if actual != spec.download_md5:
        raise ChecksumError(f"{spec.fname} downloaded from {url}", "md5", spec.download_md5, actual)


def _download_one(spec: RemoteFile, url: str, target: Path, deadline_s: float) -> Fetched:
    """Download `url` to `target`, which it reaches only whole and verified (md5 as served, content sha256).

    The bytes go to a partial file next to `target`, renamed onto it only once
    both checks pass (an atomic replace). The partial file is removed whatever
    happens -- error, deadline, Ctrl-C; only a killed process leaves it, for
    `remove_stale_partials`.
    """
    fd, name = tempfile.mkstemp(prefix=f"{PARTIAL_PREFIX}{spec.fname}-", suffix=PARTIAL_SUFFIX, dir=target.parent)
    partial = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            _stream(url, out, deadline_s)
        raw = partial.read_bytes()
        _check_md5(spec, url, raw)
        content = _checked_content(spec, raw, f"{spec.fname} downloaded from {url}")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return Fetched(spec, target, content, "cache")


def _cache_folder(spec: RemoteFile, target: Path) -> None:
    """Create the cache folder of `target`; a clear `DataUnavailableError` if that is impossible."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataUnavailableError(
            f"{spec.dataset}: cannot create the download cache folder {target.parent} ({type(err).__name__}: "
            f"{err}); set {ENV_CACHE_DIR} to a writable folder. {_how_to_get(spec)}") from err


def _download(spec: RemoteFile, root: Path | None, target: Path, rejected: ChecksumError | None) -> Fetched:
    """Download `spec` into the cache at `target`, trying each URL in turn; return it verified.

    No URL reachable, or each aborted at its deadline: `DataUnavailableError`
    listing every failure. A download whose md5 or content does not match
    raises `ChecksumError` and leaves nothing in the cache. `rejected` is the
    failure of a cached copy (already deleted) that this download replaces.
    """
    deadline_s = download_deadline()
    _cache_folder(spec, target)
    failures = [] if rejected is None else [f"the cached copy was removed as it failed verification ({rejected})"]
    for url in spec.urls:
        try:
            fetched = _download_one(spec, url, target, deadline_s)
        except _DeadlineExceeded as err:
            failures.append(str(err))
        except _transfer_errors() as err:
            failures.append(f"the download from {url} failed ({type(err).__name__}: {err})")
        else:
            if rejected is not None:
                log.warning("%s: replaced the cached copy that failed verification (%s) by a fresh download "
                            "from %s", spec.dataset, rejected, url)
            return fetched
    raise _unavailable(spec, root, failures)


# --- the entry point ---------------------------------------------------------------------------

def downloads_allowed() -> bool:
    """False when ``$UNLEARNING_OFFLINE`` is set to 1/true/yes (e.g. tests that must not touch the network)."""
    return os.environ.get(ENV_OFFLINE, "").strip().lower() not in ("1", "true", "yes")


def _verified_cached(spec: RemoteFile, path: Path) -> Fetched:
    """Content-check a file in the cache; one that fails is deleted before `ChecksumError` is raised."""
    try:
        content = verified_content(spec, path)
    except ChecksumError:
        path.unlink(missing_ok=True)
        raise
    return Fetched(spec, path, content, "cache")


def fetch(spec: RemoteFile, data_dir=None, *, allow_download: bool | None = None) -> Fetched:
    """Get one verified file: from the local data directory first, else the download cache, else a download.

    A local file that fails verification raises `ChecksumError` (no silent
    fallback to a download). A cached file whose content verifies is used
    without any network access (its md5 is not looked at: the content hash is
    what matters). A cached file that fails is deleted, then replaced by a
    fresh, verified download -- or, with downloads disabled, `ChecksumError`
    is raised. With ``allow_download=False`` a file absent locally and from
    the cache raises `DataUnavailableError` instead of touching the network;
    the default is `downloads_allowed()`.
    """
    if allow_download is None:
        allow_download = downloads_allowed()
    root = resolve_data_dir(data_dir)
    local = find_local(spec, root) if root is not None else None
    if local is not None:
        return Fetched(spec, local, verified_content(spec, local), "local")
    target = cached_path(spec)
    remove_stale_partials(target.parent)
    rejected = None
    if target.is_file():
        try:
            return _verified_cached(spec, target)
        except ChecksumError as err:
            if not allow_download:
                raise
            rejected = err
    if not allow_download:
        raise _unavailable(spec, root, [f"downloading is disabled (${ENV_OFFLINE} or allow_download=False)"])
    return _download(spec, root, target, rejected)
