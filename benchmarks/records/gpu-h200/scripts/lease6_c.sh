# Sixth lease, third call (benchmarks/gpu-h200.md), on nvidia-h200, from the repository root,
# carrying .whl, .devrun/old_src (`git archive 3abf5c4 src`: PIL's decode in the loader) and
# .devrun/switch (a sitecustomize.py that calls sys.setswitchinterval(0.0005)).
# 1. The infer rule's whole pipeline, one job (infer.shards 1), 4,096 synthetic JPEGs,
#    torch-fp16, infer.workers 2: decode gpu-resize and cpu with the old and the new host
#    decode, gpu (nvJPEG), and gpu-resize with the GIL's switch interval at 0.5 ms.
# 2. The int8 kernel's tiles without warp specialisation (int8_sweep.py, 160 s).
# As it ran: first with S at shards/1-of-1/stats.json (no rule makes it: the six runs failed,
# the sweep ran: int8-sweep.txt), then at once with the S below and SKIP_SWEEP=1.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1
O=${OUT:-/tmp/out}; mkdir -p models $O
nvidia-smi -L
PYTHONPATH=$PWD/src:/tmp/site python3 scripts/random_weights.py models/rand800.pt --class-bias -1
python3 benchmarks/records/gpu-h200/scripts/make_local_set.py /tmp/synth 4096 > /dev/null
R=benchmarks/records/gpu-h200
S=preds/rand800/torch-fp16/stats.json  # (shards/1-of-1/stats.json: no such rule with one shard)
printf 'infer: {shards: 1}\n' > /tmp/shards.yaml
for run in "new gpu" "old gpu-resize" "new gpu-resize" "old cpu" "new cpu" "switch gpu-resize"; do
  set -- $run
  case $1 in
    old) export PYTHONPATH=$PWD/.devrun/old_src/src:/tmp/site ;;
    new) export PYTHONPATH=$PWD/src:/tmp/site ;;
    switch) export PYTHONPATH=$PWD/.devrun/switch:$PWD/src:/tmp/site ;;
  esac
  printf "preprocess: {resize_kernel: torch, decode: $2}\n" > /tmp/decode.yaml
  rm -rf preds
  python3 -m snakemake $S --cores 16 --configfile config/demo.yaml config/gpu.yaml \
    $R/mlperf-random-800.yaml $R/synthetic-openimages-local.yaml /tmp/decode.yaml /tmp/shards.yaml \
    > $O/log_$1_$2.txt 2>&1 || tail -20 $O/log_$1_$2.txt
  cp $S $O/stats_$1_$2.json
  python3 -c "import json; d=json.load(open('$S')); print('$1 decode $2:', {k: d.get(k) for k in ('images', 'images_per_second', 'images_per_second_after_first_batch', 'stages_ms_after_first_batch')})"
done
export PYTHONPATH=$PWD/src:/tmp/site
[ -n "$SKIP_SWEEP" ] || timeout 220 python3 $R/scripts/int8_sweep.py 160 > $O/int8-sweep.txt 2>&1; grep -v "^  " $O/int8-sweep.txt
cd $O && tar czf logs.tgz log_*.txt && rm log_*.txt
