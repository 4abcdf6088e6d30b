# Tenth lease, fifth call: the top-k's buffer 8 k -> 32 k keys a row (radix_topk.WIDTH_FACTOR)
# against the code before (.devrun/old_src = `git archive 8d5c37c src`): the post-processing
# alone on the demo's images and on random input (lease10_c.py --split), then the Detector
# pipelined and LoadGen with the new code (lease10_c.py, one round). Carrying .whl and
# .devrun/old_src; ~7 minutes.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1
NEW=$PWD/src:/tmp/site OLD=$PWD/.devrun/old_src/src:/tmp/site
export PYTHONPATH=$NEW
O=${OUT:-/tmp/out}; mkdir -p models $O
S=benchmarks/records/gpu-h200/scripts
nvidia-smi -L
python3 scripts/random_weights.py models/rand800.pt --class-bias -1
python3 scripts/random_weights.py models/spread800.pt --class-bias -1 --class-spread 1
printf 'perf:\n  batch_size: 32\n  workers: 2\n' > /tmp/perf.yaml
printf 'model:\n  name: spread800\n  weights: {source: local, path: models/spread800.pt}\n' > /tmp/spread.yaml
C="--configfile config/demo.yaml config/gpu.yaml benchmarks/records/gpu-h200/mlperf-random-800.yaml /tmp/perf.yaml"
export PYTHONPATH=$NEW
python3 -m snakemake models/rand800/torch-int8.pt data/demo/annotations.json --cores 16 $C > $O/lease10-e-build.txt 2>&1 || { tail -30 $O/lease10-e-build.txt; exit 1; }
python3 -m snakemake models/spread800/torch-int8.pt --cores 16 $C /tmp/spread.yaml >> $O/lease10-e-build.txt 2>&1 || { tail -30 $O/lease10-e-build.txt; exit 1; }
for w in rand800 spread800; do
  extra=""; [ $w = spread800 ] && extra=--config=/tmp/spread.yaml
  for code in old new; do
    [ $code = old ] && export PYTHONPATH=$OLD || export PYTHONPATH=$NEW
    echo "== $w, $code code"; python3 $S/lease10_c.py --split $extra 2>&1 | grep -v "Warn\|warn_once"
  done
done
export PYTHONPATH=$NEW
echo "== rand800, new code, pipelined and LoadGen"; python3 $S/lease10_c.py --rounds=1 2>&1 | grep -v "Warn\|warn_once"
