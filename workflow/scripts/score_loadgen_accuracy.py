"""Rule score_loadgen_accuracy: mlperf_log_accuracy.json -> results/map_loadgen_{variant}.json."""

from retinaflow.perf.accuracy import score_accuracy_file
from retinaflow.scripting import job_logging

with job_logging(snakemake.log[0]) as log:
    result = score_accuracy_file(
        snakemake.input.accuracy,
        snakemake.input.annotations,
        snakemake.output[0],
        max_detections=snakemake.params.max_detections,
    )
    log.info("bbox_mAP %.4f (%s)", result["bbox_mAP"], result["bbox_mAP_copypaste"])
