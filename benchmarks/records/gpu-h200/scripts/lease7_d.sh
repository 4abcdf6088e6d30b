# Seventh lease, fourth part: LoadGen Offline torch-int8 with 3 and 4 workers (batches in
# flight; WORKERS="2 4" for the A/B call after it, TAG names the records): the post-processing's wall time (~30 ms a batch of 32 in LoadGen, 0.94 ms an image)
# now exceeds the head's turn (~25 ms), so two workers leave the head idle. Repository root,
# nvidia-h200, carrying .whl.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src:/tmp/site
O=${OUT:-/tmp/out}; mkdir -p models $O
nvidia-smi -L
python3 scripts/random_weights.py models/rand800.pt --class-bias -1
C="--configfile config/demo.yaml config/gpu.yaml benchmarks/records/gpu-h200/mlperf-random-800.yaml"
for w in ${WORKERS:-3 4}; do
  printf 'perf:\n  workers: %s\n' $w > /tmp/workers.yaml
  python3 -m snakemake results/perf_torch-int8_Offline.json -f --cores 16 $C /tmp/workers.yaml > $O/log_offline_w$w.txt 2>&1 || tail -20 $O/log_offline_w$w.txt
  cp results/perf_torch-int8_Offline.json $O/perf_torch-int8_Offline_workers${w}_${TAG:-lease7}.json
  python3 -c "import json;d=json.load(open('results/perf_torch-int8_Offline.json'));print('Offline torch-int8 workers $w:', d['qps'], d['result'] if 'result' in d else '', d['stages_ms'])"
done
