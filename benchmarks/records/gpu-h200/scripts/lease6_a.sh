# Sixth lease, first call (benchmarks/gpu-h200.md), from the repository root, .whl carried:
# the int8 head kernel's tiles swept (int8_sweep.py), then LoadGen Server torch-int8 with
# perf.batch_wait_ms 0 and 3 at a target of 800/s, and 3 at 700/s (20 s each).
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PYTHONPATH=$PWD/src:/tmp/site PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1
O=${OUT:-/tmp/out}; mkdir -p models $O
nvidia-smi -L
python3 scripts/random_weights.py models/rand800.pt --class-bias -1
# (as it ran, int8_sweep.py tried warp specialisation in every config, one 200 s budget, three
# shapes; it now takes `ws` for that, and a budget per shape)
timeout 280 python3 benchmarks/records/gpu-h200/scripts/int8_sweep.py 200 ws 2>&1 | tee $O/int8-sweep.txt | grep -v "^  "
C="--configfile config/demo.yaml config/gpu.yaml benchmarks/records/gpu-h200/mlperf-random-800.yaml"
for run in "800 0" "800 3" "700 3"; do
  set -- $run
  printf "perf: {batch_wait_ms: $2, scenarios: {Server: {min_duration_ms: 20000, min_query_count: 2048, target_qps: $1, target_latency_ms: 100}}}\n" > /tmp/server.yaml
  python3 -m snakemake results/perf_torch-int8_Server.json -f --cores 16 $C /tmp/server.yaml > $O/log_server_$1_$2.txt 2>&1 || tail -20 $O/log_server_$1_$2.txt
  cp results/perf_torch-int8_Server.json $O/perf_torch-int8_Server_target$1_wait$2.json
  python3 -c "import json;d=json.load(open('results/perf_torch-int8_Server.json'));print('Server target $1 wait $2 ms:', d['qps'], d['valid'], d['stages_ms'], {k: d['latency_ms'].get(k) for k in ('p50', 'p90', 'p99')}, d.get('batch_wait_ms'))"
done
cd $O && tar czf logs.tgz log_*.txt && rm log_*.txt
