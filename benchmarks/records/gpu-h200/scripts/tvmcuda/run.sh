#!/usr/bin/env bash
# (as it ran on the H200, from .devrun/tvmcuda: HERE below; the bundle made by make_bundle.sh)
# The demo's TVM CUDA builds on the GPU machine, through the project's DAG, scored; then the
# heads timed (TVM CUDA vs PyTorch). Run from the repository root AFTER the .whl install:
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
#   export PYTHONPATH=$PWD/src:/tmp/site PATH=/tmp/site/bin:$PATH
#   bash .devrun/tvmcuda/run.sh
# Carried: .whl and .devrun/tvmcuda (tvmcuda.tar.xz: runtime-only TVM 0.27 without
# libtvm_compiler.so + the tvm_cuda_runtime_hook entry point, the cp312 apache-tvm-ffi wheel,
# builds/demo/{int8,fp16}/{module.so,meta.json} made on the CPU machine with compile.target
# {kind: cuda, arch: sm_90}, kernels as CUDA C source). Writes at most 6 files into $OUT.
set -euo pipefail
HERE=.devrun/tvmcuda
OUT=${OUT:?set OUT}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/run.log") 2>&1
TEE_PID=$!
status=0
T0=$(date +%s)
step() { echo; echo "=== $* ($(($(date +%s) - T0)) s)"; }

