# Ready for the next lease (not run yet). From the repository root on nvidia-h200, carrying
# .whl; about 7 minutes. The tenth lease found LoadGen's rate to be the Detector's on the
# demo's images (lease10-c.txt), its post-processing alone 12-14 ms a batch there against ~5
# on random input, the head the same: what costs? lease10_c.py --profile (the post-processing
# alone of the lent maps under torch.profiler, its kernels by name, random against demo) and
# --split on the lent maps (the tenth lease split copies of them), with both weights.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src:/tmp/site
O=${OUT:-/tmp/out}; mkdir -p models $O
S=benchmarks/records/gpu-h200/scripts
nvidia-smi -L
python3 scripts/random_weights.py models/rand800.pt --class-bias -1
python3 scripts/random_weights.py models/spread800.pt --class-bias -1 --class-spread 1
printf 'perf:\n  batch_size: 32\n  workers: 2\n' > /tmp/perf.yaml
printf 'model:\n  name: spread800\n  weights: {source: local, path: models/spread800.pt}\n' > /tmp/spread.yaml
C="--configfile config/demo.yaml config/gpu.yaml benchmarks/records/gpu-h200/mlperf-random-800.yaml /tmp/perf.yaml"
python3 -m snakemake models/rand800/torch-int8.pt data/demo/annotations.json --cores 16 $C > $O/lease11-build.txt 2>&1 || { tail -30 $O/lease11-build.txt; exit 1; }
python3 -m snakemake models/spread800/torch-int8.pt --cores 16 $C /tmp/spread.yaml >> $O/lease11-build.txt 2>&1 || { tail -30 $O/lease11-build.txt; exit 1; }
for w in spread800 rand800; do
  extra=""; [ $w = spread800 ] && extra=--config=/tmp/spread.yaml
  echo "== $w"
  python3 $S/lease10_c.py --profile $extra 2>&1 | grep -v "Warn\|warn_once\|USDT\|DeviceProperties"
  python3 $S/lease10_c.py --split $extra 2>&1 | grep -v "Warn\|warn_once"
done
# the NMS's whole-list pass: the torch fixed point against triton_nms's tiled kernel (off
# by default: batched_nms.TILED_WIDE_LISTS; turn it on if the detections are equal and it wins)
python3 $S/lease10_c.py --tiled --config=/tmp/spread.yaml 2>&1 | grep -v "Warn\|warn_once"
# the gpu benchmark on the demo's images (--images), LoadGen's input: its pipelined figure
# should now give LoadGen's rate (~1,076 with rand800, lease10-e.txt)
python3 -m retinaflow.benchmarks gpu --arch resnext50_32x4d_fpn --size 800 --batch-sizes 32 \
  --variants torch-int8 --compile default --cuda-graphs on --iters 20 --weights models/rand800.pt \
  --images data/demo/images --json $O/benchmark-gpu-demo-images-rand800.json 2>&1 | grep -v Warn | tail -4
