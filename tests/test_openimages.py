"""openimages-mlperf.json from the direct path (a real local HTTP server), checked field by field
against an independent reading of MLCommons' rules; subsets, calibration, local folders."""

import csv
import hashlib
import io
import json
import re
from importlib import resources
from pathlib import Path

import cv2
import pytest

from retinaflow.data.download import DownloadError
from retinaflow.data.openimages.direct_source import fetch_direct
from retinaflow.data.openimages.local_source import check_local
from retinaflow.data.openimages.mlperf_json import image_size
from retinaflow.data.openimages.prepare import prepare_openimages
from retinaflow.data.openimages.selection import select_images
from retinaflow.data.openimages.settings import (
    DownloadSettings,
    OpenImagesSettings,
    SourceUrls,
)
from retinaflow.data.openimages.splits import split_named
from retinaflow.data.openimages.tables import mlperf_calibration_list, mlperf_classes
from retinaflow.errors import DatasetError, ImageError, SettingError

from .configs import REAL, as_configured, download_settings
from .http_server import FakeOpenImages, FileServer

CLASSES = mlperf_classes()


def direct_settings(root, served: dict, workers: int = 4, **more) -> OpenImagesSettings:
    """Settings for the direct source on what FakeOpenImages.serve published: the config's
    download settings (but `workers`) and dataset.seed, then `more`."""
    urls = SourceUrls(served["boxes_url"], served["class_map_url"], served["images_url"])
    more = {"seed": REAL["dataset"]["seed"], **more}
    return OpenImagesSettings(
        source="direct",
        cache_root=root,
        urls=urls,
        download=download_settings(workers=workers),
        **more,
    )


@pytest.fixture
def server():
    with FileServer() as srv:
        yield srv


def expected_json(fake: FakeOpenImages, image_dir: Path, image_ids) -> dict:
    """The rules read independently: csv module, Python floats, cv2 for the image sizes."""
    category = {name: i for i, name in enumerate(fake.classes)}
    display = {label: name for name, label in fake.label_of.items()}
    rows = list(csv.DictReader(io.StringIO(fake.boxes_csv().decode())))
    kept = [r for r in rows if display[r["LabelName"]] in category and r["ImageID"] in image_ids]
    ids = sorted({r["ImageID"] for r in kept})
    image_number = {image_id: n + 1 for n, image_id in enumerate(ids)}
    size = {}
    for image_id in ids:
        height, width = cv2.imread(str(image_dir / f"{image_id}.jpg")).shape[:2]
        size[image_id] = (width, height)
    annotations = []
    for n, r in enumerate(kept):
        width, height = size[r["ImageID"]]
        x0, x1, y0, y1 = (float(r[k]) for k in ("XMin", "XMax", "YMin", "YMax"))
        flags = {k: int(r[k]) for k in ("IsOccluded", "IsTruncated", "IsGroupOf", "IsDepiction")}
        flags["IsInside"] = int(r["IsInside"])
        annotations.append(
            {
                "id": n + 1,
                "image_id": image_number[r["ImageID"]],
                "category_id": category[display[r["LabelName"]]],
                "bbox": [x0 * width, y0 * height, (x1 - x0) * width, (y1 - y0) * height],
                "area": (x1 - x0) * width * ((y1 - y0) * height),
                "iscrowd": int(r["IsGroupOf"]),
                **flags,
            }
        )
    annotations.sort(key=lambda a: (a["image_id"], a["id"]))
    images = [
        {
            "id": image_number[i],
            "file_name": f"{i}.jpg",
            "height": size[i][1],
            "width": size[i][0],
            "license": None,
            "coco_url": None,
        }
        for i in ids
    ]
    categories = [{"id": i, "name": n, "supercategory": None} for i, n in enumerate(fake.classes)]
    return {"images": images, "annotations": annotations, "categories": categories}


def assert_matches(produced: dict, expected: dict) -> None:
    assert produced["info"] == {"dataset": "openimages_mlperf", "version": "v6"}
    assert produced["licenses"] == []
    assert produced["categories"] == expected["categories"]
    assert produced["images"] == expected["images"]
    assert len(produced["annotations"]) == len(expected["annotations"])
    for got, want in zip(produced["annotations"], expected["annotations"], strict=True):
        assert list(got) == [
            "id", "image_id", "category_id", "bbox", "area", "iscrowd",
            "IsOccluded", "IsInside", "IsDepiction", "IsTruncated", "IsGroupOf",
        ]  # fmt: skip
        assert got["bbox"] == pytest.approx(want["bbox"], rel=1e-12)
        assert got["area"] == pytest.approx(want["area"], rel=1e-12)
        for key in got.keys() - {"bbox", "area"}:
            assert got[key] == want[key], key
            assert type(got[key]) is int, key


