# Ran in the twelfth lease, second call (lease12-b.txt), after lease12_next.sh. From the repository root on
# nvidia-h200, carrying .whl; about 6 minutes.
# (4) the library's int8 kernel after its refactor into helpers, and its persistent form
# (triton_conv.PERSISTENT_INT8_OUT, off until this has run) on every level's towers
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src:/tmp/site
O=${OUT:-/tmp/out}; mkdir -p models $O
S=benchmarks/records/gpu-h200/scripts
nvidia-smi -L
python3 scripts/random_weights.py models/spread800.pt --class-bias -1 --class-spread 1
printf 'model:\n  name: spread800\n  weights: {source: local, path: models/spread800.pt}\n' > /tmp/spread.yaml
C="--configfile config/demo.yaml config/gpu.yaml benchmarks/records/gpu-h200/mlperf-random-800.yaml /tmp/spread.yaml"
python3 -m snakemake models/spread800/torch-int8.pt data/demo/annotations.json --cores 16 $C > $O/lease12-b-build.txt 2>&1 || { tail -30 $O/lease12-b-build.txt; exit 1; }
A="gpu --arch resnext50_32x4d_fpn --size 800 --batch-sizes 32 --variants torch-int8 --compile default --cuda-graphs on --iters 20 --weights models/spread800.pt --images data/demo/images"
echo "== int8 kernel"; python3 $S/int8_library_check.py 2>&1 | grep -v Warn
for p in off on off on; do echo "== persistent int8 towers $p"; timeout 120 python3 -c "
import sys, runpy
import retinaflow.triton_conv as t
t.PERSISTENT_INT8_OUT = '$p' == 'on'
sys.argv = ['retinaflow.benchmarks'] + '$A'.split()
runpy.run_module('retinaflow.benchmarks', run_name='__main__')
" 2>&1 | grep -v Warn | grep 'torch-int8 \|Error\|error' | tail -3; done
