"""The downloader against a real HTTP server on 127.0.0.1: resume, retries, md5, decode checks,
offline errors, and the parallel image fetcher."""

import os
import socket
import time

import pytest

from retinaflow.data.download import (
    ChecksumError,
    DownloadError,
    OfflineError,
    decode_check,
    download_file,
    fetch_images,
    part_path,
)
from retinaflow.errors import ImageError

from .configs import REAL, as_configured
from .http_server import FileServer, make_jpeg, md5_of

# the library takes the config's download settings, with no defaults of its own
TIMEOUT = REAL["dataset"]["download"]["timeout_s"]
CONFIGURED = {"retries": REAL["dataset"]["download"]["retries"], "timeout": TIMEOUT}
BLOB = bytes(range(256)) * 4096  # 1 MiB


@pytest.fixture
def server():
    with FileServer() as srv:
        srv.files["/blob.bin"] = BLOB
        yield srv


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_download_then_cached(server, tmp_path):
    dest = tmp_path / "sub" / "blob.bin"
    download_file(server.url + "/blob.bin", dest, setting="k", **CONFIGURED, md5=md5_of(BLOB))
    assert dest.read_bytes() == BLOB
    assert not part_path(dest).exists()
    download_file(server.url + "/blob.bin", dest, setting="k", **CONFIGURED, md5=md5_of(BLOB))
    assert server.count("/blob.bin") == 1  # complete and verified: not fetched again


def test_cut_connection_resumes_with_range(server, tmp_path):
    server.drop_after["/blob.bin"] = 300_000
    dest = tmp_path / "blob.bin"
    download_file(server.url + "/blob.bin", dest, setting="k", **CONFIGURED, backoff=0.01)
    assert dest.read_bytes() == BLOB
    assert server.requests == [("/blob.bin", None), ("/blob.bin", "bytes=300000-")]


def test_interrupted_download_never_looks_complete(server, tmp_path):
    server.drop_after["/blob.bin"] = 100_000
    dest = tmp_path / "blob.bin"
    with pytest.raises(DownloadError, match="partial file .* is kept") as err:
        download_file(
            server.url + "/blob.bin", dest, setting="urls.boxes", retries=0, timeout=TIMEOUT
        )
    assert "set setting urls.boxes to its path" in str(err.value)  # the library's name
    assert "config key dataset.urls.boxes" in as_configured(err.value, "dataset")
    assert not dest.exists()
    assert part_path(dest).stat().st_size == 100_000
    download_file(server.url + "/blob.bin", dest, setting="k", **CONFIGURED)  # a rerun resumes
    assert dest.read_bytes() == BLOB
    assert server.requests[-1] == ("/blob.bin", "bytes=100000-")


def test_server_without_range_support_restarts(server, tmp_path):
    server.ignore_range = True
    server.drop_after["/blob.bin"] = 50_000
    dest = tmp_path / "blob.bin"
    download_file(server.url + "/blob.bin", dest, setting="k", **CONFIGURED, backoff=0.01)
    assert dest.read_bytes() == BLOB


def test_part_already_whole_is_finished_not_refetched(server, tmp_path):
    dest = tmp_path / "blob.bin"
    part_path(dest).write_bytes(BLOB)  # a run died between the last byte and the rename
    download_file(server.url + "/blob.bin", dest, setting="k", **CONFIGURED, md5=md5_of(BLOB))
    assert dest.read_bytes() == BLOB
    assert server.requests == [("/blob.bin", f"bytes={len(BLOB)}-")]


def test_404_fails_at_once_naming_url_and_key(server, tmp_path):
    with pytest.raises(DownloadError) as err:
        download_file(
            server.url + "/missing.csv", tmp_path / "x", setting="urls.boxes", **CONFIGURED
        )
    message = as_configured(err.value, "dataset")
    assert "HTTP 404" in message and "/missing.csv" in message
    assert "check the URL in config key dataset.urls.boxes" in message
    assert server.count("/missing.csv") == 1


def test_5xx_is_retried(server, tmp_path):
    server.fail_status["/blob.bin"] = 503
    with pytest.raises(DownloadError, match="after 3 attempts"):
        download_file(
            server.url + "/blob.bin",
            tmp_path / "b",
            setting="k",
            retries=2,
            timeout=TIMEOUT,
            backoff=0,
        )
    assert server.count("/blob.bin") == 3


def test_wrong_md5_moves_file_aside_with_both_sums(server, tmp_path):
    dest = tmp_path / "w.pth"
    wrong = "0" * 32
    with pytest.raises(ChecksumError) as err:
        download_file(server.url + "/blob.bin", dest, setting="path", **CONFIGURED, md5=wrong)
    assert md5_of(BLOB) in str(err.value) and wrong in str(err.value)
    assert not dest.exists() and not part_path(dest).exists()
    assert (tmp_path / "w.pth.bad-md5").read_bytes() == BLOB


def test_existing_file_with_wrong_md5_is_moved_aside(server, tmp_path):
    dest = tmp_path / "w.pth"
    dest.write_bytes(b"stale")
    with pytest.raises(ChecksumError):
        download_file(server.url + "/blob.bin", dest, setting="k", **CONFIGURED, md5=md5_of(BLOB))
    assert (tmp_path / "w.pth.bad-md5").read_bytes() == b"stale"
    download_file(server.url + "/blob.bin", dest, setting="k", **CONFIGURED, md5=md5_of(BLOB))
    assert dest.read_bytes() == BLOB