def test_resources_match_the_reference():
    """The package's own copies (as installed), by the md5 of MLCommons' files."""
    package = resources.files("retinaflow") / "resources"
    md5 = {
        "mlperf_classes.txt": "c359991adb62faf2df4febcca610c9d7",
        "openimages_cal_images_list.txt": "5c3196ddcec4605c6a9fcf004d9615e6",
    }
    for name, digest in md5.items():
        assert hashlib.md5((package / name).read_bytes()).hexdigest() == digest, name
    assert len(CLASSES) == 264 and CLASSES[0] == "Airplane" and CLASSES[-1] == "Zucchini"
    ids = mlperf_calibration_list()
    assert len(ids) == len(set(ids)) == 500
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in ids)


def test_select_images_without_replacement():
    ids = [f"{i:016x}" for i in range(1000)]
    subset = select_images(ids[::-1], 300, seed=42)
    assert len(subset) == len(set(subset)) == 300 and subset == sorted(subset)
    assert subset == select_images(ids, 300, seed=42)  # depends on the set, not its order
    assert subset != select_images(ids, 300, seed=43)
    assert select_images(ids, None, seed=0) == ids
    assert select_images(ids, 5000, seed=0) == ids
    with pytest.raises(SettingError, match=r"setting max_images is -3: a positive integer") as e:
        select_images(ids, -3, seed=0)
    assert as_configured(e.value, "dataset").startswith("config key dataset.max_images is -3")


def test_image_size_is_what_cv2_reports(tmp_path):
    from .http_server import make_jpeg

    for orientation in range(1, 9):
        path = tmp_path / f"o{orientation}.jpg"
        path.write_bytes(make_jpeg(40, 24, seed=orientation, exif_orientation=orientation))
        height, width = cv2.imread(str(path)).shape[:2]
        assert image_size(path) == (width, height), orientation


def test_direct_path_builds_the_mlperf_json(server, tmp_path):
    fake = FakeOpenImages(CLASSES, n_images=40, seed=4)
    urls = fake.serve(server)
    server.drop_after[f"/bucket/validation/{fake.image_ids[0]}.jpg"] = 100
    server.corrupt_once[f"/bucket/validation/{fake.image_ids[2]}.jpg"] = b"\xff\xd8garbage"
    out = fetch_direct("validation", direct_settings(tmp_path, urls))
    assert out == tmp_path / "annotations" / "openimages-mlperf.json"
    wanted = fake.mlperf_ids()
    assert 0 < len(wanted) < len(fake.image_ids)  # some images hold no MLPerf box
    image_dir = tmp_path / "validation" / "data"
    assert sorted(p.stem for p in image_dir.glob("*.jpg")) == wanted
    text = out.read_text()
    assert not text.endswith("\n") and "\n" not in text  # json.dump as MLCommons writes it
    assert_matches(json.loads(text), expected_json(fake, image_dir, set(wanted)))

    assert set(fake.exif) <= set(wanted)  # the EXIF-rotated image is in the set

    requests = len(server.requests)
    assert fetch_direct("validation", direct_settings(tmp_path, urls)).read_text() == text
    assert len(server.requests) == requests  # complete and verified: nothing fetched again


def test_max_images_fetches_only_the_subset(server, tmp_path):
    fake = FakeOpenImages(CLASSES, n_images=40, seed=5, shuffle=True)
    urls = fake.serve(server)
    out = fetch_direct("validation", direct_settings(tmp_path, urls, max_images=10, seed=7))
    subset = select_images(fake.mlperf_ids(), 10, seed=7)
    image_requests = [p for p, _ in server.requests if p.startswith("/bucket/")]
    assert sorted(Path(p).stem for p in image_requests) == subset
    produced = json.loads(out.read_text())
    assert [i["file_name"] for i in produced["images"]] == [f"{i}.jpg" for i in subset]
    assert_matches(produced, expected_json(fake, tmp_path / "validation" / "data", set(subset)))


def test_missing_image_fails_naming_it_then_rerun_completes(server, tmp_path):
    fake = FakeOpenImages(CLASSES, n_images=20, seed=6)
    urls = fake.serve(server)
    gone = fake.mlperf_ids()[3]
    body = server.files.pop(f"/bucket/validation/{gone}.jpg")
    with pytest.raises(DownloadError, match=f"{gone}.jpg.*HTTP 404"):
        fetch_direct("validation", direct_settings(tmp_path, urls))
    assert not (tmp_path / "annotations" / "openimages-mlperf.json").exists()
    server.files[f"/bucket/validation/{gone}.jpg"] = body
    before = len(server.requests)
    fetch_direct("validation", direct_settings(tmp_path, urls))
    assert [p for p, _ in server.requests[before:]] == [f"/bucket/validation/{gone}.jpg"]


