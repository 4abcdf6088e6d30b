"""The demo images decoded by nvJPEG on the GPU against libjpeg-turbo on the CPU: pixel
differences (uint8 levels) one by one and batched, and the 320x320 model input (decode +
torch resize) on cuda against the CPU's."""
import glob

import numpy as np
import torch
from torchvision.io import ImageReadMode, decode_jpeg

from retinaflow.data.images import _read_encoded, decode_resize_on_device

paths = sorted(glob.glob("data/demo/images/*.jpg"))[:64]
raw = [torch.frombuffer(bytearray(open(p, "rb").read()), dtype=torch.uint8) for p in paths]
cpu = [decode_jpeg(r, mode=ImageReadMode.RGB) for r in raw]
one = [decode_jpeg(r, mode=ImageReadMode.RGB, device="cuda").cpu() for r in raw]
batched = [t.cpu() for t in decode_jpeg(raw, mode=ImageReadMode.RGB, device="cuda")]
for name, got in (("single", one), ("batched", batched)):
    d = np.concatenate([(g.int() - c.int()).abs().flatten().numpy() for g, c in zip(got, cpu)])
    print(f"nvJPEG {name} vs CPU: max {d.max()} levels, mean {d.mean():.3f}, "
          f"share differing {(d > 0).mean():.3f}, >4 levels {(d > 4).mean():.4f}")
print("single == batched:", all(torch.equal(a, b) for a, b in zip(one, batched)))
encoded = [_read_encoded(p) for p in paths]
gpu_in = decode_resize_on_device(paths, encoded, (320, 320), "cuda").cpu()
cpu_in = decode_resize_on_device(paths, encoded, (320, 320), "cpu")
d = (gpu_in - cpu_in).abs()
print(f"model input cuda vs cpu: max {d.max():.4f}, mean {d.mean():.5f} (1 level = {1/255:.4f})")
print("image sizes:", sorted({tuple(c.shape) for c in cpu})[:5])
