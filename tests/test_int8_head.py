"""The int8 GPU head (variant torch-int8): its Triton convolution against an integer reference,
and the quantized head against the float one. CI has no GPU: the kernel runs in Triton's
interpreter (triton_conv sets TRITON_INTERPRET=1 when PyTorch sees no CUDA GPU), the same
kernel source the GPU compiles."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from retinaflow import triton_conv
from retinaflow.device_postprocess import _flat_logits
from retinaflow.model.head import NUM_LEVELS
from retinaflow.model.int8_head import (
    BUILD_FORMAT,
    Int8Head,
    calibrate,
    expected_names,
    fpn_input_name,
    input_name,
    int8_fpn_levels,
    load_int8_head,
    store_int8_build,
)
from retinaflow.model.loading import load_head, store_weights
from retinaflow.runtime import open_runner

from .configs import ROOT

WEIGHTS = ROOT / "resources/demo/retinanet_demo.pt"  # the trained demo network
MODEL = {"arch": "demo", "num_classes": 6, "image_size": 320}
SIZE = 96  # the interpreter's time grows with the pixels; the levels are 12x12 .. 1x1

SMALL_BLOCKS = (32, 32, 1, 4)  # the interpreter's time grows with the tiles' sizes


def integer_reference(xq, shape, wq, scale, bias, relu):
    """The convolution as the kernel defines it, computed another way: exact int64 sums of
    the int8 products (F.conv2d in float64 is exact below 2^53), then the kernel's float32
    epilogue, op for op."""
    x = shape.interior(xq).permute(0, 3, 1, 2).double()
    oc, channels = wq.shape[0], wq.shape[1] // 9
    w = wq.double().reshape(oc, 3, 3, channels).permute(0, 3, 1, 2)
    acc = F.conv2d(x, w, padding=1).round().to(torch.int64)
    y = acc.permute(0, 2, 3, 1).float() * scale + bias
    return y.clamp_min(0.0) if relu else y


def random_case(n, height, width, channels, oc, seed=0, magnitude=1.0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, height, width, channels, generator=gen) * magnitude
    weight = torch.randn(oc, channels, 3, 3, generator=gen) * 0.05
    bias = torch.randn(oc, generator=gen)
    x_scale = float(x.abs().max()) / triton_conv.INT8_MAX
    shape = triton_conv.PaddedShape(n, height, width)
    xq = shape.pack(x, x_scale)
    wq, w_scale = triton_conv.quantize_weight(weight)
    return shape, xq, wq, (x_scale * w_scale).float(), bias


@pytest.mark.parametrize(
    "n, height, width, channels, oc",
    [
        (3, 5, 7, 64, 40),  # several images: a tap must not read the neighbour image
        (1, 1, 1, 32, 16),  # one pixel: every tap but the centre falls in the frame
        (2, 9, 4, 96, 130),  # output channels over one tile, not a multiple of it
        (1, 3, 3, 64, 36),  # the box conv's 36 channels (the 64-wide tile)
        (1, 2, 3, 256, 24),  # the head's 256 channels: two 128-wide reduction steps a tap
    ],
)
def test_conv_equals_the_integer_reference(n, height, width, channels, oc):
    """int8 sums are exact in int32, so the kernel's float16 map and its int8 output equal the
    reference's bit for bit (the same float32 epilogue, the same roundings), borders included."""
    shape, xq, wq, scale, bias = random_case(n, height, width, channels, oc)
    reference = integer_reference(xq, shape, wq, scale, bias, relu=True)
    got = triton_conv.conv3x3(xq, shape, wq, scale, bias, True, None, SMALL_BLOCKS)
    assert got.shape == (n, height, width, oc)
    # the padded output's interior, a view (read in place after the head)
    assert got.stride() == ((height + 2) * (width + 2) * oc, (width + 2) * oc, oc, 1)
    assert torch.equal(got, reference.half())
    out_scale = float(reference.abs().max()) / 200  # the largest values clamp at 127
    quantized = triton_conv.conv3x3(xq, shape, wq, scale, bias, True, out_scale, SMALL_BLOCKS)
    assert torch.equal(shape.interior(quantized), triton_conv.quantize(reference, out_scale))
    assert int(shape.interior(quantized).max()) == 127  # the clamp was exercised
    # the frame and the margins stay zero: the next layer's padding
    assert int(quantized.abs().sum()) == int(shape.interior(quantized).abs().sum().item())


