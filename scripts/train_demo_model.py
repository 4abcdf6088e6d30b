#!/usr/bin/env python3
"""Train the demo RetinaNet on the synthetic demo set and report its val mAP.

This is how resources/demo/retinanet_demo.pt was made (see resources/demo/README.md):

    PYTHONPATH=src python scripts/train_demo_model.py \\
        --out resources/demo/retinanet_demo.pt --device cuda
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from retinaflow.demo.training import evaluate_demo_model, train_demo_model

ROOT = Path(__file__).resolve().parents[1]


def demo_config() -> dict:
    """config/demo.yaml merged over config/config.yaml, as the demo DAG runs with it."""
    import yaml
    from snakemake.utils import update_config

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    update_config(config, yaml.safe_load((ROOT / "config" / "demo.yaml").read_text()))
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="where to write the state dict (.pt)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--num-train", type=int, default=4000, help="train split images")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3, help="AdamW peak learning rate")
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--warmup-steps", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None, help="data generation processes")
    parser.add_argument("--num-val", type=int, default=200, help="val images to score (0: skip)")
    parser.add_argument("--eval-device", default=None, help="device for scoring (default --device)")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, flush=True)

    start = time.perf_counter()
    train_demo_model(
        args.out,
        num_train=args.num_train,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        warmup_steps=args.warmup_steps,
        device=args.device,
        seed=args.seed,
        workers=args.workers,
        log=log,
    )
    log(f"total wall time (data + training): {time.perf_counter() - start:.0f} s")
    if args.num_val > 0:
        result = evaluate_demo_model(
            args.out,
            max_detections=demo_config()["score"]["max_detections"],
            num_val=args.num_val,
            device=args.eval_device or args.device,
        )
        log("\n".join(result["coco_summary"]) or "no detections")
        log(f"val bbox mAP@[.5:.95] on {args.num_val} images: {result['bbox_mAP']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
