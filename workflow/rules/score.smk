# Scoring: pycocotools' COCO mAP of a variant's detections (results/map_{variant}.json) and
# COCOeval's precision arrays (results/map_{variant}.npz: the report's PR curves, per-class AP).


rule score_detections:
    input:
        detections=f"preds/{MODEL}/{{variant}}/detections.json",
        annotations=dataset_files()["annotations"],
    output:
        "results/map_{variant}.json",
        arrays="results/map_{variant}.npz",
    log:
        "logs/score/{variant}.log",
    benchmark:
        "benchmarks/score/{variant}.tsv"
    conda:
        "../../envs/score.yaml"
    resources:
        mem_mb=mem_mb("score"),
    params:
        max_detections=lookup(within=config, dpath="score/max_detections"),
    script:
        "../scripts/score_detections.py"
