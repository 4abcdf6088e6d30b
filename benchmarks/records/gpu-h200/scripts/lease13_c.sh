# Thirteenth lease, third call: P3's and P4's FPN output convs in int8 (int8_head.int8_fpn_levels,
# the int8 kernel's 0.32-0.35 ms against cuDNN fp16's 0.69 at P3) against the code before
# (`.devrun/old` = `git archive d178c82 src config`): the gpu benchmark's torch-int8 head old/new/
# old/new (it calibrates on its own batch), then LoadGen Offline with each code's own build.
# From the repository root on nvidia-h200, carrying .whl and .devrun; ~8 minutes. Ran in the
# thirteenth lease (lease13-c.txt) with `.devrun/old` holding src alone: the old code's runs
# failed on its missing config; the new code then packed P3's sum in a zeros pass of its own
# (triton_conv.PaddedShape.pack, since built by padding). lease13_ab.sh ran the A/B again.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1
NEW=$PWD/src:/tmp/site OLD=$PWD/.devrun/old/src:/tmp/site
O=${OUT:-/tmp/out}; mkdir -p models $O /tmp/perf
nvidia-smi -L
[ -f models/spread800.pt ] || PYTHONPATH=$NEW python3 scripts/random_weights.py models/spread800.pt --class-bias -1 --class-spread 1
printf 'model:\n  name: spread800\n  weights: {source: local, path: models/spread800.pt}\n' > /tmp/spread.yaml
printf 'perf:\n  batch_size: 32\n  workers: 2\n' > /tmp/perf.yaml
C="--configfile config/demo.yaml config/gpu.yaml benchmarks/records/gpu-h200/mlperf-random-800.yaml /tmp/spread.yaml /tmp/perf.yaml"
PYTHONPATH=$NEW python3 -m snakemake models/spread800/torch-int8.pt data/demo/annotations.json --cores 16 $C > $O/lease13-c-build.txt 2>&1 || { tail -30 $O/lease13-c-build.txt; exit 1; }
for code in old new old new; do
  [ $code = new ] && P=$NEW || P=$OLD
  echo "== int8 FPN convs: $code code"
  PYTHONPATH=$P timeout 120 python3 -m retinaflow.benchmarks gpu --arch resnext50_32x4d_fpn --size 800 --batch-sizes 32 \
    --variants torch-int8 --compile default --cuda-graphs on --iters 20 --weights models/spread800.pt \
    --images data/demo/images 2>&1 | grep -v Warn | grep 'torch-int8 \|Error\|error' | tail -3
done
for code in new old; do
  [ $code = new ] && P=$NEW || P=$OLD
  [ $code = old ] && rm -f models/spread800/torch-int8.pt
  PYTHONPATH=$P timeout 200 python3 -m snakemake results/perf_torch-int8_Offline.json -f --cores 16 $C > /tmp/perf/log-$code.txt 2>&1 || tail -20 /tmp/perf/log-$code.txt
  cp results/perf_torch-int8_Offline.json $O/perf_lease13_fpn_$code.json
  python3 -c "import json;d=json.load(open('results/perf_torch-int8_Offline.json'));print('Offline torch-int8 spread800 $code code:', d['qps'], d.get('result', ''), d['stages_ms'])"
done
