# Tenth lease, fourth call: lease10_c.py --split (head alone and post-processing alone, random
# against demo input), with the plain random weights and with the spread ones; then the
# Detector pipelined (lease10_c.py --no-loadgen) with the spread ones. Carrying .whl; ~5 min.
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
python3 -m snakemake models/rand800/torch-int8.pt data/demo/annotations.json --cores 16 $C > $O/lease10-d-build.txt 2>&1 || { tail -30 $O/lease10-d-build.txt; exit 1; }
python3 -m snakemake models/spread800/torch-int8.pt --cores 16 $C /tmp/spread.yaml >> $O/lease10-d-build.txt 2>&1 || { tail -30 $O/lease10-d-build.txt; exit 1; }
echo "== rand800"; python3 $S/lease10_c.py --split 2>&1 | grep -v "Warn\|warn_once"
echo "== spread800"; python3 $S/lease10_c.py --split --config=/tmp/spread.yaml 2>&1 | grep -v "Warn\|warn_once"
echo "== spread800 pipelined"; python3 $S/lease10_c.py --no-loadgen --config=/tmp/spread.yaml 2>&1 | grep -v "Warn\|warn_once"