@pytest.mark.parametrize(
    "n, height, width, channels, oc",
    [
        (3, 5, 7, 64, 48),  # several images, 3 x 2 = 6 tiles of 32 x 32 for 2 programs
        (1, 2, 3, 256, 16),  # the head's 256 channels, one 16-wide column block of a tile
    ],
)
def test_the_persistent_kernel_equals_the_integer_reference(n, height, width, channels, oc):
    """The persistent form (two programs looping over the tiles here: the interpreter counts
    one multiprocessor) gives the int8 output bit for bit, the frame and the margins zero:
    its epilogue stores whole tiles through a tensor descriptor, past the pixels too."""
    shape, xq, wq, scale, bias = random_case(n, height, width, channels, oc, seed=2)
    reference = integer_reference(xq, shape, wq, scale, bias, relu=True)
    out_scale = float(reference.abs().max()) / 200
    want = triton_conv.conv3x3(xq, shape, wq, scale, bias, True, out_scale, SMALL_BLOCKS, False)
    got = triton_conv.conv3x3(xq, shape, wq, scale, bias, True, out_scale, SMALL_BLOCKS, True)
    assert torch.equal(shape.interior(got), triton_conv.quantize(reference, out_scale))
    assert torch.equal(got, want)  # frame and margins included
    with pytest.raises(ValueError, match="writes int8 .out_scale set., not float16"):
        triton_conv.conv3x3(xq, shape, wq, scale, bias, True, None, SMALL_BLOCKS, True)
    shape, xq, wq, scale, bias = random_case(1, 2, 2, 32, 24)
    with pytest.raises(ValueError, match="needs multiples of 16 channels, not 24"):
        triton_conv.conv3x3(xq, shape, wq, scale, bias, True, 1.0, SMALL_BLOCKS, True)


@pytest.mark.parametrize("n, height, width, channels", [(3, 5, 7, 64), (1, 1, 1, 32)])
def test_pack_frames_the_quantized_batch_in_zeros(n, height, width, channels):
    """pack (built by padding, what compiles to one pass) puts the quantized pixels in the
    padded grid's interior, in NHWC order (a channels-last map's permuted view included), and
    zeros everywhere else: the frame, which the taps read as the convolution's padding, and
    the margins before and after the images."""
    shape = triton_conv.PaddedShape(n, height, width)
    x = torch.randn(n, channels, height, width).to(memory_format=torch.channels_last)
    packed = shape.pack(x.permute(0, 2, 3, 1), 0.01)
    assert packed.shape == (shape.rows, channels) and packed.is_contiguous()
    assert torch.equal(shape.interior(packed), triton_conv.quantize(x.permute(0, 2, 3, 1), 0.01))
    outside = torch.ones_like(packed, dtype=torch.bool)
    shape.interior(outside).fill_(False)
    assert not packed[outside].any()
    assert shape.interior(packed).count_nonzero() > 0.9 * n * height * width * channels


def test_an_image_of_zeros_beside_a_large_one_sees_only_its_bias():
    """Images are packed one after another: an all-zero image's output is its bias alone,
    whatever its neighbour holds (a tap that crossed the frame would add the neighbour's)."""
    shape, xq, wq, scale, bias = random_case(2, 4, 4, 32, 16, magnitude=10.0)
    shape.interior(xq)[1] = 0  # a view: the packed buffer's second image
    got = triton_conv.conv3x3(xq, shape, wq, scale, bias, False, None, SMALL_BLOCKS)
    assert torch.equal(got[1], bias.half().expand(4, 4, 16))


def test_negative_values_round_half_up_and_clamp():
    """quantize: the kernel's rounding (half up) and the symmetric clamp, on the hard values."""
    x = torch.tensor([-1000.0, -127.5, -0.5, -0.49, 0.5, 1.5, 126.5, 1000.0])
    assert triton_conv.quantize(x, 1.0).tolist() == [-127, -127, 0, 0, 1, 2, 127, 127]


