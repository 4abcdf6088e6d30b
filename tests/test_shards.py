"""Sharded inference without Snakemake: which images a shard runs, how its detections travel,
and that the gathered files are the unsharded run's byte for byte."""

import filecmp
import json

import numpy as np
import pytest

from retinaflow.data.annotations import ImageRecord
from retinaflow.demo.dataset import make_demo_dataset
from retinaflow.infer import gather_shards, infer_shard, infer_variant
from retinaflow.shards import (
    ShardError,
    gather_detections,
    gather_stats,
    parse_shard,
    read_shard_detections,
    shard_bounds,
    shard_device,
    shard_items,
    shard_name,
    write_shard_detections,
)

from .configs import DEMO, ROOT

# --- which images a shard runs ----------------------------------------------------------


@pytest.mark.parametrize(
    "total,count,sizes",
    [
        (10, 1, [10]),
        (10, 2, [5, 5]),
        (10, 3, [3, 3, 4]),  # uneven: sizes differ by one at most
        (7, 4, [1, 2, 2, 2]),
        (3, 5, [0, 1, 0, 1, 1]),  # more shards than images: some shards run none
        (0, 2, [0, 0]),
    ],
)
def test_shards_are_contiguous_balanced_and_cover_every_image(total, count, sizes):
    bounds = shard_bounds(total, count)
    assert [stop - start for start, stop in bounds] == sizes
    assert bounds[0][0] == 0 and bounds[-1][1] == total
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    items = list(range(100, 100 + total))
    assert sum((list(shard_items(items, i, count)) for i in range(count)), []) == items


@pytest.mark.parametrize(
    "total,count,batch,sizes",
    [
        (200, 2, 8, [96, 104]),  # 25 batches: 12 and 13, each shard starts on a batch
        (10, 3, 4, [4, 4, 2]),  # 3 batches of 4, 4, 2: one each
        (10, 2, 1, [5, 5]),
        (5, 3, 8, [0, 0, 5]),  # one batch: a single shard runs it
    ],
)
def test_shards_are_whole_batches_of_the_unsharded_run(total, count, batch, sizes):
    bounds = shard_bounds(total, count, batch)
    assert [stop - start for start, stop in bounds] == sizes
    assert all(start % batch == 0 for start, _ in bounds)
    assert bounds[0][0] == 0 and bounds[-1][1] == total
    with pytest.raises(ShardError, match="batch size"):
        shard_bounds(total, count, 0)


def test_a_shard_is_the_same_every_time_and_in_the_records_order():
    items = [f"img{i:03d}" for i in range(25)]
    assert list(shard_items(items, 1, 3)) == items[8:16]
    assert list(shard_items(items, 1, 3)) == list(shard_items(list(items), 1, 3))


@pytest.mark.parametrize("count", [0, -1])
def test_a_shard_count_below_one_is_refused(count):
    with pytest.raises(ShardError, match="at least 1"):
        shard_bounds(10, count)


def test_shard_names_are_snakemakes_scatteritems():
    assert shard_name(0, 2) == "1-of-2" and parse_shard("1-of-2") == (0, 2)
    assert parse_shard("12-of-12") == (11, 12)
    for bad in ("0-of-2", "3-of-2", "1of2", "a-of-2", ""):
        with pytest.raises(ShardError, match="shard name"):
            parse_shard(bad)
    with pytest.raises(ShardError):
        shard_name(2, 2)


def test_a_shard_takes_its_gpu_among_those_it_sees():
    assert shard_device("cpu", 3, 2) == "cpu"
    assert [shard_device("cuda", i, 2) for i in range(4)] == ["cuda:0", "cuda:1"] * 2
    assert shard_device("cuda", 1, 1) == "cuda:0"  # SLURM --gpus=1: the job's own GPU
    assert shard_device("cuda", 1, 0) == "cuda"  # none: the runner refuses it


# --- a shard's detections and the gather ------------------------------------------------


def _detections(rng, count):
    boxes = rng.uniform(0, 500, (count, 4)).astype(np.float32)
    scores = np.sort(rng.uniform(0.05, 1, count).astype(np.float32))[::-1]
    return {"boxes": boxes, "scores": scores, "labels": rng.integers(0, 6, count)}


def _records(count):
    return [ImageRecord(i + 1, f"{i + 1}.jpg", 100, 100) for i in range(count)]


