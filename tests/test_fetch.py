"""Finding, downloading and verifying dataset files (unlearning.data.fetch).

No test here reaches the internet: dead URLs point at http://127.0.0.1:9
(nothing listens there), and downloads that must reach a server go to a real
HTTP server the test starts on 127.0.0.1 (`server`), so the whole download
path -- requests, streaming, deadline, partial file, checks -- runs for real.
"""

import gzip
import hashlib
import http.server
import logging
import os
import threading
import time
from dataclasses import replace
from pathlib import Path

import pooch
import pytest
import requests

from unlearning.data import fetch as fetch_mod
from unlearning.data.base import ChecksumError, DataUnavailableError
from unlearning.data.fetch import cache_dir, fetch, find_local, resolve_data_dir
from unlearning.data.sources import TAR_MEMBER, RemoteFile

DEAD_URL = "http://127.0.0.1:9/nothing.gz"
CONTENT = b"IDX-like payload\x00\x01\x02" * 10
TRICKLE_S = 0.2   # the trickling server sends one byte this often


def make_spec(content=CONTENT, gz=None, **changes) -> RemoteFile:
    gz = gzip.compress(content) if gz is None else gz
    spec = RemoteFile("toy", "toy", "toy-file.gz", (DEAD_URL,), hashlib.md5(gz).hexdigest(),
                      hashlib.sha256(content).hexdigest())
    return replace(spec, **changes)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def cache_files(tmp_path) -> list[str]:
    """Every file in the toy cache folder (final, partial or temporary)."""
    folder = tmp_path / "cache" / "toy"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


pytestmark = pytest.mark.usefixtures("offline")


