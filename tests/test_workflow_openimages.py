"""The real benchmark's DAG (config/config.yaml) against a local OpenImages server: the
`direct` dataset source, a TorchScript checkpoint of the MLPerf architecture (random weights),
export, ONNX Runtime inference and scoring, at a small input size."""

import json
import re

import pytest
import torch

from retinaflow.data.openimages.tables import mlperf_classes
from retinaflow.model.architectures import build_retinanet

from .http_server import FakeOpenImages, FileServer
from .workflow import snakemake, write_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def openimages_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("openimages-run")
    torch.manual_seed(0)
    model = build_retinanet("resnext50_32x4d_fpn", 264, 128).eval()
    with torch.no_grad():
        model.head.classification_head.cls_logits.bias.normal_(-1.0, 1.0)
    torch.jit.script(model).save(str(root / "resnext50_32x4d_fpn.pth"))
    fake = FakeOpenImages(mlperf_classes(), n_images=24, seed=11)
    with FileServer() as server:
        urls = fake.serve(server)
        overrides = {
            "dataset": {
                "name": "openimages",
                "cache": str(root / "downloads"),
                "download": {"workers": 4},
                "urls": {
                    "boxes": urls["boxes_url"],
                    "class_map": urls["class_map_url"],
                    "images": urls["images_url"],
                },
            },
            "model": {
                "image_size": 128,
                "weights": {"source": "local", "path": str(root / "resnext50_32x4d_fpn.pth")},
            },
            "infer": {"threads": 2, "batch_size": 4},
        }
        config = write_config(root / "test.yaml", overrides)
        work = root / "work"
        work.mkdir()
        snakemake(work, "--", "results/map_onnx.json", configfiles=[config], demo=False)
        first = list(server.requests)
        # a config change (a param of fetch_dataset) that reruns the dataset step, with the
        # cache under downloads/ complete: the rerun must fetch nothing again
        changed = write_config(root / "changed.yaml", {**overrides, "dataset": {
            **overrides["dataset"], "download": {"workers": 2}}})  # fmt: skip
        rerun = snakemake(
            work, "--", "data/openimages/annotations.json", configfiles=[changed], demo=False
        )
        second = server.requests[len(first) :]
    yield work, fake, {"first": first, "second": second, "rerun": rerun.stdout + rerun.stderr}


def test_dataset_is_the_mlperf_json(openimages_run):
    work, fake, _ = openimages_run
    data = json.loads((work / "data/openimages/annotations.json").read_text())
    assert [c["id"] for c in data["categories"]] == list(range(264))
    assert [i["file_name"] for i in data["images"]] == [f"{i}.jpg" for i in fake.mlperf_ids()]
    linked = sorted(p.name for p in (work / "data/openimages/images").glob("*.jpg"))
    assert linked == [f"{i}.jpg" for i in fake.mlperf_ids()]


def test_config_change_does_not_download_again(openimages_run):
    _, fake, fetches = openimages_run
    # the rerun really happened: Snakemake executed fetch_dataset once more
    stats = fetches["rerun"].split("Job stats:")[1].split("\n\n")[0]
    assert re.search(r"^fetch_dataset\s+1$", stats, re.M), fetches["rerun"][-3000:]
    # the first run fetched the CSVs and every image once; the rerun asked the server nothing
    first = [path for path, _ in fetches["first"]]
    images = {f"/bucket/validation/{i}.jpg" for i in fake.mlperf_ids()}
    assert images <= set(first) and len(first) == len(set(first))
    assert fetches["second"] == []


def test_real_architecture_runs_through_the_dag(openimages_run):
    work, fake, _ = openimages_run
    result = json.loads((work / "results/map_onnx.json").read_text())
    assert result["num_images"] == len(fake.mlperf_ids())
    assert result["num_detections"] > 0
    parity = json.loads((work / "models/resnext50_32x4d_fpn/parity.json").read_text())
    assert parity["pass"]
    assert parity["input_shape"][1:] == [3, 128, 128]
