# Eighth lease, second call: the int8 head's maps lent (no copy out of the CUDA graph: a graph
# per worker thread, runtime/torch_runner.py) and read in place by the post-processing (the
# padded grids' interiors, the frame left out: radix_topk.Frame; no copy_interior). From the
# repository root, on nvidia-h200, carrying .whl and .devrun/old_src (`git archive 0637d9c
# src`: the code before). About 7 minutes.
# 1. lend8.py: the post-processing on in-place maps against dense ones (time, equality), the
#    head's call with and without lending, the real int8 maps' detections in place and dense.
# 2. The demo's mAP on the GPU (torch-int8, torch-fp16) through the DAG, the new code.
# 3. LoadGen Offline torch-int8, the code before, then after; then torch-fp16 after.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src:/tmp/site
O=${OUT:-/tmp/out}; mkdir -p models $O
S=benchmarks/records/gpu-h200/scripts
nvidia-smi -L
python3 $S/lend8.py 2>&1 | grep -v Warn | grep -v _warn_once | tee $O/lend8.txt
python3 -m snakemake results/map_torch-int8.json results/map_torch-fp16.json --cores 16 --configfile config/demo.yaml config/gpu.yaml > $O/log_demo_b.txt 2>&1 || tail -30 $O/log_demo_b.txt
for v in int8 fp16; do cp results/map_torch-$v.json $O/map_torch-${v}_lease8_lend.json; python3 -c "import json;print('demo $v', json.load(open('results/map_torch-$v.json'))['bbox_mAP'])"; done
python3 scripts/random_weights.py models/rand800.pt --class-bias -1
C="--configfile config/demo.yaml config/gpu.yaml benchmarks/records/gpu-h200/mlperf-random-800.yaml"
for run in int8:old int8:new fp16:new; do
  v=${run%%:*}; code=${run##*:}
  if [ $code = old ]; then export PYTHONPATH=$PWD/.devrun/old_src/src:/tmp/site; else export PYTHONPATH=$PWD/src:/tmp/site; fi
  python3 -m snakemake results/perf_torch-${v}_Offline.json -f --cores 16 $C > $O/log_offline_${v}_$code.txt 2>&1 || tail -20 $O/log_offline_${v}_$code.txt
  cp results/perf_torch-${v}_Offline.json $O/perf_torch-${v}_Offline_workers2_lease8_$code.json
  python3 -c "import json;d=json.load(open('results/perf_torch-${v}_Offline.json'));print('Offline torch-$v $code:', d['qps'], d.get('result', ''), d['stages_ms'])"
done
