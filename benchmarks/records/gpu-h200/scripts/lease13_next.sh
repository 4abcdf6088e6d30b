# Ran in the thirteenth lease (lease13-next.txt). From the repository root on nvidia-h200,
# carrying .whl; ~4 minutes (then lease13_b.sh). (1) The trunk conv by conv (trunk_attr.py: GPU ms, bytes, multiply-adds,
# achieved TB/s and TFLOPS a module, totals by kind), to say which of the twelfth lease's 8.03 ms
# of cuDNN implicit GEMMs are the 1x1s with their residual add, the grouped 3x3s or the FPN's.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src:/tmp/site
nvidia-smi -L
python3 benchmarks/records/gpu-h200/scripts/trunk_attr.py 2>&1 | grep -v "Warn\|USDT"
# (2) The int8 kernel's tiles with 2 stages (int8_tiles2.py: two blocks of 8 warps a
# multiprocessor for the 128x256 and 256x128 tiles; ~2 minutes). Where one wins on both shapes
# with equal bytes, set triton_conv.BLOCKS to it and time the head (lease12_d.sh's loop).
timeout 240 python3 benchmarks/records/gpu-h200/scripts/int8_tiles2.py 2>&1 | grep -v Warn