def test_the_kernel_refuses_what_it_cannot_run():
    shape, xq, wq, scale, bias = random_case(1, 2, 2, 32, 8)
    with pytest.raises(ValueError, match="multiples of 32"):
        triton_conv.block_k(48)
    with pytest.raises(ValueError, match="does not fit"):
        triton_conv.conv3x3(xq, shape, wq[:, :100], scale, bias, True, None)
    with pytest.raises(ValueError, match="not int8 padded flat"):
        triton_conv.conv3x3(xq[1:], shape, wq, scale, bias, True, None)


def demo_images(count, seed):
    return torch.rand(count, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def test_int8_head_gives_the_float_heads_maps():
    """The trained demo network, calibrated on other images than it is compared on: every map
    close to the float head's. Per-tensor scales of max/127 put each layer's rounding noise
    near 0.3% of its signal; five layers stay under ~2%, a cosine above 0.999. 0.99 (14%
    noise) still fails a swapped tap, channel or level (cosines near 0)."""
    head = load_head(WEIGHTS, **MODEL)
    amax = calibrate(head, [demo_images(2, seed=1)])
    assert sorted(amax) == sorted(expected_names(head))
    int8 = Int8Head(head, amax)
    images = demo_images(2, seed=2)
    with torch.inference_mode():
        quantized, reference = int8(images), head(images)
    for got, want in zip(quantized, reference, strict=True):
        assert got.shape == want.shape and got.dtype == torch.float16
        # NHWC memory, a padded grid's interior: what the post-processing reads in place
        assert _flat_logits(got)[2] is not None
        cosine = F.cosine_similarity(got.float().flatten(), want.flatten(), dim=0)
        assert cosine > 0.99


def test_the_fpn_convs_below_the_top_level_run_in_int8():
    """P3's and P4's FPN output convs run in int8 (the FPN's top level stays float: P6 and P7
    read it): the trunk's copy hands on their input, the top-down sum, as the float FPN
    computes it, and the int8 conv's output, dequantized, is the float FPN's output up to two
    roundings of max/127 (input and output, each ~0.3% of the signal: a cosine above 0.999;
    P4's weight in P3's conv gave 0.29). The head given keeps its float FPN."""
    head = load_head(WEIGHTS, **MODEL)
    amax = calibrate(head, [demo_images(2, seed=1)])
    int8 = Int8Head(head, amax)
    assert int8_fpn_levels(head) == [0, 1]
    assert not isinstance(head.backbone.fpn.layer_blocks[0], torch.nn.Identity)
    sums = {}
    blocks = head.backbone.fpn.layer_blocks
    hooks = [
        blocks[level].register_forward_pre_hook(
            lambda m, a, level=level: sums.update({level: a[0]})
        )
        for level in (0, 1)
    ]
    images = demo_images(2, seed=2)
    with torch.inference_mode():
        want = head.features(images)
        for hook in hooks:
            hook.remove()
        got = int8.trunk.features(images)
        assert all(torch.equal(got[level], sums[level]) for level in (0, 1))
        assert all(torch.equal(got[level], want[level]) for level in (2, 3, 4))
        outputs = int8.fpn_outputs(int8.packed_features(images))
    for level, (buffer, size) in enumerate(outputs):
        assert buffer.dtype == torch.int8
        if level not in (0, 1):
            continue
        scale = int8.scales[input_name(level)]
        shape = triton_conv.PaddedShape(*size)
        dequantized = shape.interior(buffer).float() * scale
        reference = want[level].permute(0, 2, 3, 1)
        cosine = F.cosine_similarity(dequantized.flatten(), reference.flatten(), dim=0)
        assert cosine > 0.999, (level, cosine)
        # the input was quantized with its own calibrated range, not the output's
        assert int8.scales[fpn_input_name(level)] != scale


def test_each_level_and_tower_is_a_chain_of_its_own():
    """heads() runs each (level, tower) chain on a stream of its own on CUDA, which is right
    only if a chain needs nothing of another (no shared buffer, no order). Here, one chain
    after another: with every other level's input replaced by other values, a level's two
    maps stay those of the whole call bit for bit (int8 sums are exact), the others change;
    and `concurrent` on or off changes nothing."""
    head = load_head(WEIGHTS, **MODEL)
    int8 = Int8Head(head, calibrate(head, [demo_images(1, seed=1)]))
    levels = NUM_LEVELS
    with torch.inference_mode():
        packed = int8.packed_features(demo_images(2, seed=2))
        other = int8.packed_features(demo_images(2, seed=3))
        whole = int8.heads(packed)
        for level in range(levels):
            mixed = [packed[i] if i == level else other[i] for i in range(levels)]
            maps = int8.heads(mixed)
            for index in range(2 * levels):  # class maps, then box maps
                same = torch.equal(maps[index], whole[index])
                assert same == (index % levels == level), (level, index)
        int8.concurrent = not int8.concurrent
        assert all(torch.equal(a, b) for a, b in zip(int8.heads(packed), whole, strict=True))


def test_calibration_missing_a_tensor_is_refused():
    head = load_head(WEIGHTS, **MODEL)
    amax = calibrate(head, [demo_images(1, seed=1)])
    amax.pop("p4.box2")
    with pytest.raises(ValueError, match="lacks 1"):
        Int8Head(head, amax)


def test_build_round_trip_and_the_runner(tmp_path):
    """store_int8_build (from the DAG's stored state dict) -> load_int8_head gives the same
    maps; open_runner opens a torch-int8 build as the DAG does and records that its heads are
    int8; a file of another kind is refused by name."""
    weights = tmp_path / "weights.pt"
    store_weights(WEIGHTS, weights, **MODEL)
    head = load_head(weights, **MODEL)
    amax = calibrate(head, [demo_images(1, seed=1)])
    build = tmp_path / "torch-int8.pt"
    store_int8_build(weights, amax, build, {"method": "max"})
    images = demo_images(1, seed=2)
    with torch.inference_mode():
        direct = Int8Head(head, amax)(images)
        again = load_int8_head(build, **MODEL)(images)
    assert all(torch.equal(a, b) for a, b in zip(direct, again, strict=True))
    runner = open_runner("torch-int8", build, MODEL)
    maps = runner(images.numpy())
    assert [m.shape for m in maps] == [tuple(m.shape) for m in direct]
    assert runner.settings()["heads"].startswith("int8")
    with pytest.raises(ValueError, match="not a torch-int8 build"):
        load_int8_head(weights, **MODEL)


def test_a_build_of_another_format_is_stale_in_the_dag():
    """The rule names the library's build format as a param: a build made before a new format
    (here /2, the FPN convs' input ranges) reruns under Snakemake's params trigger instead of
    failing to load at inference (the rule's script refuses a param that is not the
    library's; test_torch_int8_runs_in_the_dag runs it)."""
    rule = (ROOT / "workflow/rules/quantize.smk").read_text()
    assert f'build_format="{BUILD_FORMAT}"' in rule


def test_compiled_trunk_gives_the_same_heads():
    """Int8Head.compiled, what the runner uses under a compile mode (the GPU's default): the
    trunk and the levels' quantization through torch.compile (inductor's CPU backend here),
    the int8 kernels as they are. Compiled float arithmetic rounds differently, so a few
    activations land on the other side of a quantization step: the maps agree to the int8
    noise (cosine above 0.999 against the eager int8 head, as above), not bit for bit."""
    head = load_head(WEIGHTS, **MODEL)
    int8 = Int8Head(head, calibrate(head, [demo_images(1, seed=1)]))
    images = demo_images(1, seed=2)
    with torch.inference_mode():
        eager, compiled = int8(images), int8.compiled(None)(images)
    for got, want in zip(compiled, eager, strict=True):
        assert got.shape == want.shape
        cosine = F.cosine_similarity(got.float().flatten(), want.float().flatten(), dim=0)
        assert cosine > 0.999


def test_the_persistent_kernel_is_chosen_for_large_levels_only():
    """The head's 256->256 convs at batch 32 on an H200 (132 multiprocessors, two programs
    each): P3 (32 x 102 x 102 padded pixels, 128 x 128 tiles: 2,601 x 2 = 5,202 tiles, ~20 a
    program) takes the persistent kernel, P4 (32 x 52 x 52: 676 x 2 = 1,352, ~5 a program)
    and smaller levels the one-tile-a-program kernel, as the twelfth lease timed them."""
    programs = 132 * triton_conv.PROGRAMS_PER_SM
    tiles = {h: -(-32 * (h + 2) ** 2 // 128) * 2 for h in (100, 50, 25, 13, 7)}
    chosen = {h: triton_conv.persistent_pays(t, min(t, programs)) for h, t in tiles.items()}
    assert chosen == {100: True, 50: False, 25: False, 13: False, 7: False}
