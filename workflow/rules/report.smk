# Report: the figures and tables of `snakemake --report results/report.html report_all`
# (results/plots/, marked report(...), captions in workflow/report/) and the FiftyOne dataset
# of every variant's detections. Run `snakemake report_all` first: --report needs them made.


rule plot_accuracy:
    input:
        summary="results/summary.csv",
        arrays=expand("results/map_{variant}.npz", variant=VARIANTS),
        annotations=dataset_files()["annotations"],
    output:
        table=report(
            "results/plots/summary.html",
            caption="../report/summary.rst",
            category="1. Accuracy",
        ),
        map=report(
            "results/plots/map.png",
            caption="../report/map.rst",
            category="1. Accuracy",
        ),
        pr=report(
            "results/plots/pr_curves.png",
            caption="../report/pr_curves.rst",
            category="1. Accuracy",
        ),
        class_ap=report(
            "results/plots/class_ap.png",
            caption="../report/class_ap.rst",
            category="1. Accuracy",
        ),
    log:
        "logs/report/accuracy.log",
    benchmark:
        "benchmarks/report/accuracy.tsv"
    conda:
        "../../envs/report.yaml"
    params:
        variants=VARIANTS,
        classes=lookup(within=config, dpath="report/classes"),
    script:
        "../scripts/plot_accuracy.py"


rule draw_detection_grid:
    input:
        **dataset_files(),
        detections=expand(
            "preds/{model}/{variant}/detections.json", model=MODEL, variant=VARIANTS
        ),
    output:
        report(
            "results/plots/detections.png",
            caption="../report/detections.rst",
            category="2. Detections",
        ),
    log:
        "logs/report/detections.log",
    benchmark:
        "benchmarks/report/detections.tsv"
    conda:
        "../../envs/report.yaml"
    params:
        variants=VARIANTS,
        images=lookup(within=config, dpath="report/images"),
        seed=lookup(within=config, dpath="report/seed"),
        min_score=lookup(within=config, dpath="infer/draw_min_score"),
    script:
        "../scripts/draw_detection_grid.py"


rule fiftyone_load:
    # every variant's detections and the ground truth in a persistent FiftyOne dataset,
    # FiftyOne's COCO evaluation of each, next to pycocotools' mAP
    input:
        **dataset_files(),
        detections=expand(
            "preds/{model}/{variant}/detections.json", model=MODEL, variant=VARIANTS
        ),
        maps=expand("results/map_{variant}.json", variant=VARIANTS),
    output:
        json="results/fiftyone.json",
        table=report(
            "results/plots/fiftyone.html",
            caption="../report/fiftyone.rst",
            category="2. Detections",
        ),
    log:
        "logs/report/fiftyone.log",
    benchmark:
        "benchmarks/report/fiftyone.tsv"
    conda:
        "../../envs/report.yaml"
    resources:
        mem_mb=mem_mb("score"),
    params:
        name=fiftyone_dataset_name(),
        variants=VARIANTS,
        max_detections=lookup(within=config, dpath="score/max_detections"),
    script:
        "../scripts/fiftyone_load.py"


rule plot_speed:
    input:
        perf=list(report_perf_records().values()),
        speed="results/speed.json",
    output:
        table=report(
            "results/plots/speed.html",
            caption="../report/speed_table.rst",
            category="3. Speed",
        ),
        speed=report(
            "results/plots/speed.png",
            caption="../report/speed.rst",
            category="3. Speed",
        ),
        latency=report(
            "results/plots/latency.png",
            caption="../report/latency.rst",
            category="3. Speed",
        ),
    log:
        "logs/report/speed.log",
    benchmark:
        "benchmarks/report/speed.tsv"
    conda:
        "../../envs/report.yaml"
    params:
        records=list(report_perf_records()),
    script:
        "../scripts/plot_speed.py"


rule plot_stage_times:
    # last: every other job of the report has written its benchmark file by then
    input:
        rules.plot_accuracy.output,
        rules.draw_detection_grid.output,
        rules.fiftyone_load.output,
        rules.plot_speed.output,
    output:
        report(
            "results/plots/stage_times.png",
            caption="../report/stage_times.rst",
            category="4. Jobs",
        ),
    log:
        "logs/report/stage_times.log",
    benchmark:
        "benchmarks/report/stage_times.tsv"
    conda:
        "../../envs/report.yaml"
    params:
        root="benchmarks",
    script:
        "../scripts/plot_stage_times.py"


rule report_all:
    # the report's inputs; then: snakemake --report results/report.html report_all
    input:
        rules.plot_stage_times.output,
        rules.plot_accuracy.output,
        rules.draw_detection_grid.output,
        rules.fiftyone_load.output,
        rules.plot_speed.output,
