"""Tune the demo model's int8 head for one ISA class and write the pruned database that the
package ships (src/retinaflow/resources/tuning/demo-int8-320-<isa>/): what `make demo` then
compiles with, untuned by the user, on any CPU of that class (retinaflow.shipped_tuning).

    .venv/bin/python scripts/tune_shipped_database.py --isa avx512-vnni   # on a VNNI CPU
    .venv/bin/python scripts/tune_shipped_database.py --isa avx2

The QDQ model comes from the demo DAG (snakemake, config/demo.yaml). Candidates are measured on
this machine, so it must run the class's code: avx512-vnni needs a VNNI CPU (tuned for the
host); avx2 is tuned for LLVM's haswell, which every AVX2 CPU runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QDQ_MODEL = "models/demo/head.int8-max.onnx"
INPUT_SHAPE = [1, 3, 320, 320]


def demo_config() -> dict:
    """config/demo.yaml merged over config/config.yaml, as the demo DAG runs with it."""
    import yaml
    from snakemake.utils import update_config

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    update_config(config, yaml.safe_load((ROOT / "config" / "demo.yaml").read_text()))
    return config


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--isa", required=True, choices=["avx512-vnni", "avx2"])
    p.add_argument("--trials-per-task", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="default: the package's resources/tuning/<name>")
    p.add_argument("--dry-run", action="store_true", help="print the plan, tune nothing")
    return p.parse_args(argv)


def tuning_target(isa: str) -> dict:
    """The target candidates are built for; refuses a class this CPU cannot run."""
    from retinaflow.compile import default_target, resolve_target
    from retinaflow.shipped_tuning import ISA_AVX2, ISA_VNNI, target_isa

    host = default_target()
    host_isa = target_isa(resolve_target(host))
    if isa == ISA_VNNI:
        if host_isa != ISA_VNNI:
            sys.exit(f"this CPU ({host.get('mcpu')}) has no AVX-512 VNNI: it cannot measure {isa}")
        return host
    if host_isa not in (ISA_VNNI, ISA_AVX2):
        sys.exit(f"this CPU ({host.get('mcpu')}) has no AVX2: it cannot measure {ISA_AVX2}")
    return {"kind": "llvm", "mcpu": "haswell", "num-cores": host["num-cores"]}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    name = f"demo-int8-{INPUT_SHAPE[-1]}-{args.isa}"
    snakemake = [sys.executable, "-m", "snakemake", "--cores", "2", QDQ_MODEL]
    snakemake += ["--configfile=config/demo.yaml"]
    if args.dry_run:
        print(f"would make {QDQ_MODEL}: {' '.join(snakemake)}")
        print(f"would tune it for {args.isa}, {args.trials_per_task} trials per convolution task")
        print(f"would write {args.out or 'src/retinaflow/resources/tuning/' + name}")
        return 0
    subprocess.run(snakemake, cwd=ROOT, check=True)

    from retinaflow.compile import resolve_target
    from retinaflow.io import atomic_path, read_json, write_json
    from retinaflow.shipped_tuning import META, prune_into, shipped_root
    from retinaflow.tuning import tune_head

    os.environ.setdefault("TVM_NUM_THREADS", str(len(os.sched_getaffinity(0))))
    target = tuning_target(args.isa)
    out = args.out or shipped_root() / name
    compile_config = demo_config()["compile"]
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch) / "tuning"
        meta = tune_head(
            ROOT / QDQ_MODEL,
            work,
            target=target,
            input_shape=INPUT_SHAPE,
            precision="int8",
            fp16_accumulate=compile_config["fp16_accumulate"],
            trials_per_iter=compile_config["tuning"]["trials_per_iter"],
            seed=args.seed,
            tasks=compile_config["tuning"]["tasks"],
            use_shipped=False,  # from scratch: this makes the shipped database
            trials_per_task=args.trials_per_task,
        )
        with atomic_path(out) as tmp:
            prune_into(work, tmp, resolve_target(target))
            write_json(
                tmp / META,
                {
                    "model": "demo",
                    "isa": args.isa,
                    "precision": "int8",
                    "input_shape": INPUT_SHAPE,
                    "tuned_on": f"{cpu_name()}, target {target}",
                    "trials": meta["trials"],
                    "trials_per_task": args.trials_per_task,
                    "tasks": meta["tasks"],
                    "task_set": meta["task_set"],
                    "module_equality": meta["module_equality"],
                    "tuning_seconds": meta["tuning_seconds"],
                    "seed": args.seed,
                    "command": f"scripts/tune_shipped_database.py --isa {args.isa} "
                    f"--trials-per-task {args.trials_per_task} --seed {args.seed}",
                },
            )
    print(f"wrote {out}: {read_json(out / META)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
