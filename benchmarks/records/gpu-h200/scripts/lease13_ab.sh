# Thirteenth lease, the A/B that lease13_c.sh meant (run inline as three calls, lease13-c2.txt,
# lease13-e.txt, lease13-f.txt): the gpu benchmark's torch-int8 head, the code before
# (`.devrun/old` = `git archive d178c82 src config`) against this one, alternated; then the
# head's kernels by name (head_prof7.py) with this code; then lease13_d.sh (the demo's mAP
# gate on the GPU). Needs lease13_c.sh's models/spread800.pt and data/demo first. From the
# repository root on nvidia-h200, carrying .whl and .devrun; ~7 minutes.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1
NEW=$PWD/src:/tmp/site OLD=$PWD/.devrun/old/src:/tmp/site
ls models/spread800.pt data/demo/images > /dev/null || exit 3
for code in old new old new; do
  [ $code = new ] && P=$NEW || P=$OLD
  echo "== int8 FPN convs, pack by padding: $code code"
  PYTHONPATH=$P timeout 90 python3 -m retinaflow.benchmarks gpu --arch resnext50_32x4d_fpn --size 800 --batch-sizes 32 \
    --variants torch-int8 --compile default --cuda-graphs on --iters 20 --weights models/spread800.pt \
    --images data/demo/images 2>&1 | grep '^torch-int8 '
done
echo "== new, profile"
PYTHONPATH=$NEW timeout 120 python3 benchmarks/records/gpu-h200/scripts/head_prof7.py 2>&1 | grep -v Warn | head -32
echo "== demo mAP gate"
timeout 250 bash benchmarks/records/gpu-h200/scripts/lease13_d.sh 2>&1 | grep -v Warn | tail -5
