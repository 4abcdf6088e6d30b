"""Weights fetching against a real local HTTP server standing in for zenodo: md5, resume,
cache, local path, offline message."""

import hashlib
import socket

import pytest

from retinaflow.data.download import ChecksumError, OfflineError
from retinaflow.data.weights import PUBLISHED, fetch_weights, published_weights
from retinaflow.errors import CheckpointError

from .configs import as_configured
from .http_server import FileServer, md5_of

WEIGHTS = hashlib.sha256(b"weights").digest() * 40_000  # 1.28 MB of stand-in weights
PATH = "/record/6617981/files/resnext50_32x4d_fpn.pth"


@pytest.fixture
def zenodo():
    with FileServer() as srv:
        srv.files[PATH] = WEIGHTS
        yield srv


def test_published_table_matches_the_reference():
    pth = published_weights()
    assert pth.url == "https://zenodo.org/record/6617981/files/resnext50_32x4d_fpn.pth"
    assert pth.md5 == "a55f6bec3464f605ce8d686da8ac1533"
    assert PUBLISHED["retinanet_model_10.zip"].md5 == "2037c152a6be18e371ebec654314f7e0"
    assert PUBLISHED["resnext50_32x4d_fpn.onnx"].md5 == "4544f4e56e0a4684215831cc937ea45c"
    with pytest.raises(CheckpointError, match="known are"):
        published_weights("resnet34.pth")


def test_download_resumes_and_verifies(zenodo, tmp_path):
    zenodo.drop_after[PATH] = 500_000
    dest = tmp_path / "models" / "mlperf" / "weights.pt"
    fetch_weights(dest, url=zenodo.url + PATH, md5=md5_of(WEIGHTS))
    assert dest.read_bytes() == WEIGHTS
    assert zenodo.requests[-1] == (PATH, "bytes=500000-")


def test_cache_dir_downloads_once(zenodo, tmp_path):
    cache = tmp_path / "cache"
    for run in ("run1", "run2"):
        dest = tmp_path / run / "weights.pt"
        fetch_weights(dest, url=zenodo.url + PATH, md5=md5_of(WEIGHTS), cache_dir=cache)
        assert dest.read_bytes() == WEIGHTS
    assert zenodo.count(PATH) == 1
    assert (cache / "resnext50_32x4d_fpn.pth").read_bytes() == WEIGHTS


def test_wrong_md5_moves_aside_and_names_both_sums(zenodo, tmp_path):
    dest = tmp_path / "weights.pt"
    published = published_weights().md5
    with pytest.raises(ChecksumError) as err:
        fetch_weights(dest, url=zenodo.url + PATH, md5=published)
    assert published in str(err.value) and md5_of(WEIGHTS) in str(err.value)
    assert "set setting url to a good copy" in str(err.value)
    assert "config key model.weights.url" in as_configured(err.value, "model.weights")
    assert not dest.exists()
    assert (tmp_path / "weights.pt.bad-md5").read_bytes() == WEIGHTS


def test_local_path_is_copied_and_the_original_never_moved(tmp_path):
    mine = tmp_path / "my.pth"
    mine.write_bytes(WEIGHTS)
    dest = fetch_weights(tmp_path / "out.pt", path=mine, md5=md5_of(WEIGHTS))
    assert dest.read_bytes() == WEIGHTS
    with pytest.raises(ChecksumError):
        fetch_weights(tmp_path / "other.pt", path=mine, md5="0" * 32)
    assert mine.read_bytes() == WEIGHTS


def test_offline_names_url_and_the_key_that_takes_a_copy(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}{PATH}"
    with pytest.raises(OfflineError) as err:
        fetch_weights(tmp_path / "w.pt", url=url, md5=published_weights().md5)
    assert url in str(err.value) and "set setting url to its path" in str(err.value)
    assert "config key model.weights.url" in as_configured(err.value, "model.weights")
