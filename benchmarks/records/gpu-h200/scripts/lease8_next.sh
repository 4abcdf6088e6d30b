# Run in the eighth lease (benchmarks/gpu-h200.md): from the repository root, on nvidia-h200, carrying
# .whl and .devrun/old_src (`git archive fb1a7f0 src | tar -x -C .devrun/old_src`: the
# post-processing before its five levels were decoded in one pass). About 7 minutes.
# 1. The demo's mAP on the GPU (torch-int8, torch-fp16): copy_interior (the seventh lease's
#    last change) is exact in the interpreter's tests but ran on the H200 only in timings.
# 2. int8_1x1_bench.py: the trunk's stride-1 1x1s as an int8 Triton GEMM (the head kernel's
#    epilogue: scale, bias, residual, ReLU, quantization) against cuDNN's fused fp16 calls:
#    the first number an int8 trunk needs (checked in Triton's interpreter, --check-only).
# 3. head_prof7.py, then LoadGen Offline torch-int8 with perf.workers 2 then 4, on one
#    machine: the seventh lease's last LoadGen figure (963.3, copy_interior) ran on a machine
#    whose post-processing took 1.035 ms an image against 0.836 on the machine of the 1,017.
# 4. prof_new.py, the post-processing alone (GPU kernel time and wall time a batch of 32),
#    the code before (decode and clip level by level: 691 torch calls a batch on the CPU
#    device) and after (the five levels at once: 425; and one torch.topk of the five levels'
#    candidate buffers stacked, radix_topk._best_of_levels, instead of one a level).
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src:/tmp/site
O=${OUT:-/tmp/out}; mkdir -p $O
S=benchmarks/records/gpu-h200/scripts
nvidia-smi -L
python3 -m snakemake results/map_torch-int8.json results/map_torch-fp16.json --cores 16 --configfile config/demo.yaml config/gpu.yaml > $O/log_demo.txt 2>&1 || tail -30 $O/log_demo.txt
for v in int8 fp16; do cp results/map_torch-$v.json $O/map_torch-${v}_lease8.json; python3 -c "import json;print('$v', json.load(open('results/map_torch-$v.json'))['bbox_mAP'])"; done
python3 $S/int8_1x1_bench.py 2>&1 | tee $O/int8-1x1-bench.txt
python3 $S/head_prof7.py 32 2>&1 | grep -v Warn | grep -v _warn_once > $O/head-profile-lease8.txt; head -3 $O/head-profile-lease8.txt
TAG=lease8 WORKERS="2 4" bash $S/lease7_d.sh
for code in old new; do
  if [ $code = old ]; then export PYTHONPATH=$PWD/.devrun/old_src/src:/tmp/site; else export PYTHONPATH=$PWD/src:/tmp/site; fi
  echo "== post-processing, $code"; python3 $S/prof_new.py 2>&1 | grep -v warn | tee $O/postprocess-profile-lease8-$code.txt | grep "wall\|GPU kernel time"
done
