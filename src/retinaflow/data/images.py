"""Image decoding and the reference preprocessing: RGB, stretch to the model's input size (no
aspect ratio kept, no padding), scale to [0,1], CHW float32. Normalisation is inside the model.

`iter_batches` preprocesses on the CPU in a thread pool (every kernel); `iter_device_batches`
is the `torch` kernel with the JPEG decode and the resize on a device (nvJPEG through
torchvision.io.decode_jpeg and torch's interpolate on the GPU: the decoder "gpu").

The `mlperf` kernel is MLCommons' reference (inference repo, vision/classification_and_detection/
python: openimages.py decodes with `cv2.imread(src)`; dataset.py `maybe_resize` and
`pre_process_openimages_retinanet` convert to float32, BGR->RGB, `cv2.resize` INTER_LINEAR, then
`/= 255.0`, HWC->CHW); `pil` and `cv2` decode with PIL, `torch` with PIL's decoder too
(libjpeg-turbo) but called through torchvision for JPEGs (decode_on_host: the same pixels)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ..errors import ImageError, ref

RESIZE_KERNELS = ("pil", "cv2", "torch", "mlperf")
# where images are decoded and resized: cpu both on the host; gpu both on the GPU (nvJPEG);
# gpu-resize decoded on the host (libjpeg-turbo's pixels), resized on the GPU
DECODERS = ("cpu", "gpu", "gpu-resize")


def load_image(path: str | os.PathLike) -> Image.Image:
    """Decode an image fully and convert it to RGB, or raise an ImageError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"image {path} is missing: rerun the dataset rule to fetch it again")
    try:
        with Image.open(path) as img:
            img.load()
            # EXIF orientation applied, as cv2.imread does: the size matches the json's
            return ImageOps.exif_transpose(img).convert("RGB")
    except (OSError, SyntaxError, ValueError) as err:
        size_kb = path.stat().st_size / 1024
        raise ImageError(
            f"image {path} does not decode ({err}; {size_kb:.0f} KB on disk): "
            "delete it and rerun the dataset rule"
        ) from err


def load_image_cv2(path: str | os.PathLike) -> np.ndarray:
    """Decode an image as MLPerf's reference does, `cv2.imread(path)` (IMREAD_COLOR: EXIF
    orientation applied, gray replicated to 3 channels, alpha dropped, 16-bit scaled to 8-bit),
    and return it as RGB HWC uint8, or raise an ImageError naming the file.

    Unlike PIL, OpenCV decodes a truncated JPEG without an error (the missing rows are gray), as
    the reference does; the dataset rule's decode check (download.decode_check) rejects such files.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"image {path} is missing: rerun the dataset rule to fetch it again")
    import cv2

    bgr = cv2.imread(str(path))
    if bgr is None:
        size_kb = path.stat().st_size / 1024
        raise ImageError(
            f"image {path} does not decode (OpenCV imread read nothing; {size_kb:.0f} KB on "
            "disk): delete it and rerun the dataset rule"
        )
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)  # a channel swap, exact


def decode_image(path: str | os.PathLike, kernel: str) -> Image.Image | np.ndarray:
    """Decode an image the way `kernel` expects: OpenCV for `mlperf` (MLPerf's reference decode,
    an RGB uint8 array), decode_on_host for `torch` (PIL's pixels without holding the GIL, an
    RGB uint8 array), PIL for the others (an RGB image). `resize_image` takes either."""
    if kernel == "mlperf":
        return load_image_cv2(path)
    if kernel == "torch":
        return decode_on_host(path).permute(1, 2, 0).numpy()
    return load_image(path)


def resize_image(img: Image.Image | np.ndarray, size: tuple[int, int], kernel: str) -> np.ndarray:
    """Stretch an RGB image (PIL, or HWC uint8 array) to size (height, width) bilinearly.

    Returns CHW float32 in [0, 1]. `kernel` picks the implementation: PIL's bilinear
    (antialiased when shrinking), OpenCV's INTER_LINEAR on uint8 (fixed point), torch's bilinear
    interpolate (align_corners=False, as torchvision's transform), or `mlperf`, MLPerf's
    reference: the uint8 pixels to float32 first, OpenCV's INTER_LINEAR on float32 (not
    antialiased), then divided by 255 in float32. For `mlperf` to equal the reference bit for
    bit, the pixels must come from OpenCV's decoder: `preprocess_image` does that
    (`load_image_cv2`); a PIL-decoded image agrees where the two decoders do (libjpeg-turbo
    both, but CMYK JPEGs differ by one level).
    """
    height, width = size
    if kernel == "mlperf":
        import cv2

        # MLPerf swaps BGR->RGB after the float32 cast and before the resize: a channel swap
        # commutes with both (the resize treats the channels alike), so RGB here is the same.
        pixels = np.asarray(img)
        if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
            raise ValueError(
                f"resize kernel mlperf needs RGB uint8 HWC, got {pixels.dtype} {pixels.shape}"
            )
        arr = cv2.resize(pixels.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
        arr /= np.float32(255)  # MLPerf's `img /= 255.0` on float32: a float32 division
        return np.ascontiguousarray(arr.transpose(2, 0, 1))
    if kernel == "pil":
        arr = np.asarray(img.resize((width, height), Image.BILINEAR))
        return np.divide(arr.transpose(2, 0, 1), np.float32(255), dtype=np.float32, order="C")
    if kernel == "cv2":
        import cv2

        arr = cv2.resize(np.asarray(img), (width, height), interpolation=cv2.INTER_LINEAR)
        return np.ascontiguousarray(arr.transpose(2, 0, 1), dtype=np.float32) / 255.0
    if kernel == "torch":
        import torch

        chw = torch.from_numpy(np.asarray(img).transpose(2, 0, 1).astype(np.float32) / 255.0)
        out = torch.nn.functional.interpolate(
            chw[None], size=(height, width), mode="bilinear", align_corners=False
        )
        return out[0].numpy()
    raise ValueError(f"resize kernel must be one of {RESIZE_KERNELS}, got {kernel!r}")


def preprocess_image(path, size: tuple[int, int], kernel: str) -> np.ndarray:
    """Decode and resize one image file: the model's input without the batch dimension."""
    if kernel not in RESIZE_KERNELS:
        raise ValueError(f"resize kernel must be one of {RESIZE_KERNELS}, got {kernel!r}")
    return resize_image(decode_image(path, kernel), size, kernel)


