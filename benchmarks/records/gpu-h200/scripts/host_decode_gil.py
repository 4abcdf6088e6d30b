"""Sixth lease, on the 2-core development machine (not the H200): JPEG decode throughput of
four threads, alone and beside one thread that runs Python, at the GIL's default switch
interval (5 ms) and at 0.5 ms. PIL (load_image's decode, as decode_on_host was), OpenCV, and
torchvision's CPU decode_jpeg (one call that releases the GIL). Makes /tmp/t.jpg (1024x768).
Output as it ran (PIL / cv2 / torchvision img/s): 5 ms: 147/300/522 alone, 47/132/180 beside
the spinner; 0.5 ms: 277/432/544 alone, 209/294/399 beside it; pixels equal across the three."""
import sys, threading, time
from concurrent.futures import ThreadPoolExecutor
import cv2, numpy as np, torch
from PIL import Image, ImageOps
from torchvision.io import decode_jpeg, read_file

rng = np.random.default_rng(0)
y, x = np.mgrid[0:768, 0:1024]
base = np.stack([(x * 0.2 + y * 0.2 + rng.uniform(0, 80)) % 256 for _ in range(3)], -1) + rng.normal(0, 12, (768, 1024, 3))
Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).save("/tmp/t.jpg", quality=90)
cv2.setNumThreads(1)
def via_pil(p):
    with Image.open(p) as img:
        img.load()
        hwc = np.asarray(ImageOps.exif_transpose(img).convert("RGB"))
    return torch.from_numpy(np.ascontiguousarray(hwc.transpose(2, 0, 1)))
def via_cv2(p):
    return torch.from_numpy(cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB).transpose(2, 0, 1).copy())
def via_tv(p):
    return decode_jpeg(read_file(p))
stop = False
def spin():
    x = 0
    while not stop:
        x += 1
for interval in (0.005, 0.0005):
    sys.setswitchinterval(interval)
    for f in (via_pil, via_cv2, via_tv):
        for spinners in (0, 1):
            stop = False
            ts = [threading.Thread(target=spin) for _ in range(spinners)]
            [t.start() for t in ts]
            with ThreadPoolExecutor(4) as pool:
                t = time.perf_counter(); n = 80
                list(pool.map(f, ["/tmp/t.jpg"] * n))
                dt = time.perf_counter() - t
            stop = True
            [t.join() for t in ts]
            print(f"switch {interval} {f.__name__} spinners {spinners}: {n / dt:.0f} img/s", flush=True)
a, b, c = via_pil("/tmp/t.jpg"), via_cv2("/tmp/t.jpg"), via_tv("/tmp/t.jpg")
print("cv2 == pil", torch.equal(a, b), "torchvision == pil", torch.equal(a, c))
