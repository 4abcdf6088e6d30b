# Thirteenth lease (ran in the last call, lease13-f.txt): the 99% gate with the FPN's int8
# convs, on the trained demo network (the demo's 200 images, its own calibration split):
# torch-int8 against torch (fp32) and torch-fp16, on the GPU. From the repository root on nvidia-h200, carrying .whl; ~3 minutes.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src:/tmp/site
O=${OUT:-/tmp/out}; mkdir -p $O
nvidia-smi -L
timeout 400 python3 -m snakemake results/map_torch-int8.json results/map_torch.json results/map_torch-fp16.json \
  --cores 16 --configfile config/demo.yaml config/gpu.yaml > $O/lease13-d-snakemake.txt 2>&1 || { tail -30 $O/lease13-d-snakemake.txt; exit 1; }
for v in torch torch-fp16 torch-int8; do cp results/map_$v.json $O/map_${v}_lease13.json; done
cp models/demo/torch-int8.json $O/torch-int8-build-lease13.json
python3 -c "
import json
m = {v: json.load(open(f'results/map_{v}.json'))['bbox_mAP'] for v in ('torch', 'torch-fp16', 'torch-int8')}
print('bbox mAP', m, 'gate (99% of torch):', round(0.99 * m['torch'], 4), 'int8 passes:', m['torch-int8'] >= 0.99 * m['torch'])
"
