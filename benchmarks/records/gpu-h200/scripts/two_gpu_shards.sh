# Two-GPU shard scaling, ready for a lease of `nvidia-h200-x2` (not run yet: that kind was
# withheld, then lent when this session's device time was spent). From the repository root,
# with the wheels of .whl carried (`carry: [".whl"]`):
#   bash benchmarks/records/gpu-h200/scripts/two_gpu_shards.sh
# The infer rule's whole pipeline (GPU decode, torch-fp16, infer.workers 2 from gpu.yaml) over
# 8,192 synthetic OpenImages-size JPEGs: one job on one GPU, then infer.shards 2 run at once,
# one per GPU (--resources gpu=2: each shard takes cuda:{index % GPUs}); the wall time of each
# DAG run and each stats.json's rates; the two runs' detections compared (cmp; equal only with
# pytorch.deterministic: true, see gpu-h200.md).
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PYTHONPATH=$PWD/src:/tmp/site PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1
nvidia-smi -L
mkdir -p models "${OUT:-/tmp/out}"; python3 scripts/random_weights.py models/rand800.pt --class-bias -1
python3 benchmarks/records/gpu-h200/scripts/make_local_set.py /tmp/synth 8192 > /dev/null
R=benchmarks/records/gpu-h200
printf 'preprocess: {resize_kernel: torch, decode: gpu}\n' > /tmp/gpudecode.yaml
S=preds/rand800/torch-fp16/stats.json
for shards in 1 2; do
  printf "infer: {shards: $shards}\n" > /tmp/shards.yaml
  rm -rf preds
  start=$(date +%s.%N)
  python3 -m snakemake $S --cores 32 --resources gpu=2 --configfile config/demo.yaml config/gpu.yaml \
    $R/mlperf-random-800.yaml $R/synthetic-openimages-local.yaml /tmp/gpudecode.yaml /tmp/shards.yaml \
    > "${OUT:-/tmp/out}/log_shards$shards.txt" 2>&1 || tail -20 "${OUT:-/tmp/out}/log_shards$shards.txt"
  wall=$(python3 -c "import time; print(round(time.time() - $start, 1))")
  cp $S "${OUT:-/tmp/out}/stats_shards$shards.json"
  cp preds/rand800/torch-fp16/detections.json /tmp/det_$shards.json
  python3 -c "import json; d=json.load(open('$S')); print('shards $shards: wall $wall s,', d['images'], 'images,', round(d['images'] / $wall, 1), 'img/s by wall;', {k: d.get(k) for k in ('images_per_second', 'images_per_second_after_first_batch')})"
  grep -h '"device"' preds/rand800/torch-fp16/shards/*/stats.json 2>/dev/null | sort | uniq -c
done
cmp /tmp/det_1.json /tmp/det_2.json && echo "detections identical" || echo "detections differ (cuDNN autotuning: see gpu-h200.md)"
