"""int8 convolution on the GPU's tensor cores: one Triton kernel for RetinaNet's head, an
implicit GEMM with int8 x int8 -> int32 products and the dequantization, bias, ReLU and the
next layer's quantization in its epilogue.

PyTorch has no CUDA int8 convolution, and the head spends most of the network's arithmetic
in stride-1 3x3 "same" convolutions on the FPN levels (two towers of four 256->256 convs and
the 256->A*K class conv, on every level). On an H200 this kernel ran those at 1,090-1,150 int8
TOPS (BLOCKS) against cuDNN's 520-540 fp16 TFLOPS (benchmarks/gpu-h200.md).

Layout: an activation is a *padded flat* int8 matrix [rows, C]: each image's H x W pixels
inside a one-pixel frame of zeros, (H+2) x (W+2) rows an image, images one after another, and
`margin` zero rows before and after the lot. A GEMM row is a pixel of that padded grid, and
tap (dy, dx) of the 3x3 window is then the row `dy * (W+2) + dx` away: the reduction over
(tap, channel) loads plain [BLOCK_M, BLOCK_K] tiles of shifted rows, through the tensor
memory accelerator (a TensorDescriptor: no index arithmetic, no masks). Frame pixels compute
garbage and are written as zero, so the output is again a padded flat matrix, the next layer's
input. The last layer's float16 output is padded flat too (its frame holds garbage), handed
on as the [N, H, W, C] view of its interior: the device post-processing reads the padded
grids in place and leaves the frame out (radix_topk.Frame), where a dense copy cost 1.1 ms
for a batch of 32's ten maps on the H200 (a Triton row copy; PyTorch's strided copy 2.6) and
storing only the interior pixels (rows no longer consecutive) made P3's class conv 5.7x
slower (benchmarks/gpu-h200.md, seventh and eighth leases).

A persistent form of the kernel (`_conv3x3_persistent_kernel`: a few programs a multiprocessor
looping over the same tiles, the epilogue storing through a tensor descriptor) runs the int8-output
convs where each program gets many tiles (P3's towers: persistent_pays).

Quantization is symmetric (no zero point: the frame's zeros are real zeros): a tensor's int8
value q stands for q * scale, a weight has one scale per output channel. int8 accumulates
exactly in int32, so the result does not depend on the reduction's order: the same bytes on
any GPU, and in Triton's interpreter on the CPU, where the tests run the same kernel
(triton_setup: TRITON_INTERPRET=1 where PyTorch sees no CUDA GPU).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import triton_setup  # noqa: F401  first: the interpreter on a machine without CUDA

import triton  # noqa: E402  isort: skip
import triton.language as tl  # noqa: E402  isort: skip
from triton.tools.tensor_descriptor import TensorDescriptor  # noqa: E402  isort: skip

INT8_MAX = 127.0
# (BLOCK_M, BLOCK_N, pipeline stages, warps), with block_k's reduction step (128 for the
# head's 256 channels: 128-byte int8 rows): the fastest of 22 on the H200 for P3's class conv
# (3.05 ms a batch of 32, 1,149 TOPS, against 3.57 for the earlier (128, 128, 4, 4) with a step
# of 64) and of 22 for its 256->256 convs (0.345 against 0.406 ms); four stages of these tiles
# need 128 KB of shared memory, room for one block a multiprocessor, three (96 KB) for two
# (benchmarks/gpu-h200.md, sixth lease; the box conv's 64-wide tile is untimed with them)
BLOCKS = (128, 128, 3, 4)
# int8 outputs (the towers' convs) from a persistent kernel: two programs a multiprocessor loop
# over the tiles, the loop flattened (Triton software-pipelines the next tile's loads into this
# one's last steps and epilogue) and the epilogue storing through a tensor descriptor, bytes
# equal. On the H200 (benchmarks/gpu-h200.md, eleventh and twelfth leases) P3's 256->256 conv
# took 0.316-0.318 ms against 0.345-0.350, ~20 tiles a program at batch 32; P4-P7 lost
# 0.013-0.031 ms each (P4 ~5 tiles a program); the float16 class convs gained nothing. On every
# level the whole head gained nothing; on P3's towers alone 21.37 -> 21.14 ms (two runs each,
# one call). So it takes a conv only where each program loops over at least this many tiles.
PERSISTENT_INT8_OUT = True
PROGRAMS_PER_SM = 2
PERSISTENT_MIN_TILES_A_PROGRAM = 8


@triton.jit
def _tile(tile, grid_m, grid_n, GROUP_M: tl.constexpr):
    """(pid_m, pid_n) of a tile in grouped launch order: neighbouring tiles share input rows
    (L2 reuse)."""
    in_group = GROUP_M * grid_n
    first_m = (tile // in_group) * GROUP_M
    group_size = tl.minimum(grid_m - first_m, GROUP_M)
    return first_m + (tile % in_group) % group_size, (tile % in_group) // group_size


@triton.jit
def _accumulate(
    x_desc, w_desc, row0, col0, C, WP, MARGIN,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    """A tile's int32 sums over the 9 taps and the input channels (a tap's shift is a row
    offset in the padded flat layout)."""
    acc = tl.full((BLOCK_M, BLOCK_N), 0, dtype=tl.int32)
    for k in range(0, 9 * C, BLOCK_K):
        tap = k // C  # BLOCK_K divides C: one tap a step
        shift = (tap // 3 - 1) * WP + tap % 3 - 1
        a = x_desc.load([MARGIN + row0 + shift, k % C])
        b = w_desc.load([col0, k])
        acc = tl.dot(a, b.T, acc, out_dtype=tl.int32)
    return acc


@triton.jit
def _epilogue(
    acc, row0, col0, scale_ptr, bias_ptr, y_ptr, y_desc, out_inv_scale, P, HP, WP, OC, MARGIN,
    RELU: tl.constexpr, INT8_OUT: tl.constexpr, TMA_STORE: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):  # fmt: skip
    """Dequantize, bias, ReLU; then int8 (quantized, the frame and the rows past the pixels
    zero) or float16, stored through `y_desc` (TMA_STORE) or masked pointer stores."""
    offs_m = row0 + tl.arange(0, BLOCK_M)
    offs_n = col0 + tl.arange(0, BLOCK_N)
    col_ok = offs_n < OC
    scale = tl.load(scale_ptr + offs_n, mask=col_ok, other=0.0)
    bias = tl.load(bias_ptr + offs_n, mask=col_ok, other=0.0)
    y = acc.to(tl.float32) * scale[None, :] + bias[None, :]
    if RELU:
        y = tl.maximum(y, 0.0)
    row = (offs_m // WP) % HP
    col = offs_m % WP
    interior = (row > 0) & (row < HP - 1) & (col > 0) & (col < WP - 1) & (offs_m < P)
    if INT8_OUT:
        q = tl.floor(y * out_inv_scale + 0.5)  # rounding half up, as quantize() does
        q = tl.minimum(tl.maximum(q, -127.0), 127.0)  # INT8_MAX (a kernel reads no globals)
        out = tl.where(interior[:, None], q, 0.0).to(tl.int8)  # the frame stays zero
    else:
        out = y.to(tl.float16)
    if TMA_STORE:  # the descriptor clips what lies past the buffer
        y_desc.store([MARGIN + row0, col0], out)
    else:
        ptrs = y_ptr + (MARGIN + offs_m)[:, None] * OC + offs_n[None, :]
        tl.store(ptrs, out, mask=(offs_m < P)[:, None] & col_ok[None, :])


@triton.jit
def _conv3x3_kernel(
    x_desc,  # [rows, C] int8, padded flat, blocks [BLOCK_M, BLOCK_K]
    w_desc,  # [OC, 9*C] int8, reduction index tap * C + channel, blocks [BLOCK_N, BLOCK_K]
    scale_ptr,  # [OC] float32: the input's scale times the weight's
    bias_ptr,  # [OC] float32
    y_ptr,  # padded flat [rows, OC]: int8, or float16 (the frame then holds garbage)
    out_inv_scale,  # 1 / the output's scale (int8 output)
    P,  # padded pixels: N * (H+2) * (W+2)
    HP,
    WP,
    C,
    OC,
    MARGIN,
    RELU: tl.constexpr,
    INT8_OUT: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    GROUP_M: tl.constexpr,
):
    # only triton.language's builtins (no tl.cdiv, tl.zeros: triton_setup says why)
    grid_m = (P + BLOCK_M - 1) // BLOCK_M
    grid_n = (OC + BLOCK_N - 1) // BLOCK_N
    pid_m, pid_n = _tile(tl.program_id(0), grid_m, grid_n, GROUP_M)
    row0, col0 = pid_m * BLOCK_M, pid_n * BLOCK_N
    acc = _accumulate(x_desc, w_desc, row0, col0, C, WP, MARGIN, BLOCK_M, BLOCK_N, BLOCK_K)
    _epilogue(
        acc, row0, col0, scale_ptr, bias_ptr, y_ptr, y_ptr, out_inv_scale, P, HP, WP, OC,
        MARGIN, RELU, INT8_OUT, False, BLOCK_M, BLOCK_N,
    )  # fmt: skip


@triton.jit
def _conv3x3_persistent_kernel(
    x_desc, w_desc, scale_ptr, bias_ptr, y_ptr, out_inv_scale, P, HP, WP, C, OC, MARGIN, y_desc,
    RELU: tl.constexpr, INT8_OUT: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr, PROGRAMS: tl.constexpr,
):  # fmt: skip
    """_conv3x3_kernel's tiles, PROGRAMS programs looping over them (PERSISTENT_INT8_OUT)."""
    grid_m = (P + BLOCK_M - 1) // BLOCK_M
    grid_n = (OC + BLOCK_N - 1) // BLOCK_N
    start = tl.program_id(0)
    tile_c = start - PROGRAMS  # the epilogue's own count of the tiles (Triton's tutorial 09)
    for tile in tl.range(start, grid_m * grid_n, PROGRAMS, flatten=True):
        pid_m, pid_n = _tile(tile, grid_m, grid_n, GROUP_M)
        acc = _accumulate(
            x_desc, w_desc, pid_m * BLOCK_M, pid_n * BLOCK_N, C, WP, MARGIN,
            BLOCK_M, BLOCK_N, BLOCK_K,
        )  # fmt: skip
        tile_c += PROGRAMS
        pid_m, pid_n = _tile(tile_c, grid_m, grid_n, GROUP_M)
        _epilogue(
            acc, pid_m * BLOCK_M, pid_n * BLOCK_N, scale_ptr, bias_ptr, y_ptr, y_desc,
            out_inv_scale, P, HP, WP, OC, MARGIN, RELU, INT8_OUT, True, BLOCK_M, BLOCK_N,
        )  # fmt: skip


