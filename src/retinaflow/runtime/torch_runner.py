"""PyTorch (variants `torch`, `torch-fp16`, `torch-bf16`, `torch-int8`): the checkpoint run
directly, no export in between, in the variant's dtype (torch-int8: model/int8_head.py, its
trunk in float16 and its heads, with the FPN's lower output convs, in int8 Triton kernels).

On the CPU the runner takes numpy and returns numpy, float32, as it always has (plain eager,
NCHW: the fp32 outputs are those of `head(x)` bit for bit). On CUDA it is built for throughput
(config key `torch`, see `TorchOptions`): the head cast to fp16/bf16, channels-last memory,
the backbone's frozen batch norms folded into its convolutions and each conv's ReLU (and a
residual block's add) in the same cuDNN call, the FPN's conv biases left to the compiler to
fuse (model/fused_backbone.py), optionally `torch.compile` (one fixed batch,
`dynamic=False`) and a CUDA graph of the fixed-shape call replayed from static buffers (a
graph per calling thread; `lend` hands out its outputs without a copy). A
batch shorter than the fixed one is padded by repeating its last image and the padding
dropped from the maps; a longer one runs in chunks.
Input: numpy or a torch tensor (host or device); host data goes through a pinned staging
buffer and a non-blocking copy. Output on CUDA: the 10 maps as torch tensors on the device,
in the head's dtype (post-processing can stay there), after the stream's synchronize, so that
a caller's wall-clock stage timers see the GPU's time in the head, not in whatever follows.

fp16/bf16 on the CPU run (slowly, unless the CPU has AVX-512 FP16/BF16 or AMX): the same
casts as on the GPU, so that the CPU tests exercise the GPU path's code.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..errors import DeviceError
from ..model.fused_backbone import defer_conv_biases, fuse_backbone, merge_narrow_groups
from ..model.head import HeadMaps
from . import is_cuda, split_device

log = logging.getLogger("retinaflow")

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
COMPILE_MODES = ("none", "default", "max-autotune", "reduce-overhead")
# torch.compile modes that capture CUDA graphs themselves (inductor's cudagraph trees)
COMPILE_MODES_WITH_GRAPHS = ("max-autotune", "reduce-overhead")


def torch_device(device: str) -> torch.device:
    """The torch device for a name (`cpu`, `cuda`, `cuda:N`), or a DeviceError when it is not
    on this machine."""
    kind, index = split_device(device)
    if kind == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            "device 'cuda' asked for, but PyTorch finds no CUDA GPU on this machine "
            f"(torch {torch.__version__}, torch.cuda.is_available() is False): run on a GPU "
            "node, or set the device to cpu"
        )
    if kind not in ("cpu", "cuda"):
        raise DeviceError(f"PyTorch runs on 'cpu' or 'cuda' here, not {device!r}")
    if kind == "cuda" and index >= torch.cuda.device_count():
        raise DeviceError(
            f"device {device!r} asked for, but PyTorch sees {torch.cuda.device_count()} GPU(s) "
            "(CUDA_VISIBLE_DEVICES): use one of those"
        )
    return torch.device(device)


@dataclass(frozen=True)
class TorchOptions:
    """How a PyTorch head runs (the config's PyTorch settings give them for CUDA; see
    torch_options)."""

    dtype: str = "float32"  # float32 | float16 | bfloat16: the head's weights and activations
    channels_last: bool = False  # NHWC memory format (the tensor cores' layout)
    compile: str = "none"  # a torch.compile mode, or none (eager)
    cuda_graphs: bool = False  # capture the fixed-shape call once, replay it (CUDA only)
    deterministic: bool = False  # cuDNN's deterministic kernels, no autotuning (CUDA only)
    fuse_batch_norm: bool = False  # the backbone's conv, frozen norm, ReLU (+ add): one call

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")
        if self.compile not in COMPILE_MODES:
            raise ValueError(f"compile must be one of {COMPILE_MODES}, got {self.compile!r}")


def torch_options(settings: dict | None, dtype: str, device: str) -> TorchOptions:
    """The options a variant runs with: on CUDA the PyTorch runner's settings; on the CPU plain
    eager NCHW (the CPU's fp32 outputs stay those of eager PyTorch, bit for bit) unless
    `apply_on_cpu` is set. `settings` None: plain eager in `dtype` anywhere."""
    if not settings or (not is_cuda(device) and not settings["apply_on_cpu"]):
        return TorchOptions(dtype=dtype)
    return TorchOptions(
        dtype=dtype,
        channels_last=settings["channels_last"],
        compile=settings["compile"],
        cuda_graphs=settings["cuda_graphs"],
        deterministic=settings["deterministic"],
        fuse_batch_norm=settings["fuse_batch_norm"],
    )


def cuda_graph_decision(device: str, options: TorchOptions) -> tuple[bool, str]:
    """Whether the runner captures a CUDA graph, and why (for the records): only on CUDA, only
    when asked, and not under a compile mode that captures graphs itself."""
    if not is_cuda(device):
        return False, f"off (CUDA graphs need a CUDA device, this runs on {device})"
    if not options.cuda_graphs:
        return False, "off (cuda_graphs is false)"
    if options.compile in COMPILE_MODES_WITH_GRAPHS:
        return False, f"off (compile mode {options.compile} captures its own graphs)"
    return True, "on"


def fusion_decision(device: str, options: TorchOptions) -> tuple[bool, str]:
    """Whether the runner folds and fuses the backbone (model/fused_backbone.py), and why:
    when asked, except on CUDA with deterministic kernels, which PyTorch's fused cuDNN calls
    do not promise (they pass cuDNN deterministic=false, ATen's ConvShared.cpp)."""
    if not options.fuse_batch_norm:
        return False, "off (fuse_batch_norm is false)"
    if is_cuda(device) and options.deterministic:
        return False, "off (deterministic: the fused cuDNN calls take no deterministic flag)"
    return True, "on"


def merges_groups(device: str, fused: bool) -> bool:
    """Whether the runner merges the fused trunk's narrow groups (fused_backbone.
    merge_narrow_groups): on CUDA, where cuDNN runs the merged convolutions faster; the CPU
    would pay for their extra multiplications."""
    return fused and is_cuda(device)


def variant_dtype(variant: str) -> str:
    """torch -> float32, torch-fp16 -> float16, torch-bf16 -> bfloat16; torch-int8 -> float16
    (its trunk's; its heads are int8)."""
    suffix = variant.partition("-")[2]
    names = {"": "float32", "fp16": "float16", "bf16": "bfloat16", "int8": "float16"}
    if not variant.startswith("torch") or suffix not in names:
        raise ValueError(
            f"not a PyTorch variant: {variant!r} (torch, torch-fp16, torch-bf16, torch-int8)"
        )
    return names[suffix]


def device_name(device: str) -> str:
    """The name of the device that runs: the GPU's (torch.cuda.get_device_name; `cuda:N` the
    N-th the process sees) or the CPU's."""
    if is_cuda(device):
        return torch.cuda.get_device_name(torch_device(device))
    from . import cpu_model

    return cpu_model()


class TorchRunner:
    """`batch_size`: the fixed batch of a compiled or graphed head (padding and chunks keep
    every call at it); eager heads take any batch. `keep_on_device` (default: on CUDA) returns
    the maps as device tensors, in the head's dtype (the post-processing converts the few
    values it keeps), instead of float32 numpy. A call is safe from several threads: each
    copies its input to the device on its own current CUDA stream (a pinned staging buffer
    per thread), then the calls take turns at the head (each thread replays a CUDA graph of
    its own), so that one thread's copy, and what follows its call (post-processing), run
    beside another's head. The input may come in the head's dtype (`dtype`: the LoadGen
    sample library keeps its samples so, halving the copy); any other is cast on the
    device."""

    def __init__(
        self,
        head: HeadMaps,
        threads: int = 1,
        device: str = "cpu",
        options: TorchOptions | None = None,
        batch_size: int | None = None,
        keep_on_device: bool | None = None,
    ):
        torch.set_num_threads(threads)
        self.options = options or TorchOptions()
        self.torch_device = torch_device(device)
        self.device = device
        self.dtype = DTYPES[self.options.dtype]
        self.memory_format = (
            torch.channels_last if self.options.channels_last else torch.contiguous_format
        )
        self.graphs, self.graphs_reason = cuda_graph_decision(device, self.options)
        fixed = self.options.compile != "none" or self.graphs
        if fixed and not batch_size:
            raise ValueError("a compiled or CUDA-graphed head needs its fixed batch_size")
        self.batch_size = batch_size if fixed else None
        on_cuda = self.torch_device.type == "cuda"  # cuda and cuda:N (a shard's GPU) alike
        self.keep_on_device = on_cuda if keep_on_device is None else keep_on_device
        if on_cuda:
            # one input shape: pick the fastest kernels, unless the same maps in every process
            # matter more (cuDNN's autotuning may pick another kernel, with other rounding, in
            # each process: GPU shards would then not gather byte-identically)
            torch.backends.cudnn.benchmark = not self.options.deterministic
            torch.backends.cudnn.deterministic = self.options.deterministic

        head = head.eval()
        self.fused, self.fused_reason = fusion_decision(device, self.options)
        self.fused_modules = self.merged_groups = 0
        if self.fused:  # folded in float32, before the cast
            trunk = getattr(head, "trunk", head)  # the int8 head's float trunk
            self.fused_modules = fuse_backbone(trunk.backbone.body)
            self.fused_modules += defer_conv_biases(trunk.backbone.fpn)
            if merges_groups(device, self.fused):
                self.merged_groups = merge_narrow_groups(trunk.backbone.body)
        head = head.to(self.torch_device, dtype=self.dtype)
        self.head = head.to(memory_format=self.memory_format)
        self.forward = self.head
        if self.options.compile != "none":
            mode = None if self.options.compile == "default" else self.options.compile
            if hasattr(self.head, "compiled"):  # the int8 head: its float trunk only
                self.forward = self.head.compiled(mode)
            else:
                self.forward = torch.compile(self.head, mode=mode, dynamic=False)
        # per calling thread: a pinned staging buffer (CUDA), and its own CUDA graph
        # (graph, static input, static outputs), so that a thread's maps stay its own until
        # its next call (lend)
        self._local = threading.local()
        self._lock = threading.Lock()

    def settings(self) -> dict:
        """What ran, for the records: device and its name, dtype, layout, compile, graphs."""
        record = {
            "device": self.device,
            "device_name": device_name(self.device),
            **asdict(self.options),
            "cuda_graphs": self.graphs,
            "cuda_graphs_reason": self.graphs_reason,
            "fuse_batch_norm": self.fused,
            "fuse_batch_norm_reason": self.fused_reason,
            "fused_modules": self.fused_modules,
            "merged_groups": self.merged_groups,
            "fixed_batch": self.batch_size,
            "torch": torch.__version__,
        }
        if hasattr(self.head, "quantized"):
            record["heads"] = "int8 (Triton implicit-GEMM convolutions)"
        if self.torch_device.type == "cuda":
            record["cuda"] = torch.version.cuda
            record["cudnn"] = torch.backends.cudnn.version()
        return record

    # --- input ------------------------------------------------------------------------------

    def to_device(self, images) -> torch.Tensor:
        """numpy or a tensor -> the head's input on its device: float32 NCHW there, copied from
        host memory through a pinned buffer without blocking the host (on CUDA), then cast to
        the head's dtype and memory format on the device. A list of CHW samples (the LoadGen
        sample library's pinned ones) is copied sample by sample into the device batch."""
        if isinstance(images, (list, tuple)):
            return self._gather(images)
        x = (
            torch.from_numpy(np.ascontiguousarray(images))
            if isinstance(images, np.ndarray)
            else images
        )
        if x.device.type != self.torch_device.type:  # (cuda:0 is not equal to cuda)
            if self.torch_device.type == "cuda" and not x.is_pinned():
                staging = getattr(self._local, "staging", None)
                if staging is None or staging.shape != x.shape or staging.dtype != x.dtype:
                    staging = self._local.staging = torch.empty_like(x, pin_memory=True)
                # this thread's previous call synchronized: its copy from the buffer is done
                x = staging.copy_(x)
            x = x.to(self.torch_device, non_blocking=True)
        return x.to(dtype=self.dtype, memory_format=self.memory_format)

    def _gather(self, samples) -> torch.Tensor:
        """CHW samples (pinned on CUDA: each copy asynchronous) -> one device batch, in the
        head's dtype and memory format."""
        first = torch.as_tensor(samples[0])
        shape = (len(samples), *first.shape)
        batch = torch.empty(shape, dtype=first.dtype, device=self.torch_device)
        for slot, sample in zip(batch, samples, strict=True):
            slot.copy_(torch.as_tensor(sample), non_blocking=True)
        return batch.to(dtype=self.dtype, memory_format=self.memory_format)

    # --- the call ---------------------------------------------------------------------------

    def __call__(self, images) -> list:
        return self._call(images, lend=False)

    def lend(self, images) -> list:
        """As a call, but where the maps stay on the device, a CUDA graph's own output tensors
        rather than copies of them: valid until this thread's next call, which overwrites
        them (each thread replays a graph of its own). For a caller done with a batch's maps
        before its next batch (the Detector); saves copying them (the int8 head's call 24.5
        -> 22.9 ms a batch of 32 at 800x800 on an H200, benchmarks/gpu-h200.md)."""
        return self._call(images, lend=self.keep_on_device)

    def _call(self, images, lend: bool) -> list:
        with torch.inference_mode():
            # the copy in runs on this thread's stream before the turn: beside another
            # thread's head, on the copy engine
            x = self.to_device(images)
            with self._lock:
                maps = self.run_on_device(x, lend=lend)
                if self.torch_device.type == "cuda":  # this thread's stream: the call is done
                    torch.cuda.current_stream(self.torch_device).synchronize()
        if self.keep_on_device:
            return maps
        return [m.float().cpu().numpy() for m in maps]

    def run_on_device(self, x: torch.Tensor, lend: bool = False) -> list[torch.Tensor]:
        """The 10 maps, in the head's dtype, on the device, for an input already there
        (to_device); tensors of their own, not a graph's or compile's buffers (`lend`: this
        thread's graph's outputs where the batch is one call, see lend())."""
        count, fixed = len(x), self.batch_size
        if fixed is None or count == fixed:
            return self._fixed_call(x, lend)
        chunks = []
        calls = -(-count // fixed)
        for start in range(0, count, fixed):
            chunk = x[start : start + fixed]
            short = fixed - len(chunk)
            if short:  # repeat the last image: the compiled or captured shape
                chunk = torch.cat([chunk, chunk[-1:].expand(short, *chunk.shape[1:])])
                chunk = chunk.contiguous(memory_format=self.memory_format)
            maps = self._fixed_call(chunk, lend and calls == 1)  # the next call overwrites
            chunks.append([m[: fixed - short] for m in maps] if short else maps)
        if len(chunks) == 1:
            return chunks[0]
        return [torch.cat(parts) for parts in zip(*chunks)]

    def _fixed_call(self, x: torch.Tensor, lend: bool = False) -> list[torch.Tensor]:
        if self.options.compile in COMPILE_MODES_WITH_GRAPHS:
            # inductor's CUDA graphs overwrite their outputs on the next run: a new step, and
            # the maps copied out
            torch.compiler.cudagraph_mark_step_begin()
            return [m.clone() for m in self.forward(x)]
        if not self.graphs:
            return list(self.forward(x))
        captured = getattr(self._local, "graph", None)
        if captured is None:
            try:
                captured = self._local.graph = self._capture(x)
            except Exception as err:  # recorded (settings()) and logged; the head runs as it is
                log.warning("CUDA graph capture failed, running without graphs: %s", err)
                self.graphs, self.graphs_reason = False, f"off (capture failed: {err})"
                return list(self.forward(x))
        graph, static_in, static_out = captured
        static_in.copy_(x)
        graph.replay()
        if lend:
            return list(static_out)
        # copies: the static outputs are overwritten by this thread's next replay
        return [m.clone() for m in static_out]

    def _capture(self, x: torch.Tensor):
        """Warm up on a side stream (cuDNN's autotuning, compile), then capture one call: a
        graph for the calling thread, in a memory pool of its own. Other threads' CUDA calls
        go on meanwhile (another thread's post-processing: thread_local capture mode)."""
        static_in = x.clone().contiguous(memory_format=self.memory_format)
        stream = torch.cuda.Stream(self.torch_device)
        stream.wait_stream(torch.cuda.current_stream(self.torch_device))
        with torch.cuda.stream(stream):
            for _ in range(3):
                self.forward(static_in)
        torch.cuda.current_stream(self.torch_device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            static_out = self.forward(static_in)
        log.info(
            "PyTorch head captured as a CUDA graph, batch %d (thread %s)",
            len(x),
            threading.current_thread().name,
        )
        return graph, static_in, static_out
