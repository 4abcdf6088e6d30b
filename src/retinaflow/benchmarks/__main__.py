"""`python -m retinaflow.benchmarks KIND [options]`: run one benchmark (see __init__)."""

from __future__ import annotations

import importlib
import sys

KINDS = {
    "builds": "every build of the head timed side by side",
    "runtimes": "ONNX Runtime fp32/int8, PyTorch and TVM, then the host stages per image",
    "gpu": "PyTorch fp32/fp16/bf16 (compile, CUDA graphs) and ORT CUDA on a GPU, stage by stage",
    "download": "the image fetcher against a local HTTP server, parallel vs one thread",
    "postprocess": "post-processing of a batch: the host path vs the batched one",
}


def usage() -> str:
    lines = ["usage: python -m retinaflow.benchmarks KIND [options]   (KIND --help: its options)"]
    lines += [f"  {kind:<10} {what}" for kind, what in KINDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    kind, rest = argv[0], argv[1:]
    if kind not in KINDS:
        print(f"unknown benchmark {kind!r}\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"retinaflow.benchmarks.{kind}")
    sys.argv = [f"python -m retinaflow.benchmarks {kind}", *rest]  # argparse's prog name
    return module.main(rest) or 0


if __name__ == "__main__":
    sys.exit(main())
