# Eleventh lease, eighth call (as run, on the warm machine of the seventh, whose models/ and
# data/ it reuses): the gpu benchmark on the demo's images with spread800, the trunk's narrow
# groups merged or not in one call, by switching torch_runner.merges_groups off in the same
# code (lease11_e.sh's runs of the code before, through PYTHONPATH=.devrun/old_src, printed no
# figures). Carrying .whl; ~2 minutes.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1
export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src:/tmp/site
A="gpu --arch resnext50_32x4d_fpn --size 800 --batch-sizes 32 --variants torch-int8 --compile default --cuda-graphs on --iters 20 --weights models/spread800.pt --images data/demo/images"
for m in off on; do echo "== merge $m"; timeout 95 python3 -c "
import sys, runpy
import retinaflow.runtime.torch_runner as t
if '$m' == 'off':
    t.merges_groups = lambda device, fused: False
sys.argv = ['retinaflow.benchmarks'] + '$A'.split()
runpy.run_module('retinaflow.benchmarks', run_name='__main__')
" 2>&1 | grep -v Warn | grep 'torch-int8 \|Error\|error' | tail -3; done 2>&1 | tee $OUT/lease11-f.txt