def test_shard_detections_round_trip_with_their_dtypes(tmp_path):
    rng = np.random.default_rng(0)
    detections = [_detections(rng, 3), _detections(rng, 0), _detections(rng, 1)]
    write_shard_detections(tmp_path / "d.npz", [4, 5, 6], detections)
    back = read_shard_detections(tmp_path / "d.npz")
    assert [image_id for image_id, _ in back] == [4, 5, 6]
    for (_, got), want in zip(back, detections):
        for key in ("boxes", "scores", "labels"):
            assert got[key].dtype == want[key].dtype and got[key].shape == want[key].shape
            assert np.array_equal(got[key], want[key])


def test_an_empty_shard_round_trips(tmp_path):
    write_shard_detections(tmp_path / "d.npz", [], [])
    assert read_shard_detections(tmp_path / "d.npz") == []


def test_gather_puts_every_record_back_in_order_with_empty_shards(tmp_path):
    records = _records(3)
    rng = np.random.default_rng(1)
    paths = []
    for index in range(5):  # 5 shards for 3 images: two of them run none
        mine = list(shard_items(records, index, 5))
        paths.append(tmp_path / f"{index}.npz")
        write_shard_detections(paths[-1], [r.id for r in mine], [_detections(rng, 2) for _ in mine])
    gathered = gather_detections(paths, records, 1)
    assert [record for record, _ in gathered] == records


def test_gather_refuses_a_shard_of_another_split(tmp_path):
    records = _records(4)
    rng = np.random.default_rng(2)
    write_shard_detections(tmp_path / "a.npz", [1, 2], [_detections(rng, 1)] * 2)
    write_shard_detections(tmp_path / "b.npz", [3], [_detections(rng, 1)])  # 4 is missing
    with pytest.raises(ShardError, match="2-of-2"):
        gather_detections([tmp_path / "a.npz", tmp_path / "b.npz"], records, 1)
    (tmp_path / "c.npz").write_text("not an npz")
    with pytest.raises(ShardError, match="rerun its shard"):
        gather_detections([tmp_path / "a.npz", tmp_path / "c.npz"], records, 1)


def test_gathered_stats_sum_images_and_seconds():
    base = {"variant": "onnx", "threads": 2, "batch_size": 8}
    shards = [
        {"images": 3, "seconds": 1.5, "device": "cuda:0", **base},
        {"images": 0, "seconds": 0.25, "device": "cuda:1", **base},
        {"images": 2, "seconds": 0.75, "device": "cuda:0", **base},
    ]
    merged = gather_stats(shards)
    assert merged["images"] == 5 and merged["seconds"] == 2.5
    assert merged["images_per_second"] == 2.0
    assert merged["device"] == ["cuda:0", "cuda:1", "cuda:0"]
    assert merged["shards"] == shards
    assert gather_stats([shards[0]])["device"] == "cuda:0"


# --- the files: sharded and gathered equals unsharded ------------------------------------


@pytest.fixture(scope="module")
def demo_images(tmp_path_factory):
    """Seven images of the demo's evaluation split (some without any object)."""
    root = tmp_path_factory.mktemp("shard-images")
    annotations = make_demo_dataset(root, "val", 7, DEMO["dataset"]["demo"]["seed"])
    return annotations, root / "images"


def _outputs(root):
    names = {"detections": "detections.json", "txt": "txt", "drawn": "drawn"}
    return {**{k: root / v for k, v in names.items()}, "stats": root / "stats.json"}


