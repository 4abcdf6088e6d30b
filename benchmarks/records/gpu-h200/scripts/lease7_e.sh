# Seventh lease, last call: the float16 maps' interiors copied by triton_conv.copy_interior
# (a row slice a program) instead of .contiguous() (PyTorch's generic strided copy). From the
# repository root on nvidia-h200, carrying .whl.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src:/tmp/site
O=${OUT:-/tmp/out}; mkdir -p models $O
nvidia-smi -L
python3 benchmarks/records/gpu-h200/scripts/head_prof7.py 32 2>&1 | grep -v Warn | grep -v _warn_once > $O/head-profile-lease7-copy-interior.txt
head -8 $O/head-profile-lease7-copy-interior.txt; grep "interior_copy\|P3:" $O/head-profile-lease7-copy-interior.txt
python3 scripts/random_weights.py models/rand800.pt --class-bias -1
C="--configfile config/demo.yaml config/gpu.yaml benchmarks/records/gpu-h200/mlperf-random-800.yaml"
python3 -m snakemake results/perf_torch-int8_Offline.json -f --cores 16 $C > $O/log_offline_e.txt 2>&1 || tail -20 $O/log_offline_e.txt
cp results/perf_torch-int8_Offline.json $O/perf_torch-int8_Offline_workers2_lease7_copy-interior.json
python3 -c "import json;d=json.load(open('results/perf_torch-int8_Offline.json'));print('Offline torch-int8 copy_interior:', d['qps'], d['stages_ms'])"
