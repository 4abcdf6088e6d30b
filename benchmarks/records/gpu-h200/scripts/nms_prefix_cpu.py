"""After the tenth lease, on the CPU: does the device post-processing's NMS prefix (an image's
1,000 best candidates) keep 300 on the demo's images, or does an image take the whole-list
pass? The ResNeXt50 head in float32 on the CPU, the demo's first 16 images at 800, maps cast
to float16, post-processed by the Detector with a spy on device_postprocess._first_kept
(16 images: each prefix kept 300, with either weights; no whole-list pass). As floor_cpu.py:

    .venv/bin/python benchmarks/records/gpu-h200/scripts/nms_prefix_cpu.py models/rand800.pt
"""
import glob, sys, torch, numpy as np
from retinaflow.data.images import preprocess_image
from retinaflow.runtime import open_runner
from retinaflow.detector import Detector
from retinaflow.postprocess import PostprocessSettings
import retinaflow.device_postprocess as dp
torch.set_num_threads(2)
model = {"arch": "resnext50_32x4d_fpn", "num_classes": 264, "image_size": 800}
runner = open_runner("torch", sys.argv[1], model, 2, "cpu", 16)
paths = sorted(glob.glob("data/demo/images/*.jpg"))[:16]
inputs = {
    "demo": np.stack([preprocess_image(p, (800, 800), "mlperf") for p in paths]),
    
}
orig = dp._first_kept
def spy(shifted, scores, valid, images, width, settings):
    out = orig(shifted, scores, valid, images, width, settings)
    print(f"  _first_kept images {images} width {width}: kept {out.sum(1).tolist()}, valid {valid[images, :width].sum(1).tolist()}")
    return out
dp._first_kept = spy
det = Detector(None, "resnext50_32x4d_fpn", 800, PostprocessSettings(0.05, 1000, 0.5, 300))
for name, x in inputs.items():
    maps = [torch.from_numpy(m).half() for m in runner(x)]
    print(name)
    det.postprocess_maps(maps, [(1, 1)] * 16)
