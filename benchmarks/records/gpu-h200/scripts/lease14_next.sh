# Ready for the fourteenth lease (not run yet). LoadGen Offline torch-int8 (spread800, batch 32,
# 2 workers, 20 s) with the FPN's P3 and P4 3x3s in int8 (27ab740) against the code before
# (`.devrun/old` = `git archive d178c82 src config`), each with its own build (the build
# formats differ), alternated old/new/old/new in one call: the thirteenth lease timed the head
# (21.11 -> 20.87 ms) but LoadGen only with the first form's zeros pass. From the repository
# root on nvidia-h200, carrying .whl and .devrun; ~8 minutes.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1
NEW=$PWD/src:/tmp/site OLD=$PWD/.devrun/old/src:/tmp/site
O=${OUT:-/tmp/out}; mkdir -p models $O /tmp/perf /tmp/builds
nvidia-smi -L
[ -f models/spread800.pt ] || PYTHONPATH=$NEW python3 scripts/random_weights.py models/spread800.pt --class-bias -1 --class-spread 1
printf 'model:\n  name: spread800\n  weights: {source: local, path: models/spread800.pt}\n' > /tmp/spread.yaml
printf 'perf:\n  batch_size: 32\n  workers: 2\n' > /tmp/perf.yaml
C="--configfile config/demo.yaml config/gpu.yaml benchmarks/records/gpu-h200/mlperf-random-800.yaml /tmp/spread.yaml /tmp/perf.yaml"
for code in old new; do  # each code's build, kept aside
  [ $code = new ] && P=$NEW || P=$OLD
  rm -f models/spread800/torch-int8.pt
  PYTHONPATH=$P python3 -m snakemake models/spread800/torch-int8.pt data/demo/annotations.json --cores 16 $C > $O/lease14-build-$code.txt 2>&1 || { tail -30 $O/lease14-build-$code.txt; exit 1; }
  cp models/spread800/torch-int8.pt /tmp/builds/$code.pt
done
for code in old new old new; do
  [ $code = new ] && P=$NEW || P=$OLD
  cp /tmp/builds/$code.pt models/spread800/torch-int8.pt
  PYTHONPATH=$P timeout 150 python3 -m snakemake results/perf_torch-int8_Offline.json -f --cores 16 $C > /tmp/perf/log-$code.txt 2>&1 || tail -20 /tmp/perf/log-$code.txt
  cp results/perf_torch-int8_Offline.json $O/perf_lease14_$code.json
  python3 -c "import json;d=json.load(open('results/perf_torch-int8_Offline.json'));print('Offline torch-int8 spread800 $code code:', d['qps'], d.get('result', ''), d['stages_ms'])"
done