@pytest.mark.parametrize(
    "count,score_thresh",
    [(3, 0.05), (8, 1.0)],
    ids=["3-uneven-shards", "8-shards-some-empty-no-detections"],
)
def test_sharded_files_equal_the_unsharded_run_byte_for_byte(
    demo_images, tmp_path, count, score_thresh
):
    """The demo model (torch) on seven images in batches of 2, once whole and once as `count`
    shards: the gathered detections.json, txt/ and drawn/ (the first 3 images, over two
    shards) are the unsharded files. 3 shards split 2/2/3; 8 shards of 4 batches leave four
    empty, and with score_thresh 1.0 there is no detection at all."""
    annotations, images = demo_images
    settings = {
        "variant": "torch",
        "runtime_path": ROOT / DEMO["model"]["weights"]["path"],
        "annotations": annotations,
        "image_dir": images,
        "model": {k: DEMO["model"][k] for k in ("arch", "num_classes", "image_size")},
        "resize_kernel": DEMO["preprocess"]["resize_kernel"],
        "decode": DEMO["preprocess"]["decode"],
        "postprocess": {**DEMO["postprocess"], "score_thresh": score_thresh},
        "batch_size": 2,
        "device": "cpu",
        "threads": 1,
        "torch_settings": DEMO["pytorch"],
    }
    draw = {"draw_images": 3, "draw_min_score": DEMO["infer"]["draw_min_score"]}
    whole = _outputs(tmp_path / "whole")
    infer_variant(outputs=whole, **settings, **draw, workers=1)

    shards = [tmp_path / "shards" / shard_name(i, count) for i in range(count)]
    for shard in shards:
        outputs = {"detections": shard / "detections.npz", "stats": shard / "stats.json"}
        # two batches in flight in the shards, one in the whole run: the same bytes
        infer_shard(shard=shard.name, outputs=outputs, **settings, workers=2)
    gathered = _outputs(tmp_path / "gathered")
    stats = gather_shards(
        [s / "detections.npz" for s in shards],
        [s / "stats.json" for s in shards],
        annotations,
        images,
        gathered,
        batch_size=settings["batch_size"],
        **draw,
    )

    assert whole["detections"].read_bytes() == gathered["detections"].read_bytes()
    entries = json.loads(whole["detections"].read_text())
    assert (len(entries) > 0) == (score_thresh < 1)
    for folder in ("txt", "drawn"):
        names = sorted(p.name for p in whole[folder].iterdir())
        assert names == sorted(p.name for p in gathered[folder].iterdir())
        assert len(names) == (7 if folder == "txt" else 3)
        match, mismatch, errors = filecmp.cmpfiles(
            whole[folder], gathered[folder], names, shallow=False
        )
        assert (mismatch, errors) == ([], []), folder
    unsharded = json.loads(whole["stats"].read_text())
    assert stats["images"] == unsharded["images"] == 7
    sizes = [stop - start for start, stop in shard_bounds(7, count, settings["batch_size"])]
    assert [s["images"] for s in stats["shards"]] == sizes
    assert 0 in sizes or count == 3
    assert stats.keys() - unsharded.keys() == {"shards"}


def _infer_settings(demo_images, **model):
    annotations, images = demo_images
    return {
        "variant": "torch",
        "runtime_path": ROOT / DEMO["model"]["weights"]["path"],
        "annotations": annotations,
        "image_dir": images,
        "model": {**{k: DEMO["model"][k] for k in ("arch", "num_classes", "image_size")}, **model},
        "resize_kernel": DEMO["preprocess"]["resize_kernel"],
        "decode": DEMO["preprocess"]["decode"],
        "postprocess": DEMO["postprocess"],
        "batch_size": 2,
        "device": "cpu",
        "threads": 1,
        "torch_settings": DEMO["pytorch"],
        "workers": DEMO["infer"]["workers"],
    }


def test_the_rate_after_the_first_batch_is_recorded(demo_images, tmp_path):
    """stats.json holds the whole run's rate and the rate after the first batch (on a GPU
    the first carries compiling and graph capture): 7 images in batches of 2 leave 5 after
    it, timed over the run's time less the first batch's."""
    settings = _infer_settings(demo_images)
    draw = {"draw_images": 0, "draw_min_score": DEMO["infer"]["draw_min_score"]}
    stats = infer_variant(outputs=_outputs(tmp_path), **settings, **draw)
    assert 0 < stats["first_batch_seconds"] < stats["seconds"]
    expected = 5 / (stats["seconds"] - stats["first_batch_seconds"])
    # both figures are rounded to 3 decimals: the ratio of the rounded ones is within 1%
    assert stats["images_per_second_after_first_batch"] == pytest.approx(expected, rel=0.01)
    steady = stats["stages_ms_after_first_batch"]
    assert set(steady) == {"preprocess_wait", "inference", "postprocess"}
    assert steady["inference"] > 0 and steady["postprocess"] > 0


def test_a_model_of_more_classes_than_the_dataset_is_refused_before_any_image(
    demo_images, tmp_path
):
    """A 264-class model on the 6-class demo split: its labels would have no names (an
    IndexError once every image had run, on the H200); refused first, naming the setting,
    the count and the annotations file, by the unsharded and the sharded job alike."""
    from retinaflow.errors import SettingError

    settings = _infer_settings(demo_images, num_classes=264)
    draw = {"draw_images": 0, "draw_min_score": 0.3}
    with pytest.raises(SettingError, match=r"num_classes.*264.*at most the 6 classes") as err:
        infer_variant(outputs=_outputs(tmp_path / "whole"), **settings, **draw)
    assert str(settings["annotations"]) in str(err.value)
    shard = tmp_path / "shard"
    outputs = {"detections": shard / "detections.npz", "stats": shard / "stats.json"}
    with pytest.raises(SettingError, match="at most the 6 classes"):
        infer_shard(shard="1-of-2", outputs=outputs, **settings)
    assert not (tmp_path / "whole").exists() and not shard.exists()
