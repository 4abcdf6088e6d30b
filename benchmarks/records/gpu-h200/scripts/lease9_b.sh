# Ninth lease, second call (benchmarks/gpu-h200.md). From the repository root on nvidia-h200,
# carrying .whl and .devrun/old_src (`git archive ab5fd13 src`: the code before the heads were
# queued). LoadGen Offline torch-int8 (20 s, random 800x800 weights): the code before, the code
# before with Python's switch interval at 0.5 ms (does a thread waiting for the GIL hold the next
# head back?), the heads queued on one stream (TorchRunner._queued) at batch 32 with 2 and 3
# workers and at batch 64, the code before again; then the demo's mAP on the GPU, new code.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1
O=${OUT:-/tmp/out}; mkdir -p models $O /tmp/sc /tmp/perf
echo 'import sys; sys.setswitchinterval(0.0005)' > /tmp/sc/sitecustomize.py
nvidia-smi -L
code() {
  case $1 in
    old) export PYTHONPATH=$PWD/.devrun/old_src/src:/tmp/site ;;
    old-si) export PYTHONPATH=$PWD/.devrun/old_src/src:/tmp/site:/tmp/sc ;;
    new) export PYTHONPATH=$PWD/src:/tmp/site ;;
  esac
}
code new
python3 scripts/random_weights.py models/rand800.pt --class-bias -1
C="--configfile config/demo.yaml config/gpu.yaml benchmarks/records/gpu-h200/mlperf-random-800.yaml"
perf() {  # code, batch, workers, tag
  code $1
  printf 'perf:\n  batch_size: %s\n  workers: %s\n' $2 $3 > /tmp/perf.yaml
  python3 -m snakemake results/perf_torch-int8_Offline.json -f --cores 16 $C /tmp/perf.yaml > /tmp/perf/log_$4.txt 2>&1 || tail -20 /tmp/perf/log_$4.txt
  cp results/perf_torch-int8_Offline.json /tmp/perf/$4.json
  python3 -c "import json;d=json.load(open('results/perf_torch-int8_Offline.json'));print('Offline torch-int8 $4:', d['qps'], d.get('result', ''), d['stages_ms'])"
}
perf old 32 2 old-b32w2
perf old-si 32 2 old-si-b32w2
perf new 32 2 new-b32w2
perf new 32 3 new-b32w3
perf new 64 2 new-b64w2
perf old 32 2 old-b32w2-again
python3 -c "import glob,json,os;print(json.dumps({os.path.basename(f)[:-5]: json.load(open(f)) for f in sorted(glob.glob('/tmp/perf/*.json'))}, indent=1))" > $O/perf_lease9_b.json
tail -n 60 /tmp/perf/log_new-b32w2.txt > $O/log_new-b32w2.txt
code new
python3 -m snakemake results/map_torch-int8.json results/map_torch-fp16.json --cores 16 --configfile config/demo.yaml config/gpu.yaml > $O/map_log.txt 2>&1 || tail -30 $O/map_log.txt
for v in torch-int8 torch-fp16; do cp results/map_$v.json $O/map_${v}_lease9.json; python3 -c "import json;d=json.load(open('results/map_$v.json'));print('$v mAP', d['bbox_mAP'])"; done
