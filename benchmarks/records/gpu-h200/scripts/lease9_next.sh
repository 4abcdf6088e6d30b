# Ready for the next lease (not run yet). From the repository root, on nvidia-h200, carrying
# .whl and .devrun/old_src (`git archive b68f245 src`: the eighth lease's last code, the maps
# lent and read in place: 1,084.7 samples/s). About 8 minutes.
# 1. lend8_prof.py, the code before and after the two post-processing changes made after the
#    lease: the NMS kernel's walk stops at an image's 300th kept box (it walked all 1,000
#    candidates: 0.91 ms a batch), and the top-k writes its candidates straight after the
#    floor, the count pass left to a level whose keys overflow the buffer (0.42 ms a batch).
# 2. LoadGen Offline torch-int8, batch 32, 2 workers, before and after; then after at batch 48
#    and 64, and with 3 workers (a batch's GPU time is now ~28 ms: head ~22.9,
#    post-processing ~5.2). One machine: only figures of one call are compared.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1
O=${OUT:-/tmp/out}; mkdir -p models $O
S=benchmarks/records/gpu-h200/scripts
nvidia-smi -L
code() { if [ $1 = old ]; then export PYTHONPATH=$PWD/.devrun/old_src/src:/tmp/site; else export PYTHONPATH=$PWD/src:/tmp/site; fi; }
for c in old new; do
  code $c
  python3 $S/lend8_prof.py 2>&1 | grep -v Warn | grep -v _warn_once > $O/lend8-prof-lease9-$c.txt
  echo "== $c"; grep "==\|_greedy_nms\|_count_at_least\|_write_candidates" $O/lend8-prof-lease9-$c.txt
done
python3 scripts/random_weights.py models/rand800.pt --class-bias -1
C="--configfile config/demo.yaml config/gpu.yaml benchmarks/records/gpu-h200/mlperf-random-800.yaml"
perf() {  # code, batch, workers, tag
  code $1
  printf 'perf:\n  batch_size: %s\n  workers: %s\n' $2 $3 > /tmp/perf.yaml
  python3 -m snakemake results/perf_torch-int8_Offline.json -f --cores 16 $C /tmp/perf.yaml > $O/log_$4.txt 2>&1 || tail -20 $O/log_$4.txt
  cp results/perf_torch-int8_Offline.json $O/perf_torch-int8_Offline_lease9_$4.json
  python3 -c "import json;d=json.load(open('results/perf_torch-int8_Offline.json'));print('Offline torch-int8 $4:', d['qps'], d.get('result', ''), d['stages_ms'])"
}
perf old 32 2 old-b32w2
perf new 32 2 new-b32w2
perf new 48 2 new-b48w2
perf new 64 2 new-b64w2
perf new 32 3 new-b32w3
