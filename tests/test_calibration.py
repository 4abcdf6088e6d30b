"""The calibration subset: seeded, without replacement, stable on disk, clear when it cannot be."""

import pytest

from retinaflow.calibration import (
    MLPERF_CALIBRATION_LIST,
    read_calibration_list,
    read_mlperf_calibration_list,
    sample_calibration_list,
    write_calibration_list,
)
from retinaflow.data.demo import make_demo_dataset
from retinaflow.errors import DatasetError, ImageError


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    return make_demo_dataset(root, "val", 30), root / "images"


def test_same_seed_same_list_and_no_duplicates(dataset):
    annotations, _ = dataset
    first = sample_calibration_list(annotations, 12, seed=3)
    assert first == sample_calibration_list(annotations, 12, seed=3)
    assert len(set(first)) == 12
    assert first == sorted(first)


def test_different_seed_different_list(dataset):
    annotations, _ = dataset
    assert sample_calibration_list(annotations, 12, seed=3) != sample_calibration_list(
        annotations, 12, seed=4
    )


def test_all_images_is_the_whole_split(dataset):
    annotations, image_dir = dataset
    names = sample_calibration_list(annotations, 30, seed=0)
    assert names == sorted(p.name for p in image_dir.glob("*.jpg"))


def test_count_above_split_size_names_the_limit(dataset):
    annotations, _ = dataset
    with pytest.raises(DatasetError, match="at most 30"):
        sample_calibration_list(annotations, 31, seed=0)


@pytest.mark.parametrize("count", [0, -3, 2.5])
def test_count_must_be_positive_integer(dataset, count):
    with pytest.raises(ValueError, match="calibration.count"):
        sample_calibration_list(dataset[0], count, seed=0)


def test_list_file_round_trip(dataset, tmp_path):
    annotations, image_dir = dataset
    names = sample_calibration_list(annotations, 5, seed=1)
    path = tmp_path / "calibration" / "random-5.txt"
    write_calibration_list(names, path)
    assert path.read_text().splitlines() == names
    assert read_calibration_list(path, image_dir) == [image_dir / n for n in names]


def test_missing_image_is_named(dataset, tmp_path):
    _, image_dir = dataset
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


@pytest.mark.skipif(not MLPERF_CALIBRATION_LIST.is_file(), reason="package has no MLPerf list")
def test_mlperf_list_reads_500_names():
    names = read_mlperf_calibration_list()
    assert len(names) == len(set(names)) == 500
    assert all(n.endswith(".jpg") for n in names)
