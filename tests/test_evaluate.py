"""COCOeval scoring: the seed's keys, every image counts, empty results score zero."""

import json

import pytest

from retinaflow.demo.dataset import make_demo_dataset
from retinaflow.evaluate import STAT_NAMES, score_detections, score_file

from .configs import MAX_DETECTIONS


@pytest.fixture(scope="module")
def truth(tmp_path_factory):
    root = tmp_path_factory.mktemp("truth")
    path = make_demo_dataset(root, "val", 30)
    return path, json.loads(path.read_text())


def _perfect(data, image_ids=None):
    return [
        {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "bbox": a["bbox"],
            "score": 0.9,
        }
        for a in data["annotations"]
        if image_ids is None or a["image_id"] in image_ids
    ]


def test_perfect_detections_score_one(truth):
    path, data = truth
    result = score_detections(path, _perfect(data), MAX_DETECTIONS)
    assert result["bbox_mAP"] == pytest.approx(1.0)
    assert list(result["stats"]) == list(STAT_NAMES)
    assert result["bbox_mAP_copypaste"] == "1.000 1.000 1.000 1.000 1.000 1.000"


def test_images_without_detections_count(truth):
    path, data = truth
    half = {img["id"] for img in data["images"][: len(data["images"]) // 2]}
    result = score_detections(path, _perfect(data, half), MAX_DETECTIONS)
    assert 0.2 < result["stats"]["AR100"] < 0.8  # missed objects of the other half count


def test_wrong_labels_score_zero(truth):
    path, data = truth
    wrong = [dict(d, category_id=(d["category_id"] + 1) % 6) for d in _perfect(data)]
    assert score_detections(path, wrong, MAX_DETECTIONS)["bbox_mAP"] == 0.0


def test_no_detections_at_all(truth, tmp_path):
    path, _ = truth
    (tmp_path / "empty.json").write_text("[]")
    result = score_file(path, tmp_path / "empty.json", tmp_path / "map.json", MAX_DETECTIONS)
    assert result["bbox_mAP"] == 0.0
    assert json.loads((tmp_path / "map.json").read_text())["num_detections"] == 0
