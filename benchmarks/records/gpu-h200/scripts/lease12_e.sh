# Twelfth lease, fourth call: head_prof7.py (lease12_d.sh) timed the whole head at 23.53 ms
# with its CUDA graph and 21.54 ms without, one run each, graphs first. Here the same code
# (PERSISTENT_INT8_OUT now on, P3's towers) with --cuda-graphs off/on alternating in the gpu
# benchmark (demo's images, spread800), then LoadGen Offline torch-int8 with the config's
# graphs on, then off (pytorch.cuda_graphs). From the repository root on nvidia-h200,
# carrying .whl; ~7 minutes.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src:/tmp/site
O=${OUT:-/tmp/out}; mkdir -p models $O /tmp/perf
nvidia-smi -L
[ -f models/spread800.pt ] || python3 scripts/random_weights.py models/spread800.pt --class-bias -1 --class-spread 1
printf 'model:\n  name: spread800\n  weights: {source: local, path: models/spread800.pt}\n' > /tmp/spread.yaml
printf 'perf:\n  batch_size: 32\n  workers: 2\n' > /tmp/perf.yaml
printf 'pytorch:\n  cuda_graphs: false\n' > /tmp/nographs.yaml
C="--configfile config/demo.yaml config/gpu.yaml benchmarks/records/gpu-h200/mlperf-random-800.yaml /tmp/spread.yaml /tmp/perf.yaml"
python3 -m snakemake models/spread800/torch-int8.pt data/demo/annotations.json --cores 16 $C > $O/lease12-e-build.txt 2>&1 || { tail -30 $O/lease12-e-build.txt; exit 1; }
for g in off on off on; do
  echo "== cuda graphs $g"
  timeout 120 python3 -m retinaflow.benchmarks gpu --arch resnext50_32x4d_fpn --size 800 --batch-sizes 32 \
    --variants torch-int8 --compile default --cuda-graphs $g --iters 20 --weights models/spread800.pt \
    --images data/demo/images 2>&1 | grep -v Warn | grep 'torch-int8 \|Error\|error' | tail -3
done
for g in on off; do
  [ $g = on ] && X= || X=/tmp/nographs.yaml
  timeout 150 python3 -m snakemake results/perf_torch-int8_Offline.json -f --cores 16 $C $X > /tmp/perf/log-$g.txt 2>&1 || tail -20 /tmp/perf/log-$g.txt
  cp results/perf_torch-int8_Offline.json $O/perf_lease12_graphs_$g.json
  python3 -c "import json;d=json.load(open('results/perf_torch-int8_Offline.json'));print('Offline torch-int8 spread800 graphs $g:', d['qps'], d.get('result', ''), d['stages_ms'])"
done
