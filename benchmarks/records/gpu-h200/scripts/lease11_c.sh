# Eleventh lease, third call: with the NMS's wide lists in the tiled kernel (now the default),
# LoadGen Offline torch-int8 (20 s) with spread800 at batch 32 and 64 and with 3 workers,
# rand800 at batch 32, then the demo's mAP on the GPU (torch-int8, the 99% gate). Carrying
# .whl; ~7 minutes.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src:/tmp/site
O=${OUT:-/tmp/out}; mkdir -p models $O /tmp/perf
nvidia-smi -L
python3 scripts/random_weights.py models/rand800.pt --class-bias -1
python3 scripts/random_weights.py models/spread800.pt --class-bias -1 --class-spread 1
printf 'model:\n  name: spread800\n  weights: {source: local, path: models/spread800.pt}\n' > /tmp/spread.yaml
C="--configfile config/demo.yaml config/gpu.yaml benchmarks/records/gpu-h200/mlperf-random-800.yaml"
python3 -m snakemake models/spread800/torch-int8.pt data/demo/annotations.json --cores 16 $C /tmp/spread.yaml > $O/lease11-c-build.txt 2>&1 || { tail -30 $O/lease11-c-build.txt; exit 1; }
python3 -m snakemake models/rand800/torch-int8.pt --cores 16 $C >> $O/lease11-c-build.txt 2>&1 || { tail -30 $O/lease11-c-build.txt; exit 1; }
perf() {  # weights file ("" for rand800), batch, workers, tag
  printf 'perf:\n  batch_size: %s\n  workers: %s\n' $2 $3 > /tmp/perf.yaml
  python3 -m snakemake results/perf_torch-int8_Offline.json -f --cores 16 $C $1 /tmp/perf.yaml > /tmp/perf/log_$4.txt 2>&1 || tail -20 /tmp/perf/log_$4.txt
  cp results/perf_torch-int8_Offline.json /tmp/perf/$4.json
  python3 -c "import json;d=json.load(open('results/perf_torch-int8_Offline.json'));print('Offline torch-int8 $4:', d['qps'], d.get('result', ''), d['stages_ms'])"
}
perf /tmp/spread.yaml 32 2 spread800-b32-w2
perf /tmp/spread.yaml 64 2 spread800-b64-w2
perf /tmp/spread.yaml 32 3 spread800-b32-w3
perf "" 32 2 rand800-b32-w2
python3 -c "import glob,json,os;print(json.dumps({os.path.basename(f)[:-5]: json.load(open(f)) for f in sorted(glob.glob('/tmp/perf/*.json'))}, indent=1))" > $O/perf_lease11_c.json
python3 -m snakemake results/map_torch-int8.json --cores 16 --configfile config/demo.yaml config/gpu.yaml > $O/lease11-c-map.txt 2>&1 || tail -20 $O/lease11-c-map.txt
cp results/map_torch-int8.json $O/map_torch-int8_lease11.json && cat results/map_torch-int8.json | head -c 600
