"""Ready for the thirteenth lease: the int8 head kernel's tiles with two pipeline stages, which
the sixth lease's sweep (int8_sweep.py: stages 3-5) left out. Its best, 128x128 with 3 stages
and 4 warps (96 KB of shared memory: two blocks a multiprocessor), beat 4 stages (one block)
by 1.45x, so two resident blocks matter more than depth; 128x256 and 256x128 (8 warps) ran 3
stages (144 KB: one block) and lost. With 2 stages they take 96 KB, two blocks of 8 warps a
multiprocessor, and their larger tiles read less of L2 per product (a 128x128 tile's int8
loads at the tensor cores' full rate ask ~15 TB/s of L2 over 132 multiprocessors; 128x256,
~11). The library's conv3x3 with `blocks`, on P3 at batch 32 (the class conv, a tower conv),
every config's bytes compared with the default's, each timed twice in alternation.
python3 int8_tiles2.py"""
import os
import sys

import torch

from retinaflow import triton_conv as tc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from grouped_conv_bench import bench  # noqa: E402  the records' CUDA-event timer (20 calls)

print("torch", torch.__version__, torch.cuda.get_device_name(0), "default", tc.BLOCKS, flush=True)
B, C = 32, 256
CONFIGS = [None, (128, 128, 2, 4), (128, 256, 2, 8), (256, 128, 2, 8), (128, 256, 2, 4),
           (64, 256, 3, 4), (64, 128, 4, 4)]
for H, OC in [(100, 2376), (100, 256)]:
    shape = tc.PaddedShape(B, H, H)
    g = torch.Generator(device="cuda").manual_seed(0)
    x = shape.pack(torch.randn(B, H, H, C, device="cuda", generator=g).relu(), 0.03)
    wq, wsc = tc.quantize_weight(torch.randn(OC, C, 3, 3, device="cuda", generator=g) * 0.02)
    scale, bias = (0.03 * wsc).float(), torch.randn(OC, device="cuda", generator=g)
    out_scale = None if OC > 256 else 0.05
    ops = 2 * B * H * H * OC * C * 9

    def conv(blocks):
        return tc.conv3x3(x, shape, wq, scale, bias, True, out_scale, blocks, persistent=False)

    want = conv(None)
    for round_ in (1, 2):
        for blocks in CONFIGS:
            try:
                same = torch.equal(conv(blocks), want)
                ms = bench(lambda: conv(blocks))
                print(f"P3 OC{OC} round {round_} {blocks or 'default'}: {ms:.3f} ms "
                      f"({ops / ms / 1e9:.0f} TOPS), bytes equal {same}", flush=True)
            except Exception as err:  # a config the compiler or the GPU refuses
                print(f"P3 OC{OC} {blocks}: FAILED {type(err).__name__} {str(err)[:160]}", flush=True)
