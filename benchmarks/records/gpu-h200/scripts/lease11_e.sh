# Eleventh lease, fifth call: the trunk's narrow groups merged (fused_backbone.merge_narrow_groups,
# stages 1-2's 32-group 3x3s as 4 and 8 groups of 32 channels, block-diagonal weights) against
# the code before (.devrun/old_src = `git archive 5846f49 src`): the gpu benchmark's head and
# pipelined figures on the demo's images with spread800, old, new, old, new; then LoadGen
# Offline torch-int8 spread800 with the new code. Carrying .whl and .devrun/old_src; ~7 minutes.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1
NEW=$PWD/src:/tmp/site OLD=$PWD/.devrun/old_src/src:/tmp/site
export PYTHONPATH=$NEW
O=${OUT:-/tmp/out}; mkdir -p models $O /tmp/perf
nvidia-smi -L
python3 scripts/random_weights.py models/spread800.pt --class-bias -1 --class-spread 1
printf 'perf:\n  batch_size: 32\n  workers: 2\n' > /tmp/perf.yaml
printf 'model:\n  name: spread800\n  weights: {source: local, path: models/spread800.pt}\n' > /tmp/spread.yaml
C="--configfile config/demo.yaml config/gpu.yaml benchmarks/records/gpu-h200/mlperf-random-800.yaml /tmp/spread.yaml /tmp/perf.yaml"
python3 -m snakemake models/spread800/torch-int8.pt data/demo/annotations.json --cores 16 $C > $O/lease11-e-build.txt 2>&1 || { tail -30 $O/lease11-e-build.txt; exit 1; }
for code in old new old new; do
  [ $code = old ] && export PYTHONPATH=$OLD || export PYTHONPATH=$NEW
  echo "== $code code"
  python3 -m retinaflow.benchmarks gpu --arch resnext50_32x4d_fpn --size 800 --batch-sizes 32 \
    --variants torch-int8 --compile default --cuda-graphs on --iters 20 --weights models/spread800.pt \
    --images data/demo/images --json $O/benchmark-gpu-merged-$code.json 2>&1 | grep -v Warn | grep torch-int8
done
export PYTHONPATH=$NEW
python3 -m snakemake results/perf_torch-int8_Offline.json -f --cores 16 $C > /tmp/perf/log.txt 2>&1 || tail -20 /tmp/perf/log.txt
cp results/perf_torch-int8_Offline.json $O/perf_lease11_merged.json
python3 -c "import json;d=json.load(open('results/perf_torch-int8_Offline.json'));print('Offline torch-int8 spread800 merged groups:', d['qps'], d.get('result', ''), d['stages_ms'], d.get('runner', {}).get('merged_groups'))"
