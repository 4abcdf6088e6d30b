"""Rule quantize_head: calibrate the export on the calibration list -> QDQ int8 ONNX."""

from retinaflow.calibration import calibration_set, check_disjoint, read_calibration_list
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
    # never calibrate on a scored image: the list must share none with the evaluation split
    check_disjoint(snakemake.input.calibration, snakemake.input.evaluation)
    images = read_calibration_list(snakemake.input.calibration, snakemake.input.calibration_images)
    record = quantize_head(
        snakemake.input.onnx,
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
    c = p.calibration
    record["calibration"] = {
        **calibration_set(c["source"], len(images), c.get("seed")),
        "list": str(snakemake.input.calibration),
    }
    write_json(snakemake.output.record, record)
    log.info("quantized with %s on %d images", snakemake.wildcards.method, len(images))
