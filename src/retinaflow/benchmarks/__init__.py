"""The benchmarks, one entry point: `python -m retinaflow.benchmarks KIND [options]`.

    builds     every build of the head timed side by side (builds.py)
    runtimes   ONNX Runtime fp32/int8, PyTorch and TVM, then the host stages (runtimes.py)
    gpu        the PyTorch variants (and ORT CUDA) on a GPU: copy, head, post-processing (gpu.py)
    download   the image fetcher, parallel threads vs one (download.py)
    postprocess  post-processing of a batch, host vs batched on a device (postprocess.py)

Each kind keeps its own options (`KIND --help`), `--dry-run` among them. The timing helpers the
kinds share are in timing.py; the recorded results are in the project's benchmarks/*.md.
"""
