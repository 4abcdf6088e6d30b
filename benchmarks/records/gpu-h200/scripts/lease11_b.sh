# Eleventh lease, second call: (1) the int8 head kernel as a persistent kernel
# (int8_persistent.py: programs a multiprocessor, the tile loop flattened, TMA stores; bytes
# compared with the library's); (2) LoadGen Offline torch-int8 with spread800 (batch 32, 2
# workers, 20 s), the NMS's wide lists in the torch fixed point (.devrun/old_src = `git
# archive bd94b29 src`, TILED_WIDE_LISTS off) against the tiled kernel (now on), alternating;
# (3) the gpu benchmark on the demo's images with spread800. Carrying .whl and .devrun/old_src;
# ~9 minutes.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1
NEW=$PWD/src:/tmp/site OLD=$PWD/.devrun/old_src/src:/tmp/site
export PYTHONPATH=$NEW
O=${OUT:-/tmp/out}; mkdir -p models $O /tmp/perf
S=benchmarks/records/gpu-h200/scripts
nvidia-smi -L
python3 scripts/random_weights.py models/spread800.pt --class-bias -1 --class-spread 1
printf 'perf:\n  batch_size: 32\n  workers: 2\n' > /tmp/perf.yaml
printf 'model:\n  name: spread800\n  weights: {source: local, path: models/spread800.pt}\n' > /tmp/spread.yaml
C="--configfile config/demo.yaml config/gpu.yaml benchmarks/records/gpu-h200/mlperf-random-800.yaml /tmp/spread.yaml /tmp/perf.yaml"
python3 -m snakemake models/spread800/torch-int8.pt data/demo/annotations.json --cores 16 $C > $O/lease11-b-build.txt 2>&1 || { tail -30 $O/lease11-b-build.txt; exit 1; }
echo "== int8 persistent"; python3 $S/int8_persistent.py 150 2>&1 | grep -v Warn
perf() {  # code (old|new), tag
  [ $1 = old ] && export PYTHONPATH=$OLD || export PYTHONPATH=$NEW
  python3 -m snakemake results/perf_torch-int8_Offline.json -f --cores 16 $C > /tmp/perf/log_$2.txt 2>&1 || tail -20 /tmp/perf/log_$2.txt
  cp results/perf_torch-int8_Offline.json /tmp/perf/$2.json
  python3 -c "import json;d=json.load(open('results/perf_torch-int8_Offline.json'));print('Offline torch-int8 spread800 $2:', d['qps'], d.get('result', ''), d['stages_ms'])"
  export PYTHONPATH=$NEW
}
perf old fixed-point-1
perf new tiled-1
perf old fixed-point-2
perf new tiled-2
python3 -c "import glob,json,os;print(json.dumps({os.path.basename(f)[:-5]: json.load(open(f)) for f in sorted(glob.glob('/tmp/perf/*.json'))}, indent=1))" > $O/perf_lease11.json
python3 -m retinaflow.benchmarks gpu --arch resnext50_32x4d_fpn --size 800 --batch-sizes 32 \
  --variants torch-int8 --compile default --cuda-graphs on --iters 20 --weights models/spread800.pt \
  --images data/demo/images --json $O/benchmark-gpu-demo-images-spread800.json 2>&1 | grep -v Warn | tail -4