collect() {
  set +e
  step "collect into \$OUT"
  python3 - "$OUT" <<'EOF'
import glob, json, os, sys
out = sys.argv[1]
maps, stats = {}, {}
for f in sorted(glob.glob("results/map_*.json")):
    d = json.load(open(f))
    maps[os.path.basename(f)[4:-5]] = {k: v for k, v in d.items() if not isinstance(v, (dict, list))}
for f in sorted(glob.glob("preds/*/*/stats.json")):
    stats[f.split("/")[2]] = json.load(open(f))
json.dump(maps, open(f"{out}/maps.json", "w"), indent=1)
json.dump(stats, open(f"{out}/stats.json", "w"), indent=1)
for v, d in maps.items():
    print(f"{v:<12} bbox_mAP {d.get('bbox_mAP')}  mAP_50 {d.get('bbox_mAP_50')}")
for v, d in stats.items():
    print(f"{v:<12} " + json.dumps({k: d.get(k) for k in ("device", "device_name", "images", "images_per_s", "stages_ms") if k in d})[:300])
EOF
  tar -czf "$OUT/logs.tar.gz" logs .snakemake/log builds/demo/*/meta.json 2>/dev/null
  echo "exit status $status, $(($(date +%s) - T0)) s"
  exec 1>&- 2>&-
  wait "$TEE_PID" 2>/dev/null || true  # run.log complete before $OUT is read back
}
trap collect EXIT

step "unpack the bundle"
tar -xJf "$HERE/tvmcuda.tar.xz" -C /tmp
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
  --target /tmp/tvmrt/site /tmp/tvmrt/whl/apache_tvm_ffi-*-cp312-*.whl
mkdir -p builds/demo
cp -rp /tmp/tvmrt/builds/demo/int8 /tmp/tvmrt/builds/demo/fp16 builds/demo/

# TVM runtime only (tvm/base.py): libtvm_runtime.so, no libtvm_compiler.so (not in the bundle);
# retinaflow's TvmRunner loads libtvm_runtime_cuda.so and registers the CUDA compile callback
# (NVRTC via cuda-bindings) itself (tvm_runner.cuda_runtime_ready)
export PYTHONPATH=$PWD/src:/tmp/site:/tmp/tvmrt/site PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1
export TVM_USE_RUNTIME_LIB=1
# tvm_ffi would otherwise JIT-build a torch DLPack addon (C++/CUDA, minutes) where torch lacks
# __dlpack_c_exchange_api__; the runner hands numpy arrays, it needs none
export TVM_FFI_DISABLE_TORCH_C_DLPACK=1
# libtvm_runtime_cuda.so needs libcudart.so.13 (and the driver's libcuda.so.1): the one torch
# loads, from the nvidia-cuda-runtime package, so that both share one CUDA runtime
CUDART_DIR=$(python3 - <<'EOF'
import glob, importlib.util, os
spec = importlib.util.find_spec("nvidia")
roots = list(spec.submodule_search_locations or []) if spec else []
hits = [p for r in roots for p in sorted(glob.glob(os.path.join(r, "**", "libcudart.so.13"), recursive=True))]
hits += glob.glob("/usr/local/cuda*/lib64/libcudart.so.13") + glob.glob("/usr/local/cuda*/targets/*/lib/libcudart.so.13")
print(os.path.dirname(hits[0]) if hits else "")
EOF
)
if [ -n "$CUDART_DIR" ]; then export LD_LIBRARY_PATH=$CUDART_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}; fi
# NVRTC needs the toolkit's headers (cuda_runtime.h, cccl): the toolkit of the nvcc on PATH
NVCC=$(command -v nvcc || true)
for d in "${CUDA_PATH:-}" "${CUDA_HOME:-}" "${NVCC:+$(dirname "$(dirname "$(readlink -f "$NVCC")")")}" \
    /usr/local/cuda /usr/local/cuda-13.0; do
  if [ -n "$d" ] && compgen -G "$d/include/cuda_runtime.h" >/dev/null; then export CUDA_PATH=$d; break; fi
  if [ -n "$d" ] && compgen -G "$d/targets/*/include/cuda_runtime.h" >/dev/null; then export CUDA_PATH=$d; break; fi
done

step "versions"
nvidia-smi -L || true
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
nvcc --version | tail -2 || true
echo "CUDART_DIR=$CUDART_DIR CUDA_PATH=${CUDA_PATH:-unset} nvcc=$NVCC"
python3 -c 'import sys, torch, numpy; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0), "numpy", numpy.__version__)' || true
python3 -c 'import cuda.bindings, cuda.bindings.nvrtc as n; print("cuda-bindings", cuda.bindings.__version__, "nvrtc", n.nvrtcVersion())' || true
python3 -m snakemake --version || true

step "smoke: import tvm, load each build (JIT-compiles its CUDA C), run once on zeros"
BUILDS="builds/demo/int8/module.so builds/demo/fp16/module.so"
python3 "$HERE/check_load.py" $BUILDS || status=1

# The DAG: the builds and their meta are inputs it cannot remake here (compile_head needs TVM's
# compiler, simplify_head onnxsim): only the rules that run here are allowed, so the carried
# builds are taken as they are (no export, quantize, tune or compile job); the dataset and the
# weights are made here, as on any machine.
TARGETS="results/map_int8.json results/map_fp16.json results/map_torch.json results/map_torch-fp16.json"
CONF="--configfile config/demo.yaml $HERE/cuda.yaml $HERE/infer-cuda.yaml"
ALLOWED="--allowed-rules make_demo_dataset fetch_weights infer score_detections"
step "DAG dry run"
python3 -m snakemake -n --cores 16 $TARGETS $CONF $ALLOWED 2>&1 | grep -E "^[a-z_]+ +[0-9]+$|reason:|rror" || true
step "DAG run"
timeout 270 python3 -m snakemake --cores 16 $TARGETS $CONF $ALLOWED --keep-going > /tmp/dag.log 2>&1 || status=1
grep -vE "^\s*$|^(    |\[|Select jobs|Execute|Finished job|localrule)" /tmp/dag.log | tail -60 || true
for t in $TARGETS; do [ -f "$t" ] || { echo "missing $t"; status=1; }; done
grep -hE "stages|Error|error" logs/infer/demo-int8.log logs/infer/demo-fp16.log 2>/dev/null | cut -c1-400 | tail -20 || true
grep -h "NVRTC" logs/infer/*.log 2>/dev/null | head -4 || true

step "GPU decode vs CPU decode of the demo images (pixels)"
timeout 60 python3 "$HERE/decode_check.py" || true

step "heads timed: TVM CUDA fp16/int8 vs PyTorch fp32/fp16, batch 1"
timeout 120 python3 "$HERE/head_timing.py" --json "$OUT/head_timing.json" || status=1
exit $status