def test_offline_fails_fast_naming_url_and_key(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}/validation-annotations-bbox.csv"
    start = time.monotonic()
    with pytest.raises(OfflineError) as err:
        download_file(url, tmp_path / "x.csv", setting="urls.boxes", retries=4, timeout=TIMEOUT)
    assert time.monotonic() - start < 2
    assert url in str(err.value) and "dataset.urls.boxes" in as_configured(err.value, "dataset")
    assert not (tmp_path / "x.csv").exists()


def test_local_path_is_copied_and_checked(tmp_path):
    src = tmp_path / "by-hand.csv"
    src.write_bytes(b"a,b\n")
    dest = download_file(
        str(src), tmp_path / "out" / "x.csv", setting="k", **CONFIGURED, md5=md5_of(b"a,b\n")
    )
    assert dest.read_bytes() == b"a,b\n"
    with pytest.raises(DownloadError, match="nowhere.csv does not exist: fix setting k"):
        download_file(str(tmp_path / "nowhere.csv"), tmp_path / "y", setting="k", **CONFIGURED)


def test_unsupported_scheme_fails_at_once(tmp_path):
    with pytest.raises(DownloadError) as err:
        download_file(
            "s3://open-images-dataset/x", tmp_path / "x", setting="urls.images", **CONFIGURED
        )
    message = as_configured(err.value, "calibration.fetch")
    assert message.startswith("config key calibration.fetch.urls.images: s3://open-images-")


def test_decode_check_catches_truncated_and_garbage(tmp_path):
    good = make_jpeg(64, 48, seed=1)
    (tmp_path / "good.jpg").write_bytes(good)
    assert decode_check(tmp_path / "good.jpg") == (64, 48)
    (tmp_path / "cut.jpg").write_bytes(good[: len(good) // 2])
    with pytest.raises(ImageError, match="cut.jpg does not decode"):
        decode_check(tmp_path / "cut.jpg")
    (tmp_path / "junk.jpg").write_bytes(b"<html>rate limited</html>")
    with pytest.raises(ImageError, match="junk.jpg does not decode"):
        decode_check(tmp_path / "junk.jpg")


def _image_server(srv: FileServer, n: int) -> list[str]:
    names = [f"{i:016x}" for i in range(n)]
    for i, name in enumerate(names):
        srv.files[f"/validation/{name}.jpg"] = make_jpeg(40 + i % 5, 30 + i % 7, seed=i)
    return names


def test_fetch_images_with_faults(tmp_path, capsys):
    with FileServer() as srv:
        names = _image_server(srv, 24)
        cut, corrupt, missing = names[3], names[7], names[11]
        srv.drop_after[f"/validation/{cut}.jpg"] = 200
        good = srv.files[f"/validation/{corrupt}.jpg"]
        srv.corrupt_once[f"/validation/{corrupt}.jpg"] = good[: len(good) - 300]  # truncated
        del srv.files[f"/validation/{missing}.jpg"]
        items = [(f"{srv.url}/validation/{n}.jpg", tmp_path / f"{n}.jpg") for n in names]
        with pytest.raises(DownloadError) as err:
            fetch_images(items, setting="urls.images", **CONFIGURED, workers=4, backoff=0.01)
        assert f"{missing}.jpg" in str(err.value) and "HTTP 404" in str(err.value)
        assert "1 of 24 images could not be fetched" in str(err.value)
        # each image's own message keeps its setting, resolved with the whole error's
        assert "config key dataset.urls.images" in as_configured(err.value, "dataset")
        for n in names:
            if n != missing:
                decode_check(tmp_path / f"{n}.jpg")
        assert srv.count(f"/validation/{corrupt}.jpg") == 2  # corrupt, then fetched again
        assert srv.count(f"/validation/{cut}.jpg") == 2  # cut, then resumed
        assert not list(tmp_path.glob("*.part"))
        assert "23/24 images" in capsys.readouterr().err

        srv.files[f"/validation/{missing}.jpg"] = make_jpeg(40, 30, seed=99)
        before = len(srv.requests)
        summary = fetch_images(items, setting="k", **CONFIGURED, workers=4)
        assert (summary.downloaded, summary.present, summary.failed) == (1, 23, [])
        assert len(srv.requests) == before + 1  # only the missing one was fetched


def test_fetch_images_replaces_corrupt_file_on_disk(tmp_path):
    with FileServer() as srv:
        names = _image_server(srv, 3)
        items = [(f"{srv.url}/validation/{n}.jpg", tmp_path / f"{n}.jpg") for n in names]
        fetch_images(items, setting="k", **CONFIGURED, workers=2)
        victim = tmp_path / f"{names[1]}.jpg"
        victim.write_bytes(victim.read_bytes()[:100])
        summary = fetch_images(items, setting="k", **CONFIGURED, workers=2)
        assert (summary.replaced, summary.present) == (1, 2)
        decode_check(victim)


def test_fetch_images_offline_stops_at_once(tmp_path):
    base = f"http://127.0.0.1:{_closed_port()}/validation"
    items = [(f"{base}/{i:016x}.jpg", tmp_path / f"{i}.jpg") for i in range(50)]
    start = time.monotonic()
    with pytest.raises(OfflineError, match="setting urls.images") as err:
        fetch_images(items, setting="urls.images", **CONFIGURED, workers=4)
    assert "config key dataset.urls.images" in as_configured(err.value, "dataset")
    assert time.monotonic() - start < 5
    assert not os.listdir(tmp_path)
