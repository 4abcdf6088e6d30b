"""Rule quantize_torch_head: calibrate the float network on the calibration list -> the
torch-int8 build (checkpoint and activation ranges, model/int8_head.py)."""

from retinaflow.calibration import calibration_record, quantization_images
from retinaflow.io import write_json
from retinaflow.model.int8_head import BUILD_FORMAT, calibrate_images, store_int8_build
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
    inputs = snakemake.input
    if p.build_format != BUILD_FORMAT:
        raise ValueError(
            f"rule quantize_torch_head names build format {p.build_format!r}, the library "
            f"writes {BUILD_FORMAT!r}: set the rule's build_format to the library's"
        )
    # never a scored image: the list must share none with the evaluation split
    images = quantization_images(inputs.calibration, inputs.calibration_images, inputs.evaluation)
    amax = calibrate_images(
        inputs.weights, images, p.model, p.resize_kernel, p.device, p.batch_size
    )
    record = {
        "variant": "torch-int8",
        "method": "max",
        "device": p.device,
        "tensors": len(amax),
        "calibration": calibration_record(p.calibration, len(images), inputs.calibration),
    }
    store_int8_build(inputs.weights, amax, snakemake.output.build, record)
    write_json(snakemake.output.record, record)
    log.info("calibrated %d tensors on %d images (%s)", len(amax), len(images), p.device)
