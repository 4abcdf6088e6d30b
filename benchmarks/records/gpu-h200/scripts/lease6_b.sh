# Sixth lease, second call (benchmarks/gpu-h200.md), on nvidia-h200-x2, from the repository
# root, .whl carried: two_gpu_shards.sh (8,192 synthetic JPEGs, GPU decode, one GPU then two),
# then on the same images, one shard, the other decode settings (cpu, gpu-resize; PIL's host
# decode at this commit), and the demo's mAP with decode gpu-resize (torch-fp16, torch-int8;
# with the CPU's resize it was 0.925).
O=${OUT:-/tmp/out}; mkdir -p $O
bash benchmarks/records/gpu-h200/scripts/two_gpu_shards.sh
export PYTHONPATH=$PWD/src:/tmp/site PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1
R=benchmarks/records/gpu-h200
S=preds/rand800/torch-fp16/stats.json
printf 'infer: {shards: 1}\n' > /tmp/shards.yaml
for decode in cpu gpu-resize; do
  printf "preprocess: {resize_kernel: torch, decode: $decode}\n" > /tmp/decode.yaml
  rm -rf preds
  python3 -m snakemake $S --cores 32 --resources gpu=2 --configfile config/demo.yaml config/gpu.yaml \
    $R/mlperf-random-800.yaml $R/synthetic-openimages-local.yaml /tmp/decode.yaml /tmp/shards.yaml \
    > $O/log_decode_$decode.txt 2>&1 || tail -20 $O/log_decode_$decode.txt
  cp $S $O/stats_decode_$decode.json
  python3 -c "import json; d=json.load(open('$S')); print('decode $decode:', {k: d.get(k) for k in ('images', 'images_per_second', 'images_per_second_after_first_batch', 'stages_ms_after_first_batch', 'device_name')})"
done
printf 'preprocess: {resize_kernel: torch, decode: gpu-resize}\n' > /tmp/decode.yaml
python3 -m snakemake results/map_torch-fp16.json results/map_torch-int8.json --cores 32 --configfile config/demo.yaml config/gpu.yaml /tmp/decode.yaml > $O/log_demo.txt 2>&1 || tail -20 $O/log_demo.txt
for v in torch-fp16 torch-int8; do cp results/map_$v.json $O/map_${v}_gpu-resize.json; python3 -c "import json; d=json.load(open('results/map_$v.json')); print('demo $v gpu-resize', d.get('bbox_mAP', d))"; done
cd $O && tar czf logs.tgz log_*.txt && rm log_*.txt