def quantize(x: torch.Tensor, scale: float) -> torch.Tensor:
    """x / scale as int8: rounded half up (the kernel's own rounding), clamped to +-127."""
    return torch.floor(x.float() / scale + 0.5).clamp_(-INT8_MAX, INT8_MAX).to(torch.int8)


def quantize_weight(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[OC, C, 3, 3] float -> ([OC, 9*C] int8 in the kernel's reduction order, tap-major;
    [OC] float32 scales), symmetric per output channel."""
    w = weight.detach().float()
    amax = w.abs().amax(dim=(1, 2, 3)).clamp_min(torch.finfo(torch.float32).tiny)
    scale = amax / INT8_MAX
    q = torch.round(w / scale[:, None, None, None]).clamp_(-INT8_MAX, INT8_MAX)
    return q.to(torch.int8).permute(0, 2, 3, 1).reshape(len(w), -1).contiguous(), scale


class PaddedShape:
    """The padded flat layout of a batch of N images of H x W (see the module docstring)."""

    def __init__(self, n: int, height: int, width: int):
        self.n, self.height, self.width = n, height, width
        self.pixels = n * (height + 2) * (width + 2)
        self.margin = width + 3  # the farthest tap, a row and a pixel away, stays inside
        self.rows = self.pixels + 2 * self.margin

    def __repr__(self):
        return f"PaddedShape(n={self.n}, height={self.height}, width={self.width})"

    def empty(self, channels: int, device) -> torch.Tensor:
        """A [rows, channels] int8 buffer whose margins are zero (the kernel writes the rest)."""
        buf = torch.empty((self.rows, channels), dtype=torch.int8, device=device)
        buf[: self.margin].zero_()
        buf[self.margin + self.pixels :].zero_()
        return buf

    def interior(self, buf: torch.Tensor) -> torch.Tensor:
        """The [N, H, W, C] view of the images' pixels in a padded flat buffer."""
        grid = buf[self.margin : self.margin + self.pixels]
        grid = grid.view(self.n, self.height + 2, self.width + 2, buf.shape[1])
        return grid[:, 1:-1, 1:-1]

    def pack(self, x_nhwc: torch.Tensor, scale: float) -> torch.Tensor:
        """A float NHWC batch, quantized with `scale`, into a zero-framed padded flat buffer.
        Built by padding, not by copying into a zeroed buffer's interior: under torch.compile
        the pads fuse into the quantization, one pass writing every byte once, where the copy
        into a view could leave the zeros to a pass of its own (0.5 ms for P3's sum at batch
        32 on the H200, benchmarks/gpu-h200.md, thirteenth lease)."""
        grid = F.pad(quantize(x_nhwc, scale), (0, 0, 1, 1, 1, 1))  # the frame: W, then H
        return F.pad(grid.reshape(self.pixels, x_nhwc.shape[3]), (0, 0, self.margin, self.margin))


def block_k(channels: int) -> int:
    """The reduction step: a slice of one tap's channels (128, 64 or 32, a divisor of them)."""
    for block in (128, 64, 32):
        if channels % block == 0:
            return block
    raise ValueError(f"the int8 kernel needs input channels in multiples of 32, got {channels}")


def persistent_pays(tiles: int, programs: int) -> bool:
    """Whether `programs` persistent programs have enough of a conv's `tiles` each for the
    loop to win over one program a tile (PERSISTENT_MIN_TILES_A_PROGRAM)."""
    return tiles >= PERSISTENT_MIN_TILES_A_PROGRAM * programs


def conv3x3(
    x: torch.Tensor,
    shape: PaddedShape,
    weight: torch.Tensor,
    scale: torch.Tensor,
    bias: torch.Tensor,
    relu: bool,
    out_scale: float | None,
    blocks: tuple[int, int, int, int] | None = None,
    persistent: bool | None = None,
) -> torch.Tensor:
    """A stride-1 3x3 "same" convolution of the padded flat int8 `x` (of `shape`), with the
    weight of quantize_weight, `scale` = x's scale times the weight's, a float32 bias.
    `out_scale` set: the padded flat int8 output quantized with it; None: the [N, H, W, OC]
    float16 map, a view of the padded flat output's interior (PaddedShape.interior).
    `blocks`: (BLOCK_M, BLOCK_N, stages, warps), default BLOCKS (BLOCK_N 64 for at most 64
    output channels: the box conv's 36). `persistent`: the persistent kernel (int8 output in
    multiples of 16 channels, the tensor descriptor's rows; default PERSISTENT_INT8_OUT for
    those where persistent_pays)."""
    channels = x.shape[1]
    oc = weight.shape[0]
    if x.dtype != torch.int8 or x.shape[0] != shape.rows:
        raise ValueError(f"input {tuple(x.shape)} {x.dtype} is not int8 padded flat for {shape}")
    if weight.shape[1] != 9 * channels or weight.dtype != torch.int8:
        raise ValueError(f"weight {tuple(weight.shape)} {weight.dtype} does not fit {channels} ch")
    if max(shape.rows, shape.n * shape.height * shape.width) * max(oc, channels) >= 2**31:
        raise ValueError(
            f"{shape} x {oc} channels: the kernel's int32 offsets overflow, split the batch"
        )
    if out_scale is None:
        y = torch.empty((shape.rows, oc), dtype=torch.float16, device=x.device)
    else:
        y = shape.empty(oc, x.device)
    block_m, block_n, stages, warps = blocks or BLOCKS
    if blocks is None and oc <= 64:
        block_n = 64
    step = block_k(channels)
    tiles = triton.cdiv(shape.pixels, block_m) * triton.cdiv(oc, block_n)
    args = (
        TensorDescriptor.from_tensor(x, [block_m, step]),
        TensorDescriptor.from_tensor(weight, [block_n, step]),
        scale,
        bias,
        y,
        1.0 / out_scale if out_scale else 1.0,
        shape.pixels,
        shape.height + 2,
        shape.width + 2,
        channels,
        oc,
        shape.margin,
    )
    kwargs = dict(
        RELU=relu,
        INT8_OUT=out_scale is not None,
        BLOCK_M=block_m,
        BLOCK_N=block_n,
        BLOCK_K=step,
        GROUP_M=8,
        num_stages=stages,
        num_warps=warps,
    )
    storable = out_scale is not None and oc % 16 == 0
    sms = torch.cuda.get_device_properties(x.device).multi_processor_count if x.is_cuda else 1
    programs = min(tiles, sms * PROGRAMS_PER_SM)
    if persistent is None:
        persistent = PERSISTENT_INT8_OUT and storable and persistent_pays(tiles, programs)
    if persistent:
        if out_scale is None:
            raise ValueError("the persistent kernel writes int8 (out_scale set), not float16")
        if not storable:
            raise ValueError(f"the persistent kernel needs multiples of 16 channels, not {oc}")
        y_desc = TensorDescriptor.from_tensor(y, [block_m, block_n])
        _conv3x3_persistent_kernel[(programs,)](*args, y_desc, PROGRAMS=programs, **kwargs)
    else:
        _conv3x3_kernel[(tiles,)](*args, **kwargs)
    return y if out_scale is not None else shape.interior(y)
