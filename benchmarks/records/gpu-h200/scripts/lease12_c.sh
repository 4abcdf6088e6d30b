# Twelfth lease, the top-k's buffer again: lease12_next.sh's step (2) failed because
# lease10_c.py reads /tmp/perf.yaml, which that script did not write. The same step with it.
# From the repository root on nvidia-h200, carrying .whl, after lease12_b.sh (whose build of
# models/spread800/torch-int8.pt it reuses on a warm machine, or makes).
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src:/tmp/site
O=${OUT:-/tmp/out}; mkdir -p models $O
S=benchmarks/records/gpu-h200/scripts
[ -f models/spread800.pt ] || python3 scripts/random_weights.py models/spread800.pt --class-bias -1 --class-spread 1
printf 'model:\n  name: spread800\n  weights: {source: local, path: models/spread800.pt}\n' > /tmp/spread.yaml
printf 'perf:\n  batch_size: 32\n  workers: 2\n' > /tmp/perf.yaml
C="--configfile config/demo.yaml config/gpu.yaml benchmarks/records/gpu-h200/mlperf-random-800.yaml /tmp/spread.yaml"
python3 -m snakemake models/spread800/torch-int8.pt data/demo/annotations.json --cores 16 $C > $O/lease12-c-build.txt 2>&1 || { tail -30 $O/lease12-c-build.txt; exit 1; }
for wf in 32 64 32 64; do
  echo "== width factor $wf"
  python3 -c "
import runpy, sys
import retinaflow.radix_topk as r
d = list(r.top_k_levels.__defaults__); d[-1] = $wf; r.top_k_levels.__defaults__ = tuple(d)
sys.argv = ['lease10_c.py', '--split', '--config=/tmp/spread.yaml']
runpy.run_path('$S/lease10_c.py', run_name='__main__')
" 2>&1 | grep -v "Warn\|warn_once"
done
