"""Rule quantize_head: calibrate the export on the calibration list -> QDQ int8 ONNX."""

from retinaflow.calibration import calibration_record, quantization_images
from retinaflow.io import write_json
from retinaflow.quantize import quantize_head
from retinaflow.scripting import config_keys, job_logging

settings = config_keys(
    snakemake.config,
    "quantize",
    calibration_source="calibration.source",
    calibration_seed="calibration.seed",
    evaluation_seed="dataset.demo.seed",
)
with job_logging(snakemake.log[0], snakemake.threads, settings=settings) as log:
    p = snakemake.params
    inputs = snakemake.input
    # never a scored image: the list must share none with the evaluation split
    images = quantization_images(inputs.calibration, inputs.calibration_images, inputs.evaluation)
    record = quantize_head(
        inputs.onnx,
        snakemake.output.onnx,
        images,
        p.image_size,
        resize_kernel=p.resize_kernel,
        method=snakemake.wildcards.method,
        per_channel=p.per_channel,
        activation_type=p.activation_type,
        percentile=p.percentile,
        histogram_bins=p.histogram_bins,
    )
    record["calibration"] = calibration_record(p.calibration, len(images), inputs.calibration)
    write_json(snakemake.output.record, record)
    log.info("quantized with %s on %d images", snakemake.wildcards.method, len(images))
