# Ready for the next lease (not run yet): LoadGen Offline torch-int8 with the maps lent and
# read in place (eighth lease: 1,084.7 samples/s, 2 workers, batch 32), now that a batch's
# GPU time is ~28 ms (head ~22.9, post-processing ~5.2): batch 32 against 48 and 64, and 2
# workers against 3, one machine (figures of one call only are compared); then the same for
# torch-fp16 at batch 32 with the code before lending (`.devrun/old_src` = `git archive
# 0637d9c src`) and after. From the repository root, on nvidia-h200, carrying .whl and
# .devrun/old_src. About 7 minutes. First lend8_prof.py: the post-processing's kernels with the
# NMS walk stopping at the 300th kept box (after the eighth lease; its 0.91 ms a batch walked
# all 1,000 candidates of every image).
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src:/tmp/site
O=${OUT:-/tmp/out}; mkdir -p models $O
nvidia-smi -L
python3 benchmarks/records/gpu-h200/scripts/lend8_prof.py 2>&1 | grep -v Warn | grep -v _warn_once > $O/lend8-prof-lease9.txt; grep "==\|_greedy_nms" $O/lend8-prof-lease9.txt
python3 scripts/random_weights.py models/rand800.pt --class-bias -1
C="--configfile config/demo.yaml config/gpu.yaml benchmarks/records/gpu-h200/mlperf-random-800.yaml"
perf() {  # variant, batch, workers, tag
  printf 'perf:\n  batch_size: %s\n  workers: %s\n' $2 $3 > /tmp/perf.yaml
  python3 -m snakemake results/perf_torch-$1_Offline.json -f --cores 16 $C /tmp/perf.yaml > $O/log_$4.txt 2>&1 || tail -20 $O/log_$4.txt
  cp results/perf_torch-$1_Offline.json $O/perf_torch-$1_Offline_lease9_$4.json
  python3 -c "import json;d=json.load(open('results/perf_torch-$1_Offline.json'));print('Offline torch-$1 $4:', d['qps'], d.get('result', ''), d['stages_ms'])"
}
perf int8 32 2 b32w2
perf int8 48 2 b48w2
perf int8 64 2 b64w2
perf int8 32 3 b32w3
perf fp16 32 2 fp16-new
export PYTHONPATH=$PWD/.devrun/old_src/src:/tmp/site
perf fp16 32 2 fp16-old
