"""Rule score_detections: pycocotools COCOeval -> results/map_{variant}.json and .npz."""

from retinaflow.evaluate import score_file
from retinaflow.scripting import job_logging

with job_logging(snakemake.log[0], snakemake.threads) as log:
    result = score_file(
        snakemake.input.annotations,
        snakemake.input.detections,
        snakemake.output[0],
        max_detections=snakemake.params.max_detections,
        arrays_path=snakemake.output.arrays,
    )
    log.info("bbox_mAP %.4f (%s)", result["bbox_mAP"], result["bbox_mAP_copypaste"])