def iter_batches(
    paths: Sequence[str | os.PathLike],
    size: tuple[int, int],
    kernel: str,
    batch_size: int,
    workers: int = 2,
) -> Iterator[np.ndarray]:
    """Yield NCHW float32 batches in order. Images decode in a thread pool (PIL and OpenCV
    release the GIL) while the consumer works on the previous batch."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        window: list[list] = []
        for start in range(0, len(paths), batch_size):
            chunk = paths[start : start + batch_size]
            window.append([pool.submit(preprocess_image, p, size, kernel) for p in chunk])
            if len(window) > 1:
                yield np.stack([f.result() for f in window.pop(0)])
        for batch in window:
            yield np.stack([f.result() for f in batch])


# --- the torch kernel on a device: decode with torchvision.io.decode_jpeg, resize there ------

EXIF_ORIENTATION = 0x0112
JPEG_MAGIC = b"\xff\xd8"


def image_header(data: bytes) -> tuple[str | None, int]:
    """(PIL's mode, the EXIF orientation 1-8) of an encoded image, from its headers only;
    (None, 1) where PIL cannot read them."""
    import io

    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.mode, int(img.getexif().get(EXIF_ORIENTATION, 1))
    except (OSError, SyntaxError, ValueError, TypeError):
        return None, 1


def exif_orientation(data: bytes) -> int:
    """The EXIF orientation (1-8) of an encoded image, 1 when it has none (headers only)."""
    return image_header(data)[1]


def apply_orientation(chw, orientation: int):
    """A CHW tensor turned upright as PIL's ImageOps.exif_transpose turns it (on any device:
    nvJPEG applies no EXIF orientation)."""
    import torch

    if orientation == 2:  # mirrored
        return chw.flip(-1)
    if orientation == 3:  # rotated 180
        return chw.flip(-2, -1)
    if orientation == 4:  # mirrored vertically
        return chw.flip(-2)
    if orientation == 5:  # transposed
        return chw.transpose(-2, -1)
    if orientation == 6:  # rotated 270 (PIL ROTATE_270: clockwise)
        return torch.rot90(chw, -1, (-2, -1))
    if orientation == 7:  # transversed
        return chw.transpose(-2, -1).flip(-2, -1)
    if orientation == 8:  # rotated 90 (counter-clockwise)
        return torch.rot90(chw, 1, (-2, -1))
    return chw


def _read_bytes(path: str | os.PathLike) -> bytes:
    """An image file's bytes, or an ImageError naming it where it is missing."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"image {path} is missing: rerun the dataset rule to fetch it again")
    return path.read_bytes()


def _read_encoded(path: str | os.PathLike) -> tuple[bytes, int]:
    data = _read_bytes(path)
    return data, exif_orientation(data)


