# Seventh lease, third part: the last conv's float16 map stored without its frame (no copy of
# the interior): `interior-store.patch` (beside this script) applied to 32ab36b's
# src/retinaflow/triton_conv.py (`patch -p1 < ...`), measured, then reverted. From the
# repository root on nvidia-h200, carrying .whl.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1
O=${OUT:-/tmp/out}; mkdir -p models $O
nvidia-smi -L
S=benchmarks/records/gpu-h200/scripts
export PYTHONPATH=$PWD/src:/tmp/site
python3 $S/head_prof7.py 32 2>&1 | grep -v Warn | grep -v _warn_once > $O/head-profile-lease7-interior.txt
cat $O/head-profile-lease7-interior.txt
python3 scripts/random_weights.py models/rand800.pt --class-bias -1
C="--configfile config/demo.yaml config/gpu.yaml benchmarks/records/gpu-h200/mlperf-random-800.yaml"
python3 -m snakemake results/perf_torch-int8_Offline.json -f --cores 16 $C > $O/log_offline_c.txt 2>&1 || tail -20 $O/log_offline_c.txt
cp results/perf_torch-int8_Offline.json $O/perf_torch-int8_Offline_workers2_lease7_interior.json
python3 -c "import json;d=json.load(open('results/perf_torch-int8_Offline.json'));print('Offline torch-int8 interior store:', d['qps'], d['stages_ms'])"
