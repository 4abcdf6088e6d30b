"""Decoding errors name the file; the resize kernels agree closely; `mlperf` is MLPerf's exactly."""

import numpy as np
import pytest
import torch
from PIL import Image

from retinaflow.data.images import (
    RESIZE_KERNELS,
    decode_on_host,
    iter_batches,
    load_image,
    load_image_cv2,
    preprocess_image,
)
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
        preprocess_image(broken, (64, 64), "pil")


def test_missing_image_names_the_file(tmp_path):
    with pytest.raises(ImageError, match="nothere.jpg.*missing"):
        preprocess_image(tmp_path / "nothere.jpg", (64, 64), "pil")


def test_batches_keep_order(photo, tmp_path):
    other = tmp_path / "flat.png"
    Image.new("RGB", (50, 70), (255, 0, 0)).save(other)
    paths = [photo, other, photo, other, photo]
    batches = list(iter_batches(paths, (32, 32), "pil", batch_size=2, workers=2))
    assert [b.shape[0] for b in batches] == [2, 2, 1]
    assert np.allclose(batches[0][1], preprocess_image(other, (32, 32), "pil"))
    assert np.allclose(batches[2][0], preprocess_image(photo, (32, 32), "pil"))


# MLPerf's reference, step by step as MLCommons' inference repo writes it
# (vision/classification_and_detection/python: openimages.py, dataset.py `maybe_resize` and
# `pre_process_openimages_retinanet`, need_transpose for NCHW), independent of images.py.
def mlperf_reference(path, height, width):
    import cv2

    img = cv2.imread(str(path))
    img = np.array(img, dtype=np.float32)
    if len(img.shape) < 3 or img.shape[2] != 3:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    img = cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)
    img /= 255.0
    return img.transpose([2, 0, 1])


