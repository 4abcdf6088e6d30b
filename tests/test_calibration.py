"""The calibration set never holds a scored image: the demo's own split (names and pixels
apart from the evaluation split), the guard against shared images, the list files, MLPerf's
list, and the names the summary gives a calibration set."""

import hashlib

import numpy as np
import pytest
from PIL import Image

from retinaflow.calibration import (
    calibration_label,
    calibration_set,
    check_disjoint,
    read_calibration_list,
    read_mlperf_calibration_list,
    write_calibration_list,
)
from retinaflow.data.annotations import load_annotations
from retinaflow.demo.dataset import SPLIT_SEEDS, make_demo_dataset
from retinaflow.errors import DatasetError, ImageError

from .configs import DEMO  # config/demo.yaml merged over config/config.yaml
from .workflow import snakemake, write_config


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    """The demo config's evaluation split and calibration split, as its rules write them."""
    root = tmp_path_factory.mktemp("demo")
    ev, cal = DEMO["dataset"]["demo"], DEMO["calibration"]
    evaluation = make_demo_dataset(root / "val", "val", ev["num_images"], ev["seed"])
    calibration = make_demo_dataset(root / "cal", "calibration", cal["count"], cal["seed"])
    names = sorted(img["file_name"] for img in load_annotations(calibration)["images"])
    write_calibration_list(names, root / "demo.txt")
    return evaluation, calibration, root / "demo.txt"


def _pixel_digests(annotations) -> dict[str, str]:
    folder = annotations.parent / "images"
    digests = {}
    for img in load_annotations(annotations)["images"]:
        with Image.open(folder / img["file_name"]) as im:
            pixels = np.asarray(im.convert("RGB")).tobytes()
        digests[hashlib.sha256(pixels).hexdigest()] = img["file_name"]
    return digests


def test_demo_config_calibrates_on_its_own_seed():
    assert DEMO["calibration"]["source"] == "demo"
    seed = DEMO["calibration"]["seed"]
    assert seed == SPLIT_SEEDS["calibration"]
    assert seed not in (DEMO["dataset"]["demo"]["seed"], SPLIT_SEEDS["train"])


def test_demo_calibration_images_are_not_scored_images(splits):
    evaluation, calibration, _ = splits
    ev = load_annotations(evaluation)["images"]
    cal = load_annotations(calibration)["images"]
    assert (
        len(cal) == DEMO["calibration"]["count"]
        and len(ev) == DEMO["dataset"]["demo"]["num_images"]
    )
    assert not {i["file_name"] for i in cal} & {i["file_name"] for i in ev}  # names
    ev_pixels, cal_pixels = _pixel_digests(evaluation), _pixel_digests(calibration)
    assert len(cal_pixels) == len(cal)  # no two calibration images alike
    assert not set(cal_pixels) & set(ev_pixels)  # pixel content


def test_disjoint_list_passes_the_guard(splits):
    evaluation, calibration, names = splits
    listed = check_disjoint(names, evaluation)
    assert listed == names.read_text().split()
    paths = read_calibration_list(names, calibration.parent / "images")
    assert [p.name for p in paths] == listed


def test_guard_refuses_a_scored_image(splits, tmp_path):
    evaluation, _, names = splits
    scored = load_annotations(evaluation)["images"][7]["file_name"]
    leaky = tmp_path / "leaky.txt"
    write_calibration_list(sorted([*names.read_text().split()[:5], scored]), leaky)
    with pytest.raises(DatasetError, match="shares 1 image") as err:
        check_disjoint(leaky, evaluation)
    message = str(err.value)
    assert str(leaky) in message and str(evaluation) in message and scored in message


def test_same_seed_as_evaluation_is_refused_by_the_guard(splits, tmp_path):
    """Names are a function of (seed, index): a split made with the evaluation seed is caught."""
    evaluation, _, _ = splits
    same = make_demo_dataset(tmp_path, "calibration", 3, DEMO["dataset"]["demo"]["seed"])
    names = sorted(img["file_name"] for img in load_annotations(same)["images"])
    write_calibration_list(names, tmp_path / "same.txt")
    with pytest.raises(DatasetError, match="shares 3 image"):
        check_disjoint(tmp_path / "same.txt", evaluation)


def test_config_with_the_evaluation_seed_fails_before_any_job(tmp_path):
    bad = write_config(tmp_path / "bad.yaml", {"calibration": {"seed": 2000}})
    proc = snakemake(tmp_path, "-n", "--", "all", configfiles=[bad], check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "calibration.seed: 2000" in out and "dataset.demo.seed" in out
    assert not (tmp_path / "data").exists()


def test_calibration_set_names():
    assert calibration_label(calibration_set("mlperf", 500)) == "mlperf (500 images, train split)"
    assert calibration_label(calibration_set("demo", 100, 3000)) == "demo (100 images, seed 3000)"
    assert calibration_label(None) == ""
    with pytest.raises(ValueError, match="random"):
        calibration_set("random", 100, 0)


def test_list_file_round_trip(splits, tmp_path):
    _, calibration, _ = splits
    image_dir = calibration.parent / "images"
    names = sorted(p.name for p in image_dir.glob("*.jpg"))[:5]
    path = tmp_path / "calibration" / "demo-5.txt"
    write_calibration_list(names, path)
    assert path.read_text().splitlines() == names
    assert read_calibration_list(path, image_dir) == [image_dir / n for n in names]


def test_missing_image_is_named(splits, tmp_path):
    image_dir = splits[1].parent / "images"
    path = tmp_path / "list.txt"
    write_calibration_list(["0123456789abcdef.jpg"], path)
    with pytest.raises(ImageError, match="0123456789abcdef.jpg"):
        read_calibration_list(path, image_dir)


def test_repeated_name_is_refused(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text("a.jpg\nb.jpg\na.jpg\n")
    with pytest.raises(DatasetError, match="repeats"):
        read_calibration_list(path, tmp_path)


def test_mlperf_list_is_checked_by_md5(tmp_path):
    fake = tmp_path / "openimages_cal_images_list.txt"
    fake.write_text("\n".join(f"{i:016x}.jpg" for i in range(500)))
    with pytest.raises(DatasetError, match="md5"):
        read_mlperf_calibration_list(fake)


def test_mlperf_list_reads_500_names():
    names = read_mlperf_calibration_list()
    assert len(names) == len(set(names)) == 500
    assert all(n.endswith(".jpg") for n in names)
