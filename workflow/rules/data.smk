rule make_demo_dataset:
    output:
        annotations="data/{dataset}/annotations.json",
        images=directory("data/{dataset}/images"),
    log:
        "logs/data/{dataset}.log",
    benchmark:
        "benchmarks/data/{dataset}.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        num_images=lookup(within=config, dpath="dataset/demo/num_images"),
        seed=lookup(within=config, dpath="dataset/demo/seed"),
    script:
        "../scripts/make_demo_dataset.py"
