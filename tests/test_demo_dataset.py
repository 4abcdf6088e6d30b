"""The demo set follows the openimages-mlperf.json conventions and is deterministic; its
calibration split comes with the list file quantize reads."""

import hashlib
import json

import pytest

from retinaflow.data.annotations import load_annotations
from retinaflow.demo.dataset import DEMO_CLASSES, make_demo_calibration, make_demo_dataset


@pytest.fixture(scope="module")
def val_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    return root, load_annotations(make_demo_dataset(root, "val", 60))


def test_conventions(val_set):
    root, data = val_set
    assert [c["id"] for c in data["categories"]] == list(range(len(DEMO_CLASSES)))
    ids = [img["id"] for img in data["images"]]
    assert ids == list(range(1, len(ids) + 1))
    names = [img["file_name"] for img in data["images"]]
    assert names == sorted(names)  # ids follow the sorted ImageID, as MLCommons factorises
    for ann in data["annotations"]:
        x, y, w, h = ann["bbox"]
        img = data["images"][ann["image_id"] - 1]
        assert 0 <= x and 0 <= y and x + w <= img["width"] and y + h <= img["height"]
        assert ann["area"] == w * h and ann["iscrowd"] == 0
    from PIL import Image

    for img in data["images"][:10]:
        with Image.open(root / "images" / img["file_name"]) as im:
            assert im.size == (img["width"], img["height"])


def test_variety(val_set):
    _, data = val_set
    areas = [a["area"] for a in data["annotations"]]
    assert any(a < 32**2 for a in areas)
    assert any(32**2 <= a <= 96**2 for a in areas)
    assert any(a > 96**2 for a in areas)
    with_objects = {a["image_id"] for a in data["annotations"]}
    assert len(with_objects) < len(data["images"])  # some images hold no object
    assert len({a["category_id"] for a in data["annotations"]}) == len(DEMO_CLASSES)
    assert len({(i["width"], i["height"]) for i in data["images"]}) > 30


def test_deterministic_and_splits_differ(tmp_path):
    def digest(root):
        h = hashlib.sha256((root / "annotations.json").read_bytes())
        for p in sorted((root / "images").iterdir()):
            h.update(p.read_bytes())
        return h.hexdigest()

    make_demo_dataset(tmp_path / "a", "val", 8)
    make_demo_dataset(tmp_path / "b", "val", 8)
    make_demo_dataset(tmp_path / "c", "train", 8)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    val = json.loads((tmp_path / "a/annotations.json").read_text())["images"]
    train = json.loads((tmp_path / "c/annotations.json").read_text())["images"]
    assert {i["file_name"] for i in val}.isdisjoint(i["file_name"] for i in train)


def test_calibration_split_and_its_list(tmp_path):
    names = make_demo_calibration(tmp_path / "demo", 5, 3000, tmp_path / "demo.txt")
    assert (tmp_path / "demo.txt").read_text() == "".join(f"{n}\n" for n in names)
    assert names == sorted(p.name for p in (tmp_path / "demo/images").iterdir())
    same = make_demo_dataset(tmp_path / "again", "calibration", 5, 3000)
    assert [i["file_name"] for i in json.loads(same.read_text())["images"]] == names
