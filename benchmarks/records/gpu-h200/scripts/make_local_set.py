"""A synthetic split in the MLPerf layout for timing the infer rule at OpenImages' sizes:
<root>/annotations/openimages-mlperf.json (the 264 MLPerf classes) + validation/data/*.jpg,
images of 1024x768 / 768x1024 / 1024x683 with smooth content and shapes (JPEG ~100-200 KB,
like OpenImages photos), one box each. python3 make_local_set.py ROOT N"""
import json, sys
from multiprocessing import Pool
from pathlib import Path
import numpy as np
from PIL import Image, ImageDraw, ImageFilter
root, n = Path(sys.argv[1]), int(sys.argv[2])
SIZES = [(1024, 768), (768, 1024), (1024, 683)]
def make(i):
    rng = np.random.default_rng(i)
    w, h = SIZES[i % 3]
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * rng.uniform(0.1, 0.3) + y * rng.uniform(0.1, 0.3) + rng.uniform(0, 80)) % 256 for _ in range(3)], -1)
    base += rng.normal(0, 12, base.shape)
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    for _ in range(12):
        x0, y0 = rng.integers(0, w - 50), rng.integers(0, h - 50)
        d.ellipse([x0, y0, x0 + rng.integers(20, 300), y0 + rng.integers(20, 300)], fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    img = img.filter(ImageFilter.GaussianBlur(0.6))
    name = f"{i:016x}.jpg"
    img.save(root / "validation" / "data" / name, quality=90)
    return {"id": i + 1, "file_name": name, "width": w, "height": h}
if __name__ == "__main__":
    (root / "validation" / "data").mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    with Pool(16) as pool:
        images = pool.map(make, range(n))
    names = Path("src/retinaflow/resources/mlperf_classes.txt").read_text().split("\n")
    names = [c for c in names if c.strip()]
    anns = [{"id": im["id"], "image_id": im["id"], "category_id": im["id"] % len(names), "bbox": [10.0, 10.0, 100.0, 80.0], "area": 8000.0, "iscrowd": 0} for im in images]
    cats = [{"id": k, "name": c} for k, c in enumerate(names)]
    (root / "annotations" / "openimages-mlperf.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    sizes = [p.stat().st_size for p in (root / "validation" / "data").iterdir()]
    print(f"{n} images, {len(cats)} classes, mean {np.mean(sizes) / 1e3:.0f} KB", flush=True)
