# The wheels every lease script installs on the H200 machine (`.whl`, gitignored, ~27 MB): what
# the workflow needs there and the machine's image lacks (its package list:
# /work/.library/device/KINDS.md), for its Python 3.12. Run here, from the repository root, on
# a machine with pip and the package registries; then carry ".whl". Made so for the ninth lease.
set -e
rm -rf .whl && mkdir -p .whl
# snakemake and its dependencies, LoadGen, pycocotools, jsonschema, at requirements.txt's pins,
# less what the H200 image has (numpy, pyyaml, requests, jinja2, psutil, packaging, ...); and
# cuDNN's frontend Python bindings for cudnn_trunk_probe.py (1.16.0: 2 MB, no dependencies;
# later ones need nvidia-cutlass-dsl and apache-tvm-ffi)
NEED="snakemake==9.27.1 mlcommons_loadgen==6.0.17 pycocotools==2.0.11 jsonschema==4.26.0
conda-inject==1.3.2 connection_pool==0.0.3 docutils==0.22.4 dpath==2.2.0
jsonschema-specifications==2025.9.1 PuLP==3.3.2 referencing==0.37.0 rpds-py==2026.9.1
smart_open==7.7.1 snakemake-interface-common==1.23.0 ConfigArgParse==1.9.0
snakemake-interface-executor-plugins==9.4.0 snakemake-interface-logger-plugins==2.1.0
snakemake-interface-report-plugins==1.3.0 snakemake-interface-scheduler-plugins==2.0.2
snakemake-interface-storage-plugins==4.4.1 humanfriendly==10.0 sqlmodel==0.0.37 tenacity==9.2.1
throttler==1.2.3 yte==1.9.4 GitPython==3.2.1 immutables==0.21 nbformat==5.11.1
platformdirs==4.14.8 argparse-dataclass==2.0.0 fastjsonschema==2.22.3 gitdb==4.0.12
jupyter_core==5.9.1 pydantic==2.14.4 pydantic_core==2.50.5 SQLAlchemy==2.0.58 traitlets==5.16.1
annotated-types==0.8.0 greenlet==3.5.6 smmap==5.0.3 typing-inspection==0.4.5
nvidia-cudnn-frontend==1.16.0"
PLATFORMS=""
for p in manylinux_2_28 manylinux_2_27 manylinux_2_24 manylinux_2_17 manylinux2014 manylinux_2_12 \
         manylinux2010 manylinux_2_5 manylinux1; do PLATFORMS="$PLATFORMS --platform ${p}_x86_64"; done
for spec in $NEED; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp $PLATFORMS -d .whl "$spec" 2>/dev/null \
  || python3 -m pip wheel -q --no-deps -w .whl "$spec"  # sdist only (connection_pool): pure Python
done
ls .whl | wc -l && du -sh .whl