def decode_resize_on_device(paths, encoded: Sequence[tuple[bytes, int]], size, device):
    """NCHW float32 on `device`: each image decoded there (JPEGs with decode_jpeg, batched;
    anything else with PIL on the host), turned upright, then the `torch` kernel (/255 in
    float32, bilinear interpolate, align_corners=False). On the CPU the pixels are those of
    preprocess_image(path, size, "torch") bit for bit (both decoders are libjpeg-turbo); on
    CUDA nvJPEG's are not (on the H200 up to 97 levels apart at sharp colour edges,
    benchmarks/gpu-h200.md): decode_on_host keeps the CPU's."""
    import warnings

    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    device = torch.device(device)
    jpegs = [i for i, (data, _) in enumerate(encoded) if data[:2] == JPEG_MAGIC]
    images: list = [None] * len(encoded)
    if jpegs:
        raw = [torch.from_numpy(np.frombuffer(encoded[i][0], np.uint8).copy()) for i in jpegs]
        with warnings.catch_warnings():  # torchvision 0.29+ points to TorchCodec
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                decoded = decode_jpeg(raw, mode=ImageReadMode.RGB, device=device)
            except RuntimeError as err:  # one bad file fails the batch: find it
                bad = next(
                    (p for i, p in zip(jpegs, paths) if not _decodes(encoded[i][0])), paths[0]
                )
                raise ImageError(
                    f"image {bad} does not decode with decode_jpeg on {device} ({err}): "
                    f"delete it and rerun the dataset rule, or set {ref('decode')} to cpu"
                ) from err
        for i, chw in zip(jpegs, decoded):
            images[i] = chw
    for i, image in enumerate(images):
        if image is None:  # not a JPEG: PIL on the host (EXIF applied there)
            images[i] = decode_on_host(paths[i]).to(device)
        elif encoded[i][1] != 1:
            images[i] = apply_orientation(image, encoded[i][1])
    return resize_on_device(images, size, device)


def resize_on_device(images: Sequence, size, device):
    """CHW uint8 tensors on `device` (upright RGB) -> NCHW float32 there: the `torch` kernel
    (/255 in float32, bilinear interpolate, align_corners=False), image by image. On CUDA the
    kernels are finished before the batch is handed over: the Detector runs the head on a
    stream of its own (with batches in flight, on another thread)."""
    import torch

    device = torch.device(device)
    height, width = size
    out = torch.empty((len(images), 3, height, width), dtype=torch.float32, device=device)
    for i, chw in enumerate(images):
        pixels = chw.to(torch.float32) / 255.0
        out[i] = torch.nn.functional.interpolate(
            pixels[None], size=(height, width), mode="bilinear", align_corners=False
        )[0]
    if device.type == "cuda":
        torch.cuda.current_stream(device).synchronize()
    return out


# JPEG modes whose pixels torchvision's CPU decoder gives as PIL does (tests/test_images.py);
# anything else (CMYK, other formats) goes through PIL
FAST_JPEG_MODES = ("RGB", "L")


def decode_on_host(path: str | os.PathLike):
    """An image decoded on the host as PIL decodes it (libjpeg-turbo, EXIF orientation
    applied, RGB), as a CHW uint8 tensor: the `torch` kernel's input, and what decode
    gpu-resize uploads.

    A colour or grayscale JPEG is decoded by torchvision.io.decode_jpeg on the CPU: the same
    libjpeg-turbo pixels, bit for bit (tested on every chroma subsampling, progressive files
    and EXIF orientations), in one call that lets go of the GIL. PIL takes the GIL back between
    its 64 KB blocks and for each conversion, so beside threads that run Python (the head's
    workers) the loader's 16 threads waited on it: decode gpu-resize ran 361 images/s on the
    H200 machine with PIL, 556 with this, nvJPEG 801 (benchmarks/gpu-h200.md). Other files go
    through PIL (load_image)."""
    import warnings

    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    data = _read_bytes(path)
    mode, orientation = image_header(data) if data[:2] == JPEG_MAGIC else (None, 1)
    if mode not in FAST_JPEG_MODES:
        hwc = np.asarray(load_image(path))
        return torch.from_numpy(np.ascontiguousarray(hwc.transpose(2, 0, 1)))
    with warnings.catch_warnings():  # torchvision 0.29+ points to TorchCodec
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            chw = decode_jpeg(
                torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB
            )
        except RuntimeError as err:
            raise ImageError(
                f"image {path} does not decode ({str(err).split(', ')[-1].strip()}; "
                f"{len(data) / 1024:.0f} KB on disk): delete it and rerun the dataset rule"
            ) from err
    return apply_orientation(chw, orientation).contiguous()


def _decodes(data: bytes) -> bool:
    import io

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
        return True
    except (OSError, SyntaxError, ValueError):
        return False


def iter_device_batches(
    paths: Sequence[str | os.PathLike],
    size: tuple[int, int],
    batch_size: int,
    device: str,
    workers: int = 2,
    host_decode: bool = False,
):
    """Yield NCHW float32 batches on `device`, in order: the files of the next batch are read
    (and their EXIF orientation parsed) in a thread pool while this one decodes on the device.
    `host_decode`: the pool decodes them too (decode_on_host: the CPU's pixels, not nvJPEG's)
    and the device only resizes."""
    read = decode_on_host if host_decode else _read_encoded
    chunks = [paths[start : start + batch_size] for start in range(0, len(paths), batch_size)]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        pending = [pool.submit(read, p) for p in chunks[0]] if chunks else []
        for index, chunk in enumerate(chunks):
            done = [f.result() for f in pending]
            if index + 1 < len(chunks):
                pending = [pool.submit(read, p) for p in chunks[index + 1]]
            if host_decode:
                yield resize_on_device([chw.to(device) for chw in done], size, device)
            else:
                yield decode_resize_on_device(chunk, done, size, device)
