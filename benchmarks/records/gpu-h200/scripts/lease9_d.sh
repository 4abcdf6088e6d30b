# Ninth lease, fourth call (benchmarks/gpu-h200.md). From the repository root on nvidia-h200,
# carrying .whl. lease9_c.py ran the Detector at 1,219 img/s with 2 threads outside LoadGen
# (PyTorch's CPU pool at 4 threads), LoadGen gives 1,040-1,085 with perf.threads 16, which is
# also PyTorch's CPU pool during the test (run_loadgen's postprocess_threads default): are 16
# spinning OpenMP threads in the way? LoadGen Offline torch-int8, batch 32, 2 workers, with
# perf.threads 16, 2, 4, 2.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src:/tmp/site
O=${OUT:-/tmp/out}; mkdir -p models $O /tmp/perf
nvidia-smi -L
python3 scripts/random_weights.py models/rand800.pt --class-bias -1
C="--configfile config/demo.yaml config/gpu.yaml benchmarks/records/gpu-h200/mlperf-random-800.yaml"
perf() {  # threads, tag
  printf 'perf:\n  batch_size: 32\n  workers: 2\n  threads: %s\n' $1 > /tmp/perf.yaml
  python3 -m snakemake results/perf_torch-int8_Offline.json -f --cores 16 $C /tmp/perf.yaml > /tmp/perf/log_$2.txt 2>&1 || tail -20 /tmp/perf/log_$2.txt
  cp results/perf_torch-int8_Offline.json /tmp/perf/$2.json
  python3 -c "import json;d=json.load(open('results/perf_torch-int8_Offline.json'));print('Offline torch-int8 $2:', d['qps'], d.get('result', ''), d['stages_ms'])"
}
perf 16 threads16
perf 2 threads2
perf 4 threads4
perf 2 threads2-again
python3 -c "import glob,json,os;print(json.dumps({os.path.basename(f)[:-5]: json.load(open(f)) for f in sorted(glob.glob('/tmp/perf/*.json'))}, indent=1))" > $O/perf_lease9_d.json
