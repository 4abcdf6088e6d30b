# GPU shards' byte-identity: infer.shards 1 then 2, pytorch.deterministic true, torch-fp16 and
# torch-int8 on the demo, config/gpu.yaml (infer.workers 2); then the same without deterministic
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD/src:/tmp/site PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1
V="torch-fp16 torch-int8"
for det in true false; do
  for s in 1 2; do
    printf "infer: {shards: $s}\npytorch: {deterministic: $det}\n" > /tmp/sh.yaml
    rm -rf preds
    python3 -m snakemake --cores 16 $(for v in $V; do echo preds/demo/$v/detections.json; done) \
      --configfile config/demo.yaml config/gpu.yaml /tmp/sh.yaml > /tmp/log_${det}_$s.txt 2>&1 || tail -20 /tmp/log_${det}_$s.txt
    for v in $V; do cp preds/demo/$v/detections.json /tmp/det_${det}_${s}_$v.json; done
    ls preds/demo/torch-fp16/ | head -20 | tr '\n' ' '; echo
    grep -h "device_name\|shard" preds/demo/torch-fp16/stats.json | head -3
  done
  for v in $V; do
    if cmp /tmp/det_${det}_1_$v.json /tmp/det_${det}_2_$v.json; then echo "deterministic=$det $v: shards 2 == one job, byte for byte ($(wc -c < /tmp/det_${det}_1_$v.json) bytes)"; else echo "deterministic=$det $v: DIFFER"; fi
  done
done
mkdir -p $OUT; cp preds/demo/torch-fp16/stats.json $OUT/sharded-stats.json 2>/dev/null; tar czf $OUT/shards.tgz /tmp/log_* /tmp/det_*true_2_torch-fp16.json 2>/dev/null; true
