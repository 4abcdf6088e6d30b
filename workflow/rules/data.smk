# Dataset: the evaluation split, data/{dataset}/annotations.json and images/ (the demo's
# generator, or OpenImages through dataset.source).


if config["dataset"]["source"] == "demo":

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
        resources:
            mem_mb=mem_mb("data"),
        params:
            num_images=lookup(within=config, dpath="dataset/demo/num_images"),
            seed=lookup(within=config, dpath="dataset/demo/seed"),
        script:
            "../scripts/make_demo_dataset.py"

else:

    rule fetch_dataset:
        output:
            annotations="data/{dataset}/annotations.json",
            images=directory("data/{dataset}/images"),
        log:
            "logs/data/{dataset}.log",
        benchmark:
            "benchmarks/data/{dataset}.tsv"
        conda:
            "../../envs/data.yaml"
        threads: 2
        resources:
            mem_mb=mem_mb("data"),
        params:
            source=lookup(within=config, dpath="dataset/source"),
            max_images=lookup(within=config, dpath="dataset/max_images"),
            seed=lookup(within=config, dpath="dataset/seed"),
            local_root=lookup(within=config, dpath="dataset/local_root"),
            zoo_dir=lookup(within=config, dpath="dataset/zoo_dir"),
            cache_root=lookup(within=config, dpath="dataset/cache"),
            urls=lookup(within=config, dpath="dataset/urls"),
            download=lookup(within=config, dpath="dataset/download"),
        script:
            "../scripts/fetch_dataset.py"
