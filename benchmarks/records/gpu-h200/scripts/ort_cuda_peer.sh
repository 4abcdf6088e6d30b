# ONNX Runtime's CUDA provider as the peer (issue 13), run in the eighth lease.
# onnxruntime-gpu 1.31.1 (built for CUDA 13: libcublas.so.13, cuDNN 9, the libraries the
# H200 machine's torch 2.11+cu130 brings) is a 256 MB wheel: over one call's 64 MiB carry
# (which also counts the 12 MB working tree), so it travels in five parts of 50 MiB, one a
# call, on one warm machine (a call within 30 s of the last). Made here with
#   pip download --no-deps --python-version 3.12 --only-binary=:all: \
#       --platform manylinux_2_28_x86_64 -d /tmp/ortgpu onnxruntime-gpu==1.31.1
#   cd .devrun/ort && split -b 50M -d -a 2 /tmp/ortgpu/onnxruntime_gpu-1.31.1-*.whl part.
#   pip download --no-deps (the same platform flags) -d .devrun/ort/deps \
#       flatbuffers coloredlogs protobuf sympy mpmath onnx
# Calls (nvidia-h200): carry [".devrun/ort/part.00"] with
# `mkdir -p /tmp/ortparts && cp .devrun/ort/part.* /tmp/ortparts/` (a carried path is removed
# there by the next call's carry; /tmp stays while the machine is warm), then part.01 to
# part.04 the same way, then carry [".whl", ".devrun/ort/deps"] with
# `bash benchmarks/records/gpu-h200/scripts/ort_cuda_peer.sh`. About 5 minutes.
set -e
WHEEL=/tmp/onnxruntime_gpu-1.31.1-cp312-cp312-manylinux_2_28_x86_64.whl
cat /tmp/ortparts/part.0* > $WHEEL
echo "05d548956197b9d01f59b625de740e0d6be3593f874e241a12dc0362650ecdf7  $WHEEL" | sha256sum -c
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/ort $WHEEL .devrun/ort/deps/*.whl > /dev/null 2>&1
export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src:/tmp/site:/tmp/ort
O=${OUT:-/tmp/out}; mkdir -p $O
nvidia-smi -L
# torch first: its CUDA 13 libraries, loaded, serve ONNX Runtime's provider
python3 -c "import torch, onnxruntime as ort; print('onnxruntime', ort.__version__, ort.get_available_providers())"
python3 -m retinaflow.benchmarks gpu --arch resnext50_32x4d_fpn --size 800 --batch-sizes 32 \
    --variants torch-fp16 torch-int8 onnx onnx-fp16 --compile default --cuda-graphs on \
    --fuse-batch-norm on --iters 10 --json $O/benchmark-gpu-ort-peer.json 2>&1 | grep -v Warn | tee $O/benchmark-gpu-ort-peer.txt
