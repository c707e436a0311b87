"""Finding, downloading and verifying dataset files (unlearning.data.fetch).

No test here reaches the internet: URLs point at http://127.0.0.1:9 (nothing
listens there), and "downloads" that must succeed go through pooch's real
retrieve/verify path with only the HTTP transfer replaced.
"""

import gzip
import hashlib
from dataclasses import replace
from pathlib import Path

import pooch
import pytest

from unlearning.data import fetch as fetch_mod
from unlearning.data.base import ChecksumError, DataUnavailableError
from unlearning.data.fetch import cache_dir, fetch, find_local, resolve_data_dir
from unlearning.data.sources import TAR_MEMBER, RemoteFile

DEAD_URL = "http://127.0.0.1:9/nothing.gz"
CONTENT = b"IDX-like payload\x00\x01\x02" * 10


def make_spec(content=CONTENT, gz=None, **changes) -> RemoteFile:
    gz = gzip.compress(content) if gz is None else gz
    spec = RemoteFile("toy", "toy", "toy-file.gz", (DEAD_URL,), hashlib.md5(gz).hexdigest(),
                      hashlib.sha256(content).hexdigest())
    return replace(spec, **changes)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


pytestmark = pytest.mark.usefixtures("offline")


@pytest.fixture
def no_download(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("pooch.retrieve must not be called here")
    monkeypatch.setattr(pooch, "retrieve", refuse)


@pytest.fixture
def serve(monkeypatch):
    """Make pooch's HTTP downloader 'serve' the given bytes (everything else is real pooch)."""
    served = {}

    def fake_call(self, url, output_file, pooch_obj, check_only=False):
        served.setdefault("urls", []).append(url)
        data = served["bytes"]
        if isinstance(output_file, (str, Path)):
            Path(output_file).write_bytes(data)
        else:
            output_file.write(data)

    monkeypatch.setattr(pooch.HTTPDownloader, "__call__", fake_call)
    return served


# --- resolve_data_dir / cache_dir -------------------------------------------------

def test_resolve_data_dir_argument_beats_env(monkeypatch, tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    monkeypatch.setenv("UNLEARNING_DATA_DIR", str(tmp_path / "b"))
    assert resolve_data_dir(tmp_path / "a") == (tmp_path / "a").resolve()
    assert resolve_data_dir() == (tmp_path / "b").resolve()


def test_resolve_data_dir_unset_or_empty_is_none(monkeypatch):
    assert resolve_data_dir() is None
    monkeypatch.setenv("UNLEARNING_DATA_DIR", "")
    assert resolve_data_dir() is None


def test_resolve_data_dir_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(DataUnavailableError, match=r"does-not-exist.*UNLEARNING_DATA_DIR"):
        resolve_data_dir(tmp_path / "does-not-exist")


def test_cache_dir_env_then_checkout_then_os_cache(monkeypatch, tmp_path):
    assert cache_dir() == (tmp_path / "cache").resolve()
    monkeypatch.delenv("UNLEARNING_CACHE_DIR")
    repo = Path(fetch_mod.__file__).resolve().parents[2]
    assert (repo / "datasets" / "README.md").is_file()  # this test runs from a source checkout
    assert cache_dir() == repo / "datasets" / "cache"
    monkeypatch.setattr(fetch_mod, "_source_checkout", lambda: None)
    assert cache_dir() == Path(pooch.os_cache("unlearning-bench"))


# --- local directory ---------------------------------------------------------------

@pytest.mark.parametrize("layout", ["toy/toy-file.gz", "toy-file.gz"])
def test_local_file_in_either_layout(tmp_path, layout, no_download):
    spec = make_spec()
    write(tmp_path / "data" / layout, gzip.compress(CONTENT))
    got = fetch(spec, tmp_path / "data")
    assert got.content == CONTENT and got.origin == "local"
    assert got.path == tmp_path / "data" / layout


def test_subdir_layout_is_searched_first(tmp_path):
    spec = make_spec()
    write(tmp_path / "toy" / "toy-file.gz", b"x")
    write(tmp_path / "toy-file.gz", b"y")
    assert find_local(spec, tmp_path) == tmp_path.resolve() / "toy" / "toy-file.gz"


def test_local_copy_is_checked_by_content_not_by_download_md5(tmp_path, no_download):
    spec = make_spec()
    recompressed = gzip.compress(CONTENT, compresslevel=1, mtime=12345)
    assert hashlib.md5(recompressed).hexdigest() != spec.download_md5
    write(tmp_path / "toy-file.gz", recompressed)
    assert fetch(spec, tmp_path).content == CONTENT


def test_corrupt_local_file_raises_checksum_error_without_fallback(tmp_path, no_download):
    spec = make_spec()
    bad = b"something else entirely"
    path = write(tmp_path / "toy" / "toy-file.gz", gzip.compress(bad))
    with pytest.raises(ChecksumError) as err:
        fetch(spec, tmp_path)
    message = str(err.value)
    assert "toy-file.gz" in message and spec.content_sha256 in message
    assert hashlib.sha256(bad).hexdigest() in message
    assert err.value.actual == hashlib.sha256(bad).hexdigest()
    assert path.exists()  # a user's local copy is never deleted


def test_truncated_local_gzip_raises_checksum_error(tmp_path, no_download):
    spec = make_spec()
    write(tmp_path / "toy-file.gz", gzip.compress(CONTENT)[:20])
    with pytest.raises(ChecksumError, match=r"toy-file\.gz.*expected " + spec.content_sha256 + ".*unreadable"):
        fetch(spec, tmp_path)


def test_tar_member_content_hash(tmp_path, no_download):
    import io
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("inner/table.csv")
        info.size = len(CONTENT)
        tar.addfile(info, io.BytesIO(CONTENT))
    spec = make_spec(gz=buf.getvalue(), fname="t.tgz", kind=TAR_MEMBER, member="inner/table.csv")
    write(tmp_path / "t.tgz", buf.getvalue())
    assert fetch(spec, tmp_path).content == CONTENT
    with pytest.raises(ChecksumError, match=r"member other.csv.*unreadable.*KeyError"):
        fetch(replace(spec, member="other.csv"), tmp_path)


# --- download and cache --------------------------------------------------------------

def test_download_lands_in_cache_after_md5_check(tmp_path, serve):
    spec = make_spec()
    serve["bytes"] = gzip.compress(CONTENT)
    spec = replace(spec, download_md5=hashlib.md5(serve["bytes"]).hexdigest())
    (tmp_path / "empty").mkdir()
    got = fetch(spec, tmp_path / "empty")  # searched first, holds nothing
    assert got.origin == "cache" and got.content == CONTENT
    assert got.path == (tmp_path / "cache" / "toy" / "toy-file.gz").resolve()
    assert serve["urls"] == [DEAD_URL]
    fetch(spec)  # second call: served from the cache, no new transfer
    assert serve["urls"] == [DEAD_URL]


def test_download_with_wrong_md5_never_lands_in_cache(tmp_path, serve):
    spec = make_spec()
    serve["bytes"] = gzip.compress(b"tampered")
    with pytest.raises(ChecksumError) as err:
        fetch(spec)
    message = str(err.value)
    assert "toy-file.gz" in message and spec.download_md5 in message
    assert hashlib.md5(serve["bytes"]).hexdigest() in message
    assert not (tmp_path / "cache" / "toy" / "toy-file.gz").exists()


def test_downloaded_file_failing_content_check_is_removed(tmp_path, serve):
    served = gzip.compress(b"right md5, wrong content")
    spec = make_spec(download_md5=hashlib.md5(served).hexdigest())
    serve["bytes"] = served
    with pytest.raises(ChecksumError, match=spec.content_sha256):
        fetch(spec)
    assert not (tmp_path / "cache" / "toy" / "toy-file.gz").exists()


def test_cached_file_failing_content_check_is_removed(tmp_path):
    # A file already in the cache whose md5 matches (so real pooch returns it
    # without a download -- the URL is dead, a download would raise
    # DataUnavailableError) but whose content hash does not: deleted, then raised.
    gz = gzip.compress(b"stale cache entry")
    spec = make_spec(download_md5=hashlib.md5(gz).hexdigest())
    cached = write(tmp_path / "cache" / "toy" / "toy-file.gz", gz)
    with pytest.raises(ChecksumError) as err:
        fetch(spec)
    assert str(cached) in str(err.value) and hashlib.sha256(b"stale cache entry").hexdigest() in str(err.value)
    assert not cached.exists()


def test_no_data_and_no_network_names_env_var_url_and_directory(tmp_path):
    spec = make_spec()
    searched = tmp_path / "local"
    searched.mkdir()
    with pytest.raises(DataUnavailableError) as err:
        fetch(spec, searched)
    message = str(err.value)
    assert "UNLEARNING_DATA_DIR" in message and DEAD_URL in message
    assert str(searched.resolve()) in message and "toy/toy-file.gz" in message
    assert not list((tmp_path / "cache").rglob("*.gz"))


def test_no_data_dir_and_no_network(tmp_path):
    with pytest.raises(DataUnavailableError, match=r"UNLEARNING_DATA_DIR unset.*127\.0\.0\.1:9"):
        fetch(make_spec())


def test_allow_download_false_never_touches_the_network(tmp_path, no_download):
    with pytest.raises(DataUnavailableError, match=r"downloading is disabled.*127.0.0.1:9"):
        fetch(make_spec(), tmp_path, allow_download=False)


def test_offline_env_uses_a_valid_cached_file_and_never_downloads(tmp_path, serve, monkeypatch):
    serve["bytes"] = gzip.compress(CONTENT)
    spec = make_spec(gz=serve["bytes"])
    monkeypatch.setenv("UNLEARNING_OFFLINE", "1")
    with pytest.raises(DataUnavailableError, match="UNLEARNING_OFFLINE"):
        fetch(spec)                                   # nothing cached yet, and no download
    assert "urls" not in serve
    monkeypatch.delenv("UNLEARNING_OFFLINE")
    fetch(spec)                                       # online: downloaded into the cache
    monkeypatch.setenv("UNLEARNING_OFFLINE", "true")
    got = fetch(spec)                                 # offline again: the cached copy, verified
    assert got.origin == "cache" and got.content == CONTENT and serve["urls"] == [DEAD_URL]
