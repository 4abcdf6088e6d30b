# Eighth lease, fourth call: lease8_b.sh again after two fixes to the in-place reading
# (lend8_prof.py showed it at 7.31 ms of kernels a batch against 4.85 dense): the sub-chunk's
# size from the interior's length (the padded length doubled it on P6-P7, where the frame's
# sub-chunks then filled the floor: the histogram passes ran), and pass 0's frame verdicts a
# sub-chunk, broadcast over [GROUP, SUB] loads. From the repository root, on nvidia-h200,
# carrying .whl and .devrun/old_src (`git archive 0637d9c src`: the code before lending).
# TAG=d (the fifth call): the same after a third fix, the frame's geometry constexpr in the
# kernels (the masked loads were no longer vectorized: a mask of unknown constancy).
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src:/tmp/site
O=${OUT:-/tmp/out}; mkdir -p models $O
S=benchmarks/records/gpu-h200/scripts
nvidia-smi -L
python3 $S/lend8_prof.py 2>&1 | grep -v Warn | grep -v _warn_once > $O/lend8-prof-${TAG:-c}.txt; grep "==" $O/lend8-prof-${TAG:-c}.txt
# TAG=d: LoadGen only where the in-place post-processing's kernels are within 0.5 ms of dense
if [ "${TAG:-c}" = d ]; then
  python3 - $O/lend8-prof-d.txt <<'PY' || exit 0
import re, sys
dense, in_place = [float(x) for x in re.findall(r"GPU kernel time ([0-9.]+)", open(sys.argv[1]).read())]
sys.exit(0 if in_place <= dense + 0.5 else 1)
PY
fi
python3 scripts/random_weights.py models/rand800.pt --class-bias -1
C="--configfile config/demo.yaml config/gpu.yaml benchmarks/records/gpu-h200/mlperf-random-800.yaml"
for code in old new; do
  if [ $code = old ]; then export PYTHONPATH=$PWD/.devrun/old_src/src:/tmp/site; else export PYTHONPATH=$PWD/src:/tmp/site; fi
  python3 -m snakemake results/perf_torch-int8_Offline.json -f --cores 16 $C > $O/log_offline_int8_${code}_${TAG:-c}.txt 2>&1 || tail -20 $O/log_offline_int8_${code}_${TAG:-c}.txt
  cp results/perf_torch-int8_Offline.json $O/perf_torch-int8_Offline_workers2_lease8_${code}_${TAG:-c}.json
  python3 -c "import json;d=json.load(open('results/perf_torch-int8_Offline.json'));print('Offline torch-int8 $code:', d['qps'], d.get('result', ''), d['stages_ms'])"
done
