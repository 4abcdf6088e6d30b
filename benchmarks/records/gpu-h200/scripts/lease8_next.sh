# Ready for the next lease (not run yet): from the repository root, on nvidia-h200, carrying
# .whl. About 4 minutes.
# 1. int8_1x1_bench.py: the trunk's stride-1 1x1s as an int8 Triton GEMM (the head kernel's
#    epilogue: scale, bias, residual, ReLU, quantization) against cuDNN's fused fp16 calls:
#    the first number an int8 trunk needs (checked in Triton's interpreter, --check-only).
# 2. head_prof7.py and LoadGen Offline torch-int8 with perf.workers 2 then 4, on one machine:
#    the seventh lease's last LoadGen figure (963.3, copy_interior) ran on a machine whose
#    post-processing took 1.035 ms an image against 0.836 on the machine of the 1,017.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src:/tmp/site
O=${OUT:-/tmp/out}; mkdir -p $O
S=benchmarks/records/gpu-h200/scripts
nvidia-smi -L
python3 $S/int8_1x1_bench.py 2>&1 | tee $O/int8-1x1-bench.txt
python3 $S/head_prof7.py 32 2>&1 | grep -v Warn | grep -v _warn_once > $O/head-profile-lease8.txt; head -3 $O/head-profile-lease8.txt
TAG=lease8 WORKERS="2 4" bash $S/lease7_d.sh