@pytest.fixture
def no_download(monkeypatch):
    """Any network access (pooch or requests) fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("no download may be attempted here")
    monkeypatch.setattr(pooch, "retrieve", refuse)
    monkeypatch.setattr(requests.Session, "request", refuse)


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves `server.routes[path] = (mode, body)`: "whole" sends the body; "drop" sends half of it
    and closes the connection; "trickle" sends one byte every TRICKLE_S (the body bounds its length)."""

    def do_GET(self):
        self.server.requested.append(self.path)
        if self.path not in self.server.routes:
            self.send_error(404)
            return
        mode, body = self.server.routes[self.path]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "whole":
            self.wfile.write(body)
        elif mode == "drop":
            self.wfile.write(body[: len(body) // 2])
        else:
            for i in range(len(body)):
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()
                time.sleep(TRICKLE_S)

    def log_message(self, *args):
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # the client hanging up on a trickle is expected


@pytest.fixture
def server():
    """A real HTTP server on 127.0.0.1; `server.url(path, mode, body)` registers a route and returns its URL."""
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.routes, srv.requested = {}, []

    def url(path, body, mode="whole"):
        srv.routes[path] = (mode, body)
        return f"http://127.0.0.1:{srv.server_address[1]}{path}"

    srv.url = url
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def served_spec(server, served: bytes, content=CONTENT, mode="whole") -> RemoteFile:
    """A toy spec whose only URL serves `served`; its md5 is that of `served`, its sha256 that of `content`."""
    return make_spec(content, gz=served, urls=(server.url("/toy-file.gz", served, mode),))


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


def _make_broken_link(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(path.parent / "nowhere")


@pytest.mark.parametrize("layout", ["toy/toy-file.gz", "toy-file.gz"])
@pytest.mark.parametrize(("make", "what"), [(Path.mkdir, "a directory"), (_make_broken_link, "symbolic link")])
def test_local_path_that_is_not_a_file_is_a_clear_error_not_a_download(tmp_path, layout, make, what, no_download):
    # Fault: a directory where the file should be was reported "not in the local data
    # directory" and fell through to a download.
    bad = tmp_path / "data" / layout
    bad.parent.mkdir(parents=True, exist_ok=True)
    make(bad)
    with pytest.raises(DataUnavailableError) as err:
        fetch(make_spec(), tmp_path / "data")
    message = str(err.value)
    assert str(bad.resolve() if what == "a directory" else bad) in message
    assert what in message and "not a regular file" in message
    assert "--data-dir" in message and "UNLEARNING_DATA_DIR" in message


def test_a_regular_file_in_the_other_layout_wins_over_a_directory(tmp_path, no_download):
    (tmp_path / "toy" / "toy-file.gz").mkdir(parents=True)
    write(tmp_path / "toy-file.gz", gzip.compress(CONTENT))
    got = fetch(make_spec(), tmp_path)
    assert got.origin == "local" and got.path == tmp_path.resolve() / "toy-file.gz"


# --- download and cache --------------------------------------------------------------

def test_download_lands_in_cache_after_md5_check(tmp_path, server):
    spec = served_spec(server, gzip.compress(CONTENT))
    (tmp_path / "empty").mkdir()
    got = fetch(spec, tmp_path / "empty")  # searched first, holds nothing
    assert got.origin == "cache" and got.content == CONTENT
    assert got.path == (tmp_path / "cache" / "toy" / "toy-file.gz").resolve()
    assert server.requested == ["/toy-file.gz"]
    fetch(spec)  # second call: served from the cache, no new transfer
    assert server.requested == ["/toy-file.gz"]
    assert cache_files(tmp_path) == ["toy-file.gz"]


def test_download_with_wrong_md5_never_lands_in_cache(tmp_path, server):
    spec = replace(served_spec(server, gzip.compress(b"tampered")), download_md5=make_spec().download_md5)
    with pytest.raises(ChecksumError) as err:
        fetch(spec)
    message = str(err.value)
    assert "toy-file.gz" in message and spec.download_md5 in message
    assert hashlib.md5(gzip.compress(b"tampered")).hexdigest() in message
    assert cache_files(tmp_path) == []


def test_downloaded_file_failing_content_check_is_removed(tmp_path, server):
    spec = served_spec(server, gzip.compress(b"right md5, wrong content"))
    with pytest.raises(ChecksumError, match=spec.content_sha256):
        fetch(spec)
    assert cache_files(tmp_path) == []


def test_corrupt_cached_file_is_removed_and_the_failure_named_when_it_cannot_be_replaced(tmp_path):
    # A cached file whose content hash does not match is never used: deleted; the URL is dead,
    # so no fresh copy can replace it, and the error says both.
    gz = gzip.compress(b"stale cache entry")
    spec = make_spec(download_md5=hashlib.md5(gz).hexdigest())
    cached = write(tmp_path / "cache" / "toy" / "toy-file.gz", gz)
    with pytest.raises(DataUnavailableError) as err:
        fetch(spec)
    message = str(err.value)
    assert str(cached) in message and hashlib.sha256(b"stale cache entry").hexdigest() in message
    assert "failed verification" in message and DEAD_URL in message
    assert not cached.exists()


def test_corrupt_cached_file_offline_raises_checksum_error_and_is_removed(tmp_path, no_download):
    cached = write(tmp_path / "cache" / "toy" / "toy-file.gz", gzip.compress(b"stale cache entry"))
    with pytest.raises(ChecksumError, match=hashlib.sha256(b"stale cache entry").hexdigest()):
        fetch(make_spec(), allow_download=False)
    assert not cached.exists()


def test_corrupt_cached_file_is_replaced_by_a_verified_download(tmp_path, server, caplog):
    served = gzip.compress(CONTENT)
    spec = served_spec(server, served)
    write(tmp_path / "cache" / "toy" / "toy-file.gz", gzip.compress(b"stale cache entry"))
    with caplog.at_level(logging.WARNING, logger="unlearning.data.fetch"):
        got = fetch(spec)
    assert got.origin == "cache" and got.content == CONTENT and server.requested == ["/toy-file.gz"]
    assert (tmp_path / "cache" / "toy" / "toy-file.gz").read_bytes() == served
    assert "failed verification" in caplog.text and "fresh download" in caplog.text


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


def test_offline_env_uses_a_valid_cached_file_and_never_downloads(tmp_path, server, monkeypatch):
    spec = served_spec(server, gzip.compress(CONTENT))
    monkeypatch.setenv("UNLEARNING_OFFLINE", "1")
    with pytest.raises(DataUnavailableError, match="UNLEARNING_OFFLINE"):
        fetch(spec)                                   # nothing cached yet, and no download
    assert server.requested == []
    monkeypatch.delenv("UNLEARNING_OFFLINE")
    fetch(spec)                                       # online: downloaded into the cache
    monkeypatch.setenv("UNLEARNING_OFFLINE", "true")
    got = fetch(spec)                                 # offline again: the cached copy, verified
    assert got.origin == "cache" and got.content == CONTENT and server.requested == ["/toy-file.gz"]


# --- the cache path, a valid cached copy, partial files ---------------------------------------

@pytest.mark.parametrize("allow_download", [True, False])
def test_directory_at_the_cache_path_is_a_clear_error(tmp_path, allow_download):
    # Fault: a directory where the download would be cached gave a raw IsADirectoryError
    # (pooch hashed the "cached file"). The URL is dead: no download could succeed anyway.
    (tmp_path / "cache" / "toy" / "toy-file.gz").mkdir(parents=True)
    with pytest.raises(DataUnavailableError) as err:
        fetch(make_spec(), allow_download=allow_download)
    message = str(err.value)
    assert str(tmp_path / "cache" / "toy" / "toy-file.gz") in message and "is a directory" in message
    assert "remove it" in message and "UNLEARNING_CACHE_DIR" in message and "--data-dir" in message


def test_cache_folder_that_cannot_be_created_is_a_clear_error(tmp_path):
    write(tmp_path / "cache" / "toy", b"a file where the cache folder should be")
    with pytest.raises(DataUnavailableError, match=r"cannot create the download cache folder .*UNLEARNING_CACHE_DIR"):
        fetch(make_spec())


def test_valid_cached_copy_is_used_without_any_network_access(tmp_path, no_download):
    # Fault: with downloads allowed, pooch compared the cached copy's md5 with the served
    # file's and, as it differed, tried to download -- failing offline although the content
    # sha256 (what the suite verifies) was right.
    spec = make_spec()
    recompressed = gzip.compress(CONTENT, compresslevel=1, mtime=12345)
    assert hashlib.md5(recompressed).hexdigest() != spec.download_md5
    cached = write(tmp_path / "cache" / "toy" / "toy-file.gz", recompressed)
    got = fetch(spec, allow_download=True)
    assert got.origin == "cache" and got.content == CONTENT and got.path == cached
    assert cached.read_bytes() == recompressed


def _partial(tmp_path, age_s: float) -> Path:
    """A partial download as a process killed `age_s` seconds ago would have left it."""
    path = write(tmp_path / "cache" / "toy" / f"{fetch_mod.PARTIAL_PREFIX}toy-file.gz-k1ll3d{fetch_mod.PARTIAL_SUFFIX}",
                 gzip.compress(CONTENT)[:10])
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_stale_partial_download_is_removed_and_the_cached_file_kept(tmp_path, no_download):
    # Fault: a killed download left its temporary file in the cache folder for good.
    served = gzip.compress(CONTENT)
    cached = write(tmp_path / "cache" / "toy" / "toy-file.gz", served)
    stale = _partial(tmp_path, fetch_mod.STALE_PARTIAL_AGE_S + 60)
    got = fetch(make_spec(gz=served))
    assert not stale.exists()
    assert got.content == CONTENT and cached.read_bytes() == served
    assert cache_files(tmp_path) == ["toy-file.gz"]


def test_partial_download_of_a_live_process_is_left_alone(tmp_path, no_download):
    served = gzip.compress(CONTENT)
    write(tmp_path / "cache" / "toy" / "toy-file.gz", served)
    live = _partial(tmp_path, 1)  # written a second ago: another process is downloading
    fetch(make_spec(gz=served))
    assert live.exists()


def test_dropped_connection_leaves_no_partial_or_final_file(tmp_path, server):
    served = gzip.compress(os.urandom(4000))  # incompressible: enough bytes for a half
    spec = served_spec(server, served, mode="drop")
    with pytest.raises(DataUnavailableError, match=r"the download from http://127\.0\.0\.1:\d+/toy-file\.gz failed"):
        fetch(spec)
    assert server.requested == ["/toy-file.gz"] and cache_files(tmp_path) == []


def test_interrupted_download_leaves_no_partial_file(tmp_path, server, monkeypatch):
    real_stream = fetch_mod._stream

    def stream_then_ctrl_c(url, out, deadline_s):
        real_stream(url, out, deadline_s)
        out.flush()
        assert cache_files(tmp_path)  # the partial file was there, holding the bytes
        raise KeyboardInterrupt

    monkeypatch.setattr(fetch_mod, "_stream", stream_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        fetch(served_spec(server, gzip.compress(CONTENT)))
    assert cache_files(tmp_path) == []


# --- the download deadline -------------------------------------------------------------------

def test_trickling_server_is_cut_off_at_the_download_deadline(tmp_path, server, monkeypatch):
    # Fault: only a per-read timeout, so a server sending a byte every 0.2 s kept a download
    # going for as long as it liked. Here it would trickle for 60 * 0.2 = 12 s and then succeed (the
    # bytes are the right ones): only the deadline can make it fail, and the message says it did.
    monkeypatch.setenv("UNLEARNING_DOWNLOAD_TIMEOUT", "1")
    spec = served_spec(server, bytes(60), mode="trickle")
    with pytest.raises(DataUnavailableError) as err:
        fetch(spec)
    message = str(err.value)
    assert spec.urls[0] in message and "aborted after 1 s" in message
    assert "UNLEARNING_DOWNLOAD_TIMEOUT" in message and "--data-dir" in message
    assert cache_files(tmp_path) == []


def test_download_deadline_default_env_and_bad_values(monkeypatch):
    assert fetch_mod.download_deadline() == fetch_mod.DOWNLOAD_DEADLINE_S == 600
    monkeypatch.setenv("UNLEARNING_DOWNLOAD_TIMEOUT", " 2.5 ")
    assert fetch_mod.download_deadline() == 2.5
    for bad in ("soon", "0", "-3", "nan"):
        monkeypatch.setenv("UNLEARNING_DOWNLOAD_TIMEOUT", bad)
        with pytest.raises(ValueError, match=rf"UNLEARNING_DOWNLOAD_TIMEOUT='{bad}'.*> 0"):
            fetch_mod.download_deadline()


# --- messages --------------------------------------------------------------------------------

@pytest.mark.parametrize("allow_download", [True, False])
def test_cannot_get_message_names_cli_option_env_var_and_public_url(tmp_path, allow_download):
    (tmp_path / "local").mkdir()
    for data_dir in (tmp_path / "local", None):
        with pytest.raises(DataUnavailableError) as err:
            fetch(make_spec(), data_dir, allow_download=allow_download)
        message = str(err.value)
        assert "--data-dir" in message and "data_dir=" in message and "UNLEARNING_DATA_DIR" in message
        assert f"the public file {DEAD_URL} is downloaded automatically" in message


def test_missing_data_directory_message_names_cli_option_and_env_var(tmp_path):
    with pytest.raises(DataUnavailableError) as err:
        resolve_data_dir(tmp_path / "typo")
    message = str(err.value)
    assert "--data-dir" in message and "UNLEARNING_DATA_DIR" in message and "downloaded automatically" in message


def test_download_failure_message_is_whole(tmp_path):
    # Fault: the underlying error was cut at 300 characters, mid-word.
    url = "http://127.0.0.1:9/" + "a-rather-long-mirror-path/" * 12 + "toy-file.gz"
    with pytest.raises(DataUnavailableError) as err:
        fetch(make_spec(urls=(url,)))
    failure = str(err.value).split("failed (", 1)[1]
    assert "Connection refused" in failure and url.split("127.0.0.1:9", 1)[1] in failure
