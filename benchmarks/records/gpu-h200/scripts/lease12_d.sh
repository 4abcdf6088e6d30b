# Twelfth lease, third call: the persistent int8 kernel on P3's towers only
# (triton_conv.persistent_pays: each program looping over >= 8 tiles; lease12_b.sh found it
# faster on P3 alone and the head no faster with it on every level), the whole head with
# PERSISTENT_INT8_OUT off/on in one code; then where the head's time goes now (head_prof7.py:
# the kernels by name, without CUDA graphs). From the repository root on nvidia-h200, carrying
# .whl; ~6 minutes.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src:/tmp/site
O=${OUT:-/tmp/out}; mkdir -p models $O
S=benchmarks/records/gpu-h200/scripts
nvidia-smi -L
[ -f models/spread800.pt ] || python3 scripts/random_weights.py models/spread800.pt --class-bias -1 --class-spread 1
printf 'model:\n  name: spread800\n  weights: {source: local, path: models/spread800.pt}\n' > /tmp/spread.yaml
C="--configfile config/demo.yaml config/gpu.yaml benchmarks/records/gpu-h200/mlperf-random-800.yaml /tmp/spread.yaml"
python3 -m snakemake models/spread800/torch-int8.pt data/demo/annotations.json --cores 16 $C > $O/lease12-d-build.txt 2>&1 || { tail -30 $O/lease12-d-build.txt; exit 1; }
A="gpu --arch resnext50_32x4d_fpn --size 800 --batch-sizes 32 --variants torch-int8 --compile default --cuda-graphs on --iters 20 --weights models/spread800.pt --images data/demo/images"
for p in off on off on; do echo "== persistent int8 towers on P3 $p"; timeout 120 python3 -c "
import sys, runpy
import retinaflow.triton_conv as t
t.PERSISTENT_INT8_OUT = '$p' == 'on'
sys.argv = ['retinaflow.benchmarks'] + '$A'.split()
runpy.run_module('retinaflow.benchmarks', run_name='__main__')
" 2>&1 | grep -v Warn | grep 'torch-int8 \|Error\|error' | tail -3; done
echo "== where the head's time goes"; timeout 200 python3 $S/head_prof7.py 2>&1 | grep -v Warn
