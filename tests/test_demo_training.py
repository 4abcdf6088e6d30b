"""The demo's training code: a short run yields loadable weights, and the val mAP of the
shipped weights comes from evaluate.score_detections, as the workflow scores a variant."""

import math

from retinaflow.demo.training import (
    ARCH,
    IMAGE_SIZE,
    NUM_CLASSES,
    evaluate_demo_model,
    train_demo_model,
)
from retinaflow.evaluate import STAT_NAMES
from retinaflow.model.architectures import build_retinanet
from retinaflow.model.checkpoint import load_weights

from .configs import MAX_DETECTIONS, ROOT

SHIPPED = ROOT / "resources" / "demo" / "retinanet_demo.pt"


def test_shipped_weights_score_through_evaluate():
    result = evaluate_demo_model(SHIPPED, MAX_DETECTIONS, num_val=40, batch_size=8)
    assert set(result["stats"]) == set(STAT_NAMES)
    assert result["bbox_mAP"] == result["stats"]["AP"] > 0.85  # 0.928 on all 200 images
    assert result["num_images"] == 40 and result["max_detections"] == MAX_DETECTIONS
    assert len(result["coco_summary"]) == 12


def test_short_training_run_saves_loadable_weights(tmp_path):
    out = tmp_path / "demo.pt"
    lines = []
    record = train_demo_model(
        out, num_train=8, epochs=1, batch_size=4, warmup_steps=1, workers=1, log=lines.append
    )
    assert [h["epoch"] for h in record["history"]] == [1]
    assert all(math.isfinite(record["history"][0][k]) for k in ("cls", "box"))
    assert any(str(out) in line for line in lines)
    load_weights(build_retinanet(ARCH, NUM_CLASSES, IMAGE_SIZE), out, ARCH)
    result = evaluate_demo_model(out, MAX_DETECTIONS, num_val=4)
    assert 0.0 <= result["bbox_mAP"] <= 1.0 and result["num_images"] == 4
