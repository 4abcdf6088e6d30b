# Eleventh lease, fourth call (as run, on the warm machine of the third): the post-processing
# alone under torch.profiler with spread800, the NMS's wide lists now in the tiled kernel.
# Carrying .whl; ~1 minute.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1
export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src:/tmp/site
ls models/spread800/ 2>&1 | head -3
printf 'model:\n  name: spread800\n  weights: {source: local, path: models/spread800.pt}\n' > /tmp/spread.yaml
C="--configfile config/demo.yaml config/gpu.yaml benchmarks/records/gpu-h200/mlperf-random-800.yaml /tmp/spread.yaml"
[ -f models/spread800.pt ] || python3 scripts/random_weights.py models/spread800.pt --class-bias -1 --class-spread 1
python3 -m snakemake models/spread800/torch-int8.pt data/demo/annotations.json --cores 16 $C > /dev/null 2>&1
(python3 benchmarks/records/gpu-h200/scripts/lease10_c.py --profile --config=/tmp/spread.yaml 2>&1 | grep -v "Warn\|warn_once\|USDT\|DeviceProperties") > $OUT/lease11-d.txt
tail -45 $OUT/lease11-d.txt
