# The fifth lease's last run (benchmarks/gpu-h200.md), as it ran from the repository root;
# .devrun/last/server.yaml held: perf: {scenarios: {Server: {min_duration_ms: 20000, min_query_count: 2048, target_qps: 800, target_latency_ms: 100}}}
# LoadGen on the GPU with this commit's code: Offline torch-fp16, Server torch-int8 (20 s each)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PYTHONPATH=$PWD/src:/tmp/site PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1
mkdir -p models $OUT; python3 scripts/random_weights.py models/rand800.pt --class-bias -1
C="--configfile config/demo.yaml config/gpu.yaml benchmarks/records/gpu-h200/mlperf-random-800.yaml"
for t in torch-fp16_Offline torch-int8_Server; do
  python3 -m snakemake results/perf_$t.json --cores 16 $C .devrun/last/server.yaml > $OUT/log_$t.txt 2>&1 || tail -20 $OUT/log_$t.txt
  cp results/perf_$t.json $OUT/ && python3 -c "import json;d=json.load(open('results/perf_$t.json'));print('$t', d['qps'], d['valid'], d['stages_ms'], d['latency_ms'].get('p99'), d['settings'].get('server_target_qps', ''))"
done
