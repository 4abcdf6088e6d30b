#!/usr/bin/env bash
# Makes .devrun/tvmcuda/tvmcuda.tar.xz (on the CPU machine, from the repository root):
#   tvmrt/site/tvm      TVM 0.27 from .venv without lib/libtvm_compiler.so (259 MB), 3rdparty,
#                       src, include, web, cmake, lib64, __pycache__; tvm/relax replaced by
#                       bundle_src/relax_init.py (the VM only: relax needs the compiler library)
#   tvmrt/site/tvm_cuda_runtime_hook.py + its dist-info (entry point group tvm.backends)
#   tvmrt/whl/          apache-tvm-ffi, the local version, cp312 manylinux wheel (pip download)
#   tvmrt/builds/demo/{int8,fp16}/{module.so,meta.json}   from $BUILDS (default /tmp/tvmwt: a
#                       `git archive HEAD` copy where the CUDA builds were made, see README)
set -euo pipefail
HERE=.devrun/tvmcuda
BUILDS=${BUILDS:-/tmp/tvmwt}
SITE=.venv/lib/python3.11/site-packages
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/tvmrt/site" "$STAGE/tvmrt/whl"
tar -C "$SITE" -cf - --exclude=__pycache__ --exclude=tvm/3rdparty --exclude=tvm/src \
  --exclude=tvm/include --exclude=tvm/web --exclude=tvm/lib64 --exclude=tvm/cmake \
  --exclude=tvm/relax --exclude=tvm/lib/libtvm_compiler.so tvm | tar -xf - -C "$STAGE/tvmrt/site"
FFI=$(.venv/bin/python -m pip show apache-tvm-ffi | sed -n 's/^Version: //p')
.venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$STAGE/tvmrt/whl" "apache-tvm-ffi==$FFI"
for b in int8 fp16; do
  mkdir -p "$STAGE/tvmrt/builds/demo/$b"
  cp -p "$BUILDS/builds/demo/$b/module.so" "$BUILDS/builds/demo/$b/meta.json" "$STAGE/tvmrt/builds/demo/$b/"
done
tar -C "$STAGE" -cf - tvmrt | xz -9e -T2 > "$HERE/tvmcuda.tar.xz"
ls -l "$HERE/tvmcuda.tar.xz"
