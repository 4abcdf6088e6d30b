# Ready for the next lease (not run yet): from the repository root, on nvidia-h200, carrying
# .whl and .devrun/old_src (`git archive 3abf5c4 src | tar -x -C .devrun/old_src`: the int8
# kernel's tiles before the sixth lease). About 5 minutes.
# 1. LoadGen Offline torch-int8 (20 s, perf.workers 2, the random 800x800 weights), the old
#    tiles then the new (BLOCKS (128, 128, 3, 4), block_k 128): the sixth lease timed them
#    only in int8_sweep.py, kernel by kernel (1.17x on P3's convs).
# 2. grouped_conv_bench.py: the trunk's 32-group 3x3s, cuDNN against a Triton kernel.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1
O=${OUT:-/tmp/out}; mkdir -p models $O
nvidia-smi -L
PYTHONPATH=$PWD/src:/tmp/site python3 scripts/random_weights.py models/rand800.pt --class-bias -1
C="--configfile config/demo.yaml config/gpu.yaml benchmarks/records/gpu-h200/mlperf-random-800.yaml"
for code in old new; do
  if [ $code = old ]; then export PYTHONPATH=$PWD/.devrun/old_src/src:/tmp/site; else export PYTHONPATH=$PWD/src:/tmp/site; fi
  python3 -m snakemake results/perf_torch-int8_Offline.json -f --cores 16 $C > $O/log_offline_$code.txt 2>&1 || tail -20 $O/log_offline_$code.txt
  cp results/perf_torch-int8_Offline.json $O/perf_torch-int8_Offline_workers2_lease7_$code-tiles.json
  python3 -c "import json;d=json.load(open('results/perf_torch-int8_Offline.json'));print('Offline torch-int8 $code tiles:', d['qps'], d['stages_ms'])"
done
export PYTHONPATH=$PWD/src:/tmp/site
python3 benchmarks/records/gpu-h200/scripts/grouped_conv_bench.py 2>&1 | tee $O/grouped-conv-bench.txt
cd $O && tar czf logs.tgz log_*.txt && rm log_*.txt
# 3. (added before the run) where the int8 head's time goes now: head_prof7.py
cd - > /dev/null
python3 benchmarks/records/gpu-h200/scripts/head_prof7.py 32 2>&1 | grep -v Warning | tee $O/head-profile-lease7.txt
