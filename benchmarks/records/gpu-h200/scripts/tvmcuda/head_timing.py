"""The demo head on one GPU: the TVM CUDA builds (fp16, int8) against PyTorch (fp32, fp16), batch
1 (the builds' compiled batch), on the same preprocessed evaluation images, interleaved rounds
(retinaflow.speed.time_rounds). Every runner is opened by retinaflow.runtime.open_runner, as the
infer rule opens it; each call returns finished maps (PyTorch synchronizes its stream, TVM copies
its maps to the host). Also: TVM's VM alone on an input already on the GPU (no copies), and the
lowest cosine of the 10 maps against PyTorch fp32.

    python3 .devrun/tvmcuda/head_timing.py --json $OUT/head_timing.json [--rounds 50]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import yaml


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--images", type=int, default=4)
    p.add_argument("--json", type=Path, default=Path("head_timing.json"))
    p.add_argument("--device", default="cuda", help="cpu: a local check of this script")
    p.add_argument(
        "--builds",
        default="fp16=builds/demo/fp16/module.so,int8=builds/demo/int8/module.so",
        help="the TVM builds, variant=path,...",
    )
    args = p.parse_args()

    import numpy as np
    import torch

    from retinaflow.data.annotations import image_records, load_annotations
    from retinaflow.data.images import preprocess_image
    from retinaflow.export import compare_outputs
    from retinaflow.runtime import open_runner
    from retinaflow.speed import time_rounds

    config = yaml.safe_load(Path("config/config.yaml").read_text())
    demo = yaml.safe_load(Path("config/demo.yaml").read_text())
    model = {k: demo["model"][k] for k in ("arch", "num_classes", "image_size")}
    size = model["image_size"]
    records = image_records(load_annotations("data/demo/annotations.json"), "data/demo/images")
    batches = [
        preprocess_image(r.path, (size, size), demo["preprocess"]["resize_kernel"])[None]
        for r in records[: args.images]
    ]
    weights = "models/demo/weights.pt"
    torch_settings = config["pytorch"]
    runners, opened = {}, {}
    tvm_builds = [item.partition("=") for item in args.builds.split(",") if item]
    for name, variant, path in [
        ("torch fp32", "torch", weights),
        ("torch-fp16", "torch-fp16", weights),
        *[(f"tvm {v}", v, path) for v, _, path in tvm_builds],
    ]:
        started = time.perf_counter()
        try:
            runners[name] = open_runner(
                variant, path, model, 4, args.device, 1, torch_settings=torch_settings
            )
        except Exception as err:  # one that fails is reported; the others are still timed
            print(f"{name}: could not open: {type(err).__name__}: {err}", flush=True)
            continue
        opened[name] = time.perf_counter() - started
        print(f"opened {name} in {opened[name]:.1f} s", flush=True)

    def host(maps):
        return [m.float().cpu().numpy() if hasattr(m, "cpu") else np.asarray(m) for m in maps]

    reference = host(runners["torch fp32"](batches[0])) if "torch fp32" in runners else None
    cosine = {}
    for name, run in runners.items():
        maps = host(run(batches[0]))
        if reference is not None:
            cosine[name] = min(m["cosine"] for m in compare_outputs(reference, maps).values())
    if not runners:
        raise SystemExit("no runner could be opened")
    times = time_rounds(runners, batches, args.rounds, args.warmup)

    # TVM's VM alone: the input already on the GPU, the outputs left there, then a device sync
    vm_only = {}
    for name in [n for n in runners if n.startswith("tvm")]:
        runner = runners[name]
        x = runner._tensor(np.ascontiguousarray(batches[0], dtype=np.float32), runner.tvm_device)
        for _ in range(args.warmup):
            runner.main(x)
        runner.tvm_device.sync()
        values = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            runner.main(x)
            runner.tvm_device.sync()
            values.append(time.perf_counter() - started)
        vm_only[name] = values

    base = statistics.median(times["torch fp32"]) if "torch fp32" in times else None
    rows = {}
    print(f"\n{'head (batch 1)':<22}{'median ms':>10}{'min ms':>9}{'/ torch fp32':>13}"
          f"{'VM-only ms':>11}{'cos min':>10}")
    for name, values in times.items():
        median = statistics.median(values)
        vm = statistics.median(vm_only[name]) if name in vm_only else None
        rows[name] = {
            "median_ms": 1e3 * median,
            "min_ms": 1e3 * min(values),
            "ratio_to_torch_fp32": median / base if base else None,
            "vm_only_median_ms": 1e3 * vm if vm is not None else None,
            "cosine_min_vs_torch_fp32": cosine.get(name),
            "open_s": opened[name],
        }
        print(
            f"{name:<22}{1e3 * median:10.3f}{1e3 * min(values):9.3f}"
            f"{(median / base if base else float('nan')):12.2f}x"
            f"{(1e3 * vm if vm is not None else float('nan')):11.3f}"
            f"{cosine.get(name, float('nan')):10.5f}"
        )
    record = {
        "what": "the demo head alone, batch 1, 320x320; runner calls (host batch in, finished "
        "maps out), interleaved rounds; vm_only: TVM's VM on a device input, then a sync",
        "rounds": args.rounds,
        "warmup": args.warmup,
        "images": len(batches),
        "device_name": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "pytorch_settings": torch_settings,
        "runners": {n: getattr(r, "settings", lambda: {})() for n, r in runners.items()},
        "heads": rows,
    }
    args.json.write_text(json.dumps(record, indent=1, default=str))


if __name__ == "__main__":
    main()
