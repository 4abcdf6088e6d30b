# Run in the tenth lease (lease10-next.txt, perf_lease10.json). From the repository root on nvidia-h200, carrying
# .whl. About 8 minutes. The ninth lease found LoadGen at 1,035-1,085 samples/s where the same
# Detector outside LoadGen ran 1,219 img/s on the same machine (lease9-c.txt: random U(0,1)
# input), and on the CPU that the random weights' class logits (within ~0.01 of the bias)
# collapse in float16 onto a few values for the demo's images: up to 86,379 logits tie with a
# level's 1000th best (P5), against <= 2,194 for random input. Here, LoadGen Offline torch-int8
# (batch 32, 2 workers, 20 s) with those weights (rand800) against weights whose class logits
# spread (spread800: scripts/random_weights.py --class-spread 1; <= 1,014 ties on the CPU),
# twice each, alternating: is the gap the top-k's ties? Then the gpu benchmark's new
# `pipelined` figure (2 threads calling the Detector: what lease9_c.py measured) with each.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src:/tmp/site
O=${OUT:-/tmp/out}; mkdir -p models $O /tmp/perf
nvidia-smi -L
python3 scripts/random_weights.py models/rand800.pt --class-bias -1
python3 scripts/random_weights.py models/spread800.pt --class-bias -1 --class-spread 1
printf 'model:\n  name: spread800\n  weights: {source: local, path: models/spread800.pt}\n' > /tmp/spread.yaml
printf 'perf:\n  batch_size: 32\n  workers: 2\n' > /tmp/perf.yaml
C="--configfile config/demo.yaml config/gpu.yaml benchmarks/records/gpu-h200/mlperf-random-800.yaml"
perf() {  # weights (rand|spread), tag
  extra=""; [ $1 = spread ] && extra=/tmp/spread.yaml
  python3 -m snakemake results/perf_torch-int8_Offline.json -f --cores 16 $C $extra /tmp/perf.yaml > /tmp/perf/log_$2.txt 2>&1 || tail -20 /tmp/perf/log_$2.txt
  cp results/perf_torch-int8_Offline.json /tmp/perf/$2.json
  python3 -c "import json;d=json.load(open('results/perf_torch-int8_Offline.json'));print('Offline torch-int8 $2:', d['qps'], d.get('result', ''), d['stages_ms'])"
}
perf rand rand-1
perf spread spread-1
perf rand rand-2
perf spread spread-2
python3 -c "import glob,json,os;print(json.dumps({os.path.basename(f)[:-5]: json.load(open(f)) for f in sorted(glob.glob('/tmp/perf/*.json'))}, indent=1))" > $O/perf_lease10.json
for w in rand800 spread800; do
  python3 -m retinaflow.benchmarks gpu --arch resnext50_32x4d_fpn --size 800 --batch-sizes 32 \
    --variants torch-int8 --compile default --cuda-graphs on --iters 20 --weights models/$w.pt \
    --json $O/benchmark-gpu-pipelined-$w.json 2>&1 | grep -v Warn | tail -4
done
