"""Rule quantize_torch_head: calibrate the float network on the calibration list -> the
torch-int8 build (checkpoint and activation ranges, model/int8_head.py)."""

from retinaflow.calibration import calibration_set, check_disjoint, read_calibration_list
from retinaflow.io import write_json
from retinaflow.model.int8_head import calibrate_images, store_int8_build
from retinaflow.scripting import config_keys, job_logging

settings = config_keys(
    snakemake.config,
    "infer",
    calibration_source="calibration.source",
    calibration_seed="calibration.seed",
    evaluation_seed="dataset.demo.seed",
)
with job_logging(snakemake.log[0], snakemake.threads, settings=settings) as log:
    p = snakemake.params
    # never calibrate on a scored image: the list must share no image with the evaluation split
    check_disjoint(snakemake.input.calibration, snakemake.input.evaluation)
    images = read_calibration_list(snakemake.input.calibration, snakemake.input.calibration_images)
    amax = calibrate_images(
        snakemake.input.weights, images, p.model, p.resize_kernel, p.device, p.batch_size
    )
    c = p.calibration
    record = {
        "variant": "torch-int8",
        "method": "max",
        "device": p.device,
        "tensors": len(amax),
        "calibration": {
            **calibration_set(c["source"], len(images), c.get("seed")),
            "list": str(snakemake.input.calibration),
        },
    }
    store_int8_build(snakemake.input.weights, amax, snakemake.output.build, record)
    write_json(snakemake.output.record, record)
    log.info("calibrated %d tensors on %d images (%s)", len(amax), len(images), p.device)