def test_calibration_direct(server, tmp_path):
    fake = FakeOpenImages(CLASSES, n_images=30, seed=8, train=True)
    urls = fake.serve(server, split="train")
    listed = fake.image_ids[::3]
    out = fetch_direct("calibration", direct_settings(tmp_path, urls), image_ids=listed)
    assert out == tmp_path / "annotations" / "openimages-calibration-mlperf.json"
    image_dir = tmp_path / "calibration" / "data"
    assert sorted(p.stem for p in image_dir.glob("*.jpg")) == sorted(listed)
    assert_matches(json.loads(out.read_text()), expected_json(fake, image_dir, set(listed)))


def test_check_local(server, tmp_path):
    fake = FakeOpenImages(CLASSES, n_images=12, seed=9)
    out = fetch_direct("validation", direct_settings(tmp_path, fake.serve(server), workers=2))
    local = OpenImagesSettings(source="local", local_root=tmp_path)
    assert check_local("validation", local) == out
    first = json.loads(out.read_text())["images"][0]["file_name"]
    victim = tmp_path / "validation" / "data" / first
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=f"{first} does not decode"):
        check_local("validation", local)
    victim.unlink()
    with pytest.raises(ImageError, match=f"{first} is missing"):
        check_local("validation", local)
    elsewhere = OpenImagesSettings(source="local", local_root=tmp_path / "elsewhere")
    with pytest.raises(DatasetError, match="setting local_root must name a folder") as err:
        check_local("validation", elsewhere)
    assert "config key dataset.local_root must" in as_configured(err.value, "dataset")


def test_settings_from_the_config_sections():
    download = REAL["dataset"]["download"]
    assert DownloadSettings.from_config(download) == DownloadSettings(
        workers=download["workers"], retries=download["retries"], timeout=download["timeout_s"]
    )
    assert DownloadSettings.from_config({"workers": 3, "retries": 1, "timeout_s": 5}) == (
        DownloadSettings(workers=3, retries=1, timeout=5)
    )
    with pytest.raises(KeyError, match="retries"):  # config/config.yaml holds every key
        DownloadSettings.from_config({"workers": 3, "timeout_s": 5})
    for section in (REAL["dataset"], REAL["calibration"]["fetch"]):
        urls = SourceUrls.from_config(section["urls"])
        assert urls == SourceUrls(**section["urls"]) and all(vars(urls).values())
    urls = SourceUrls.from_config({"boxes": "", "class_map": "c", "images": "/by/hand"})
    assert urls == SourceUrls(boxes=None, class_map="c", images="/by/hand")
    settings = OpenImagesSettings(source="direct", urls=urls)
    with pytest.raises(DatasetError, match=r"setting urls.boxes not set") as err:
        settings.urls_for(split_named("calibration"))
    message = as_configured(err.value, "calibration.fetch")
    assert message.startswith("config key calibration.fetch.urls.boxes not set")
    with pytest.raises(ValueError, match="download is not set"):
        settings.downloads()
    with pytest.raises(SettingError, match="a seed is needed to draw setting max_images"):
        OpenImagesSettings(source="direct", max_images=3)


@pytest.mark.parametrize("split", ["validation", "calibration"])
def test_prepare_publishes_either_split_into_the_dag_layout(server, tmp_path, split):
    fake = FakeOpenImages(CLASSES, n_images=12, seed=10, train=split == "calibration")
    served = fake.serve(server, split="train" if split == "calibration" else "validation")
    listed = fake.image_ids[::2] if split == "calibration" else None
    cached = fetch_direct(split, direct_settings(tmp_path / "cache", served), image_ids=listed)
    local = OpenImagesSettings(source="local", local_root=tmp_path / "cache")
    dag = tmp_path / "dag"
    count = prepare_openimages(split, local, dag / "annotations.json", dag / "images")
    names = [img["file_name"] for img in json.loads(cached.read_text())["images"]]
    assert count == len(names) > 0
    assert (dag / "annotations.json").read_bytes() == cached.read_bytes()
    assert sorted(p.name for p in (dag / "images").iterdir()) == sorted(names)


def test_prepare_names_the_config_key_to_fix(tmp_path):
    """The library names its settings; a job resolves them to the keys of its config section."""
    out = (tmp_path / "annotations.json", tmp_path / "images")
    wrong = OpenImagesSettings(source="zoo")
    with pytest.raises(SettingError) as err:
        prepare_openimages("calibration", wrong, *out)
    assert (err.value.setting, err.value.value) == ("source", "zoo")
    assert as_configured(err.value, "calibration.fetch") == (
        "config key calibration.fetch.source is 'zoo': one of direct, fiftyone, local"
    )
    with pytest.raises(DatasetError) as err:
        prepare_openimages("validation", OpenImagesSettings(source="local"), *out)
    assert err.value.settings == ["local_root", "source"]
    assert re.search(
        r"config key dataset.local_root must name .* config key dataset.source is local",
        as_configured(err.value, "dataset"),
    )
    assert not out[0].exists()
