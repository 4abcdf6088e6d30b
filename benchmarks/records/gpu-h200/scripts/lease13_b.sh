# Ran in the thirteenth lease (lease13-b.txt), after lease13_next.sh. From the repository root
# on nvidia-h200, carrying .whl; ~7 minutes. An int8 trunk's two halves against cuDNN's fp16,
# each with its achieved TB/s or the floor of the bytes it must move:
# (1) the stride-1 1x1s as a persistent int8 GEMM (int8_1x1_persistent.py: TMA residual and
# output, the loop flattened; also the eighth lease's kernel);
# (2) the stride-1 grouped 3x3s in int8 on triton_conv's padded layout, merged groups of 32, 64
# or 128 channels (int8_grouped_probe.py).
# Near their floors, the int8 trunk is the lever for the last 1.4x (benchmarks/gpu-h200.md).
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src:/tmp/site
nvidia-smi -L
timeout 270 python3 benchmarks/records/gpu-h200/scripts/int8_1x1_persistent.py 2>&1 | grep -v Warn
timeout 240 python3 benchmarks/records/gpu-h200/scripts/int8_grouped_probe.py 2>&1 | grep -v Warn