def textured(height, width, seed=1):
    """Smooth structure plus pixel noise: sharp detail for the resize, realistic JPEG size."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(max(2, height // 50), max(2, width // 50), 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(base).resize((width, height), Image.BILINEAR))
    noise = rng.integers(-40, 41, size=(height, width, 3))
    return np.clip(smooth.astype(np.int16) + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def large_jpeg(tmp_path_factory):
    path = tmp_path_factory.mktemp("large") / "large.jpg"
    Image.fromarray(textured(3000, 4000)).save(path, quality=92)
    return path


@pytest.mark.parametrize(
    "size",
    [(800, 800), (1200, 1200), (320, 512), (1500, 2000), (3001, 4003)],
    ids=["800-mlperf", "1200", "non-square", "exact-half", "upscale"],
)
def test_mlperf_kernel_equals_reference_on_a_large_jpeg(large_jpeg, size):
    arr = preprocess_image(large_jpeg, size, "mlperf")
    assert arr.shape == (3, *size) and arr.dtype == np.float32 and arr.flags.c_contiguous
    assert np.array_equal(arr, mlperf_reference(large_jpeg, *size))


def _save_variant(kind, path):
    pixels = textured(300, 420, seed=2)
    if kind == "exif-rotated":
        exif = Image.Exif()
        exif[0x0112] = 6  # rotate 90 on display: both decoders must turn it to 300 wide
        Image.fromarray(pixels).save(path, quality=90, exif=exif)
    elif kind == "gray":
        Image.fromarray(pixels[:, :, 0]).save(path, quality=90)
    elif kind == "cmyk":
        Image.fromarray(pixels).convert("CMYK").save(path, quality=90)
    elif kind == "rgba-png":
        alpha = np.random.default_rng(3).integers(0, 256, size=pixels.shape[:2], dtype=np.uint8)
        Image.fromarray(np.dstack([pixels, alpha])).save(path)
    elif kind == "gray16-png":
        Image.fromarray(pixels[:, :, 0].astype(np.uint16) * 257).save(path)
    elif kind == "tiny-upscaled":
        Image.fromarray(pixels[:7, :5]).save(path, quality=90)
    else:
        raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind", ["exif-rotated", "gray", "cmyk", "rgba-png", "gray16-png", "tiny-upscaled"]
)
@pytest.mark.parametrize("size", [(800, 800), (96, 160)], ids=["800", "96x160"])
def test_mlperf_kernel_equals_reference_on_odd_files(kind, size, tmp_path):
    path = tmp_path / ("image.png" if kind.endswith("png") else "image.jpg")
    _save_variant(kind, path)
    assert np.array_equal(preprocess_image(path, size, "mlperf"), mlperf_reference(path, *size))


def test_mlperf_kernel_applies_exif_orientation_like_pil(tmp_path):
    path = tmp_path / "image.jpg"
    _save_variant("exif-rotated", path)
    opencv, pil = load_image_cv2(path), np.asarray(load_image(path))
    assert opencv.shape == pil.shape == (420, 300, 3)  # stored 420 wide, shown 300 wide
    assert np.abs(opencv.astype(np.int16) - pil).mean() < 0.5  # the same pixels, not mirrored


def test_mlperf_kernel_in_batches(photo):
    batch = next(iter_batches([photo, photo], (100, 90), "mlperf", batch_size=2))
    assert np.array_equal(batch[1], mlperf_reference(photo, 100, 90))


def test_mlperf_kernel_undecodable_file_names_it(tmp_path):
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image at all" * 100)
    with pytest.raises(ImageError, match="junk.jpg.*does not decode"):
        preprocess_image(junk, (64, 64), "mlperf")
    with pytest.raises(ImageError, match="gone.jpg.*missing"):
        preprocess_image(tmp_path / "gone.jpg", (64, 64), "mlperf")


def _jpeg_variants(tmp_path):
    """JPEGs that exercise the decoder's paths: every chroma subsampling, progressive,
    restart markers, odd sizes (a chroma block cut at the edge), a 1x1, grayscale, the eight
    EXIF orientations, CMYK (PIL's path), a large photo-like file, and a PNG."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:301, 0:457]
    base = np.stack([(x / 2) % 256, (y / 3) % 256, ((x + y) / 5) % 256], -1)
    pixels = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
    variants = {}
    for sub in (0, 1, 2):
        for progressive in (False, True):
            variants[f"sub{sub}-prog{progressive}"] = (
                pixels,
                dict(subsampling=sub, progressive=progressive, quality=85),
            )
    variants["restart-markers"] = (pixels, dict(restart_marker_blocks=3, quality=90))
    variants["odd-7x5"] = (pixels[:5, :7], dict(subsampling=2))
    variants["one-pixel"] = (pixels[:1, :1], {})
    variants["gray"] = (pixels[:, :, 0], dict(quality=90))
    variants["quality-100"] = (pixels, dict(quality=100, subsampling=0))
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        variants[f"exif-{orientation}"] = (pixels[:, :200], dict(exif=exif, quality=90))
    big = np.asarray(Image.fromarray(pixels).resize((4000, 3000), Image.BILINEAR))
    variants["4000x3000"] = (big, dict(quality=92))
    paths = []
    for name, (array, options) in variants.items():
        paths.append(tmp_path / f"{name}.jpg")
        Image.fromarray(array).save(paths[-1], **options)
    paths.append(tmp_path / "cmyk.jpg")
    Image.fromarray(pixels).convert("CMYK").save(paths[-1], quality=90)
    paths.append(tmp_path / "image.png")
    Image.fromarray(pixels).save(paths[-1])
    return paths


def test_host_decode_gives_pils_pixels_exactly(tmp_path):
    """decode_on_host (torchvision's CPU decoder for RGB and grayscale JPEGs, which lets go of
    the GIL) must give load_image's (PIL's) pixels bit for bit: the `torch` kernel and decode
    gpu-resize rest on it. Both are libjpeg-turbo; a difference in upsampling, IDCT or the
    EXIF turn would show here."""
    for path in _jpeg_variants(tmp_path):
        expected = np.asarray(load_image(path)).transpose(2, 0, 1)
        got = decode_on_host(path)
        assert got.dtype == torch.uint8 and got.is_contiguous(), path.name
        assert got.shape == expected.shape, path.name
        assert np.array_equal(got.numpy(), expected), path.name


def test_host_decode_errors_name_the_file(photo, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(photo.read_bytes()[:2000])
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"\xff\xd8" + b"not a jpeg" * 50)
    for bad in (broken, junk):
        with pytest.raises(ImageError, match=f"{bad.name}.*does not decode"):
            decode_on_host(bad)
        with pytest.raises(ImageError, match=f"{bad.name}.*does not decode"):
            preprocess_image(bad, (64, 64), "torch")
    with pytest.raises(ImageError, match="gone.jpg.*missing"):
        decode_on_host(tmp_path / "gone.jpg")
