"""After the ninth lease, on the CPU (gpu-h200.md, "After the lease"): how many float16 class
logits tie with each level's 1000th best, the demo's images at 800 against random U(0,1) input,
for a random-weights checkpoint (the ResNeXt50 head in float32, maps cast to float16, the first
image of two). From the repository root, after `snakemake --cores 2 data/demo/annotations.json
--configfile config/demo.yaml` and scripts/random_weights.py:

    .venv/bin/python benchmarks/records/gpu-h200/scripts/ties_cpu.py models/rand800.pt
    .venv/bin/python benchmarks/records/gpu-h200/scripts/ties_cpu.py models/spread800.pt  # --class-spread 1
"""
import glob, sys, torch, numpy as np
from retinaflow.data.images import preprocess_image
from retinaflow.runtime import open_runner

torch.set_num_threads(2)
model = {"arch": "resnext50_32x4d_fpn", "num_classes": 264, "image_size": 800}
runner = open_runner("torch", sys.argv[1], model, 2, "cpu", 2)
paths = sorted(glob.glob("data/demo/images/*.jpg"))[:2]
inputs = {
    "demo image": np.stack([preprocess_image(p, (800, 800), "mlperf") for p in paths]),
    "random input": np.random.default_rng(0).random((2, 3, 800, 800), dtype=np.float32),
}
for name, x in inputs.items():
    maps = runner(x)
    for level in range(5):
        p = torch.from_numpy(maps[level][0]).flatten().half().float()
        kth = p.topk(1000).values[-1]
        print(f"{sys.argv[1]} {name} P{level + 3}: fp16 distinct {p.unique().numel()}, "
              f">= 1000th best {int((p >= kth).sum())} of {p.numel()}, "
              f"above 0.05 {float((p > -2.944).float().mean()):.3f}")
