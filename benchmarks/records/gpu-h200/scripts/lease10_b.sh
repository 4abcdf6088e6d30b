# Run in the tenth lease (lease10-chains.txt, cudnn-trunk-probe.*), after lease10_next.sh. From the repository root on
# nvidia-h200, carrying .whl (make_wheels.sh: it holds nvidia-cudnn-frontend 1.16.0). About 7
# minutes: the int8 heads' chains on streams of their own against one after another
# (lease10_chains.py), then cuDNN's fp8 and int8 convolutions for every trunk conv against
# its fp16 calls (cudnn_trunk_probe.py).
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src:/tmp/site
O=${OUT:-/tmp/out}; mkdir -p $O
S=benchmarks/records/gpu-h200/scripts
nvidia-smi -L
python3 $S/lease10_chains.py 2>&1 | grep -v "Warn\|warn_once" | tee $O/lease10-chains.txt
python3 $S/cudnn_trunk_probe.py 2>&1 | grep -v "Warn\|warn_once" | tee $O/cudnn-trunk-probe.txt
