# The fifth lease's first run (benchmarks/gpu-h200.md, "Fifth lease"), as it ran on the H200 from
# the repository root with the wheels of .whl carried; .devrun/old/src was 'git archive ba7a681 src',
# .devrun/nopri/src this commit's src with STAGE_PRIORITIES' postprocess set to 0; the small
# config files: w2.yaml 'infer: {workers: 2}', gpudecode.yaml 'preprocess: {resize_kernel: torch,
# decode: gpu}', b64.yaml 'perf: {batch_size: 64}'.
# lease A: LoadGen Offline torch-int8, old code vs new in one run; infer workers 1 vs 2; demo mAP, GPU decode
set -x
D=/tmp/o; mkdir -p $D
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1
nvidia-smi -L
PYTHONPATH=src:/tmp/site python3 - <<'P'
import torch
x = torch.rand(50_000_000) * 1.0001; x[:1000] = torch.linspace(0, 1e-6, 1000)
for dt in (torch.float16, torch.bfloat16):
    print("host cast == device cast", dt, torch.equal(x.to(dt), x.cuda().to(dt).cpu()))
print(torch.cuda.Stream(priority=-1).priority, torch.cuda.Stream(priority=0).priority)
P
mkdir -p models; PYTHONPATH=src:/tmp/site python3 scripts/random_weights.py models/rand800.pt --class-bias -1
C="--configfile config/demo.yaml config/gpu.yaml benchmarks/records/gpu-h200/mlperf-random-800.yaml"
P=results/perf_torch-int8_Offline.json
run_perf() {  # $1 name, $2 src dir, rest: extra config
  name=$1; src=$2; shift 2
  PYTHONPATH=$src:/tmp/site python3 -m snakemake $P -f --cores 16 $C "$@" > $D/log_$name.txt 2>&1 || tail -30 $D/log_$name.txt
  cp $P $D/perf_$name.json
  python3 -c "import json;d=json.load(open('$P'));print('$name', d['qps'], d['valid'], d['stages_ms'], d.get('samples_in_memory'))"
}
run_perf old .devrun/old/src
run_perf nopri .devrun/nopri/src
run_perf new src
python3 benchmarks/records/gpu-h200/scripts/make_local_set.py /tmp/synth 4096 > /dev/null
S=preds/rand800/torch-fp16/stats.json
W="$C benchmarks/records/gpu-h200/synthetic-openimages-local.yaml .devrun/gpudecode.yaml"
for w in 1 2; do
  extra=""; [ $w = 2 ] && extra=.devrun/w2.yaml
  PYTHONPATH=src:/tmp/site python3 -m snakemake $S -f --cores 16 $W $extra > $D/log_infer_w$w.txt 2>&1 || tail -30 $D/log_infer_w$w.txt
  cp $S $D/infer_w$w.json
  python3 -c "import json;d=json.load(open('$S'));print('infer w$w', d.get('images_per_second_after_first_batch'), d.get('stages_ms_after_first_batch'))"
done
run_perf new_b64 src .devrun/b64.yaml
