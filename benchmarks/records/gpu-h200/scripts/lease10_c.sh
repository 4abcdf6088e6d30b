# Tenth lease, third call: lease10_c.py (its docstring: where LoadGen's samples/s lose to the
# Detector's own rate). From the repository root on nvidia-h200, carrying .whl; ~6 minutes.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src:/tmp/site
O=${OUT:-/tmp/out}; mkdir -p models $O
nvidia-smi -L
python3 scripts/random_weights.py models/rand800.pt --class-bias -1
printf 'perf:\n  batch_size: 32\n  workers: 2\n' > /tmp/perf.yaml
python3 -m snakemake models/rand800/torch-int8.pt data/demo/annotations.json --cores 16 \
  --configfile config/demo.yaml config/gpu.yaml benchmarks/records/gpu-h200/mlperf-random-800.yaml /tmp/perf.yaml > $O/lease10-c-build.txt 2>&1 || { tail -30 $O/lease10-c-build.txt; exit 1; }
python3 benchmarks/records/gpu-h200/scripts/lease10_c.py 2>&1 | grep -v "Warn\|warn_once"
