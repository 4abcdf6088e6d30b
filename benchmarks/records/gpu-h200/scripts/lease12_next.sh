# Ran in the twelfth lease, first call (lease12-next.txt; step (2) failed: lease12_c.sh ran it again). From the repository root on nvidia-h200, carrying
# .whl; about 9 minutes (then lease12_b.sh). (1) The stem as a space-to-depth (stem_s2d_bench.py: the 7x7 stride-2
# conv on 3 channels against a 4x4 conv on 12 or 16, the same products; checked in float64
# here with --check). (2) The top-k's buffer 32 k against 64 k keys a row (radix_topk's
# width_factor, set through top_k_levels' default in the same code): the post-processing alone
# on the demo's images with spread800, where one level a batch still overflows 32 k (eleventh
# lease, lease11-d.txt: its digit passes 0.66 ms, _count_at_least 0.18, a second host sync).
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src:/tmp/site
O=${OUT:-/tmp/out}; mkdir -p models $O
S=benchmarks/records/gpu-h200/scripts
nvidia-smi -L
echo "== stem"; python3 $S/stem_s2d_bench.py 2>&1 | grep -v Warn
python3 scripts/random_weights.py models/spread800.pt --class-bias -1 --class-spread 1
printf 'model:\n  name: spread800\n  weights: {source: local, path: models/spread800.pt}\n' > /tmp/spread.yaml
C="--configfile config/demo.yaml config/gpu.yaml benchmarks/records/gpu-h200/mlperf-random-800.yaml /tmp/spread.yaml"
python3 -m snakemake models/spread800/torch-int8.pt data/demo/annotations.json --cores 16 $C > $O/lease12-build.txt 2>&1 || { tail -30 $O/lease12-build.txt; exit 1; }
for wf in 32 64 32 64; do
  echo "== width factor $wf"
  python3 -c "
import runpy, sys
import retinaflow.radix_topk as r
d = list(r.top_k_levels.__defaults__); d[-1] = $wf; r.top_k_levels.__defaults__ = tuple(d)
sys.argv = ['lease10_c.py', '--split', '--config=/tmp/spread.yaml']
runpy.run_path('$S/lease10_c.py', run_name='__main__')
" 2>&1 | grep -v "Warn\|warn_once"
done
# (3) the whole head with the space-to-depth stem (fused_backbone.SPACE_TO_DEPTH_STEM, off
# until this has run) against the 7x7, switched in the same code as lease11_f.sh does: the gpu
# benchmark on the demo's images with spread800
A="gpu --arch resnext50_32x4d_fpn --size 800 --batch-sizes 32 --variants torch-int8 --compile default --cuda-graphs on --iters 20 --weights models/spread800.pt --images data/demo/images"
for s in off on off on; do echo "== space-to-depth stem $s"; timeout 120 python3 -c "
import sys, runpy
import retinaflow.model.fused_backbone as f
f.SPACE_TO_DEPTH_STEM = '$s' == 'on'
sys.argv = ['retinaflow.benchmarks'] + '$A'.split()
runpy.run_module('retinaflow.benchmarks', run_name='__main__')
" 2>&1 | grep -v Warn | grep 'torch-int8 \|Error\|error' | tail -3; done
