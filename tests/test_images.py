"""Decoding errors name the file; the three resize kernels agree closely."""

import numpy as np
import pytest
from PIL import Image

from retinaflow.data.images import RESIZE_KERNELS, iter_batches, preprocess_image
from retinaflow.errors import ImageError


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, size=(30, 40, 3), dtype=np.uint8)
    img = Image.fromarray(base).resize((400, 300), Image.BILINEAR)
    path = tmp_path / "photo.jpg"
    img.save(path, quality=95)
    return path


def test_reference_preprocessing(photo):
    arr = preprocess_image(photo, (128, 160), "pil")
    assert arr.shape == (3, 128, 160) and arr.dtype == np.float32
    assert 0.0 <= arr.min() and arr.max() <= 1.0


def test_kernels_agree(photo):
    arrays = [preprocess_image(photo, (200, 260), k) for k in RESIZE_KERNELS]
    for arr in arrays[1:]:
        assert np.abs(arr - arrays[0]).mean() < 0.02


def test_unknown_kernel(photo):
    with pytest.raises(ValueError, match="lanczos"):
        preprocess_image(photo, (64, 64), "lanczos")


def test_truncated_image_names_the_file(photo, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(photo.read_bytes()[:2000])
    with pytest.raises(ImageError, match="broken.jpg.*does not decode"):
        preprocess_image(broken, (64, 64))


def test_missing_image_names_the_file(tmp_path):
    with pytest.raises(ImageError, match="nothere.jpg.*missing"):
        preprocess_image(tmp_path / "nothere.jpg", (64, 64))


def test_batches_keep_order(photo, tmp_path):
    other = tmp_path / "flat.png"
    Image.new("RGB", (50, 70), (255, 0, 0)).save(other)
    paths = [photo, other, photo, other, photo]
    batches = list(iter_batches(paths, (32, 32), batch_size=2, workers=2))
    assert [b.shape[0] for b in batches] == [2, 2, 1]
    assert np.allclose(batches[0][1], preprocess_image(other, (32, 32)))
    assert np.allclose(batches[2][0], preprocess_image(photo, (32, 32)))
