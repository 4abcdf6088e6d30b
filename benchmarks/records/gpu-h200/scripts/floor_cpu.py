"""After the tenth lease, on the CPU (gpu-h200.md, "Tenth lease"): how many float16 keys reach
each level's floor in radix_topk (the k-th largest sub-chunk maximum; buffer 8 * k = 8,000 keys
before the tenth lease, 32 * k since), the demo's images at 800 against random U(0,1) input,
two images each, for a random-weights checkpoint (the ResNeXt50 head in float32 on the CPU,
maps cast to float16; sub-chunks over the interior, as an unframed row). From the repository
root, after `snakemake --cores 2 data/demo/annotations.json --configfile config/demo.yaml` and
scripts/random_weights.py:

    .venv/bin/python benchmarks/records/gpu-h200/scripts/floor_cpu.py models/rand800.pt
    .venv/bin/python benchmarks/records/gpu-h200/scripts/floor_cpu.py models/spread800.pt
"""
import glob, sys, torch, numpy as np
from retinaflow.data.images import preprocess_image
from retinaflow.runtime import open_runner
torch.set_num_threads(2)
model = {"arch": "resnext50_32x4d_fpn", "num_classes": 264, "image_size": 800}
runner = open_runner("torch", sys.argv[1], model, 2, "cpu", 2)
paths = sorted(glob.glob("data/demo/images/*.jpg"))[:2]
inputs = {
    "demo": np.stack([preprocess_image(p, (800, 800), "mlperf") for p in paths]),
    "random": np.random.default_rng(0).random((2, 3, 800, 800), dtype=np.float32),
}
k = 1000
for name, x in inputs.items():
    maps = runner(x)
    out = []
    for level in range(5):
        for img in range(2):
            row = torch.from_numpy(maps[level][img]).permute(1, 2, 0).reshape(-1).half().float()
            L = row.numel()
            sub = max(16, min(1024, 1 << max(0, (L // k).bit_length() - 1)))
            pad = (-L) % sub
            chunks = torch.cat([row, row.new_full((pad,), -float("inf"))]).view(-1, sub).amax(1)
            floor = chunks.topk(k).values[-1]
            out.append(f"P{level+3}/{img}: {int((row >= floor).sum())}")
    print(sys.argv[1], name, "keys reaching the floor (buffer 8000):", ", ".join(out))
