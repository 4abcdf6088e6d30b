"""MLPerf LoadGen: the accuracy-log format against a hand-made log, real LoadGen runs of every
scenario on the demo ONNX model, and the accuracy run scored like MLPerf equal to the mAP of
the reference inference loop."""

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from retinaflow.evaluate import score_detections
from retinaflow.io import read_json, write_json
from retinaflow.perf.accuracy import encode_detections, read_accuracy_log, score_accuracy_log
from retinaflow.perf.logs import read_verdict

from .configs import DEMO, MAX_DETECTIONS, RESIZE_KERNEL, as_configured, postprocess_settings
from .workflow import snakemake, write_config

MODEL = {"arch": "demo", "num_classes": 6, "image_size": 320}
SHORT = {  # a second or so each: verdicts may be INVALID, the fields must all be there
    "SingleStream": {"min_duration_ms": 1000, "min_query_count": 16, "target_latency_ms": 25},
    "MultiStream": {
        "min_duration_ms": 1000,
        "min_query_count": 4,
        "samples_per_query": 8,
        "target_latency_ms": 200,
    },
    "Server": {
        "min_duration_ms": 1000,
        "min_query_count": 16,
        "target_qps": 15,
        "target_latency_ms": 200,
    },
    "Offline": {"min_duration_ms": 1000, "min_query_count": 32, "target_qps": 40},
}


def _hex(rows) -> str:
    return np.asarray(rows, dtype=np.float32).tobytes().hex().upper()


@pytest.fixture
def three_images(tmp_path):
    """Annotations whose images array is NOT in id order: the sample index is the position."""
    data = {
        "images": [
            {"id": 3, "file_name": "c.jpg", "width": 200, "height": 100},
            {"id": 1, "file_name": "a.jpg", "width": 400, "height": 300},
            {"id": 2, "file_name": "b.jpg", "width": 50, "height": 80},
        ],
        "annotations": [
            {
                "id": 1,
                "image_id": 3,
                "category_id": 1,
                "bbox": [20, 10, 100, 50],
                "area": 5000,
                "iscrowd": 0,
            },
            {
                "id": 2,
                "image_id": 1,
                "category_id": 0,
                "bbox": [40, 30, 200, 150],
                "area": 30000,
                "iscrowd": 0,
            },
            {
                "id": 3,
                "image_id": 2,
                "category_id": 1,
                "bbox": [5, 8, 20, 40],
                "area": 800,
                "iscrowd": 0,
            },
        ],  # fmt: skip
        "categories": [{"id": 0, "name": "zero"}, {"id": 1, "name": "one"}],
    }
    path = tmp_path / "annotations.json"
    write_json(path, data)
    return path


def test_accuracy_log_decodes_with_mlperf_semantics(three_images, tmp_path):
    # sample 0 = image id 3 (200x100): box x 20..120, y 10..60 -> normalised y/x first
    exact = [0, 10 / 100, 20 / 200, 60 / 100, 120 / 200, 0.9, 1]
    wrong_class = [0, 0.0, 0.0, 0.5, 0.5, 0.3, 0]
    # sample 1 = image id 1 (400x300): the ground truth box exactly
    image1 = [1, 30 / 300, 40 / 400, 180 / 300, 240 / 400, 0.8, 0]
    log = [
        {"seq_id": 0, "qsl_idx": 0, "data": _hex([exact, wrong_class])},
        {"seq_id": 1, "qsl_idx": 1, "data": _hex([image1])},
        {"seq_id": 2, "qsl_idx": 2, "data": ""},  # no detections: the image still counts
        {"seq_id": 3, "qsl_idx": 1, "data": _hex([[1, 0, 0, 1, 1, 0.99, 1]])},  # duplicate
    ]
    path = tmp_path / "mlperf_log_accuracy.json"
    write_json(path, log)

    samples = read_accuracy_log(path)
    assert sorted(samples) == [0, 1, 2]
    assert samples[2].shape == (0, 7)
    np.testing.assert_array_equal(samples[1], np.float32([image1]))  # the first one kept

    result = score_accuracy_log(path, three_images, MAX_DETECTIONS)
    expected = score_detections(
        three_images,
        [
            {"image_id": 3, "category_id": 1, "bbox": [20, 10, 100, 50], "score": 0.9},
            {"image_id": 3, "category_id": 0, "bbox": [0, 0, 100, 50], "score": 0.3},
            {"image_id": 1, "category_id": 0, "bbox": [40, 30, 200, 150], "score": 0.8},
        ],
        MAX_DETECTIONS,
    )
    assert result["num_images"] == 3 and result["samples"] == 3
    assert result["num_detections"] == 3
    assert result["stats"] == pytest.approx(expected["stats"], abs=1e-9)
    # one of the two ground-truth classes is missed entirely on image 2
    assert 0.4 < result["bbox_mAP"] < 1


def test_accuracy_log_errors_name_the_problem(three_images, tmp_path):
    path = tmp_path / "log.json"
    write_json(path, [{"seq_id": 0, "qsl_idx": 0, "data": _hex([[2, 0, 0, 1, 1, 0.5, 0]])}])
    with pytest.raises(ValueError, match="carries detections of sample 2"):
        read_accuracy_log(path)
    write_json(path, [{"seq_id": 0, "qsl_idx": 0, "data": _hex([0, 0, 0, 1, 1])}])
    with pytest.raises(ValueError, match="not a multiple of 7"):
        read_accuracy_log(path)
    write_json(path, [{"seq_id": 0, "qsl_idx": 0, "data": _hex([[0, 0, 0, 1, 1, 0.5, 0]])}])
    with pytest.raises(ValueError, match="covers 1 of the 3 images"):
        score_accuracy_log(path, three_images, MAX_DETECTIONS)


def test_encode_detections_is_mlperf_row_order():
    boxes = np.float32([[0.1, 0.2, 0.3, 0.4]])  # xyxy normalised
    payload = encode_detections(7, boxes, np.float32([0.5]), np.int64([3]))
    assert payload.dtype == np.float32
    np.testing.assert_array_equal(payload, np.float32([7, 0.2, 0.1, 0.4, 0.3, 0.5, 3]))
    assert encode_detections(7, np.zeros((0, 4)), [], []).size == 0


@pytest.fixture(scope="module")
def demo_build(demo_run):
    workdir, _ = demo_run
    return {
        "runtime_path": workdir / "models/demo/head.sim.onnx",
        "annotations": workdir / "data/demo/annotations.json",
        "image_dir": workdir / "data/demo/images",
        "workdir": workdir,
    }


@pytest.mark.slow
@pytest.mark.parametrize("scenario", list(SHORT))
def test_loadgen_scenario_writes_its_record(demo_build, scenario, tmp_path):
    from retinaflow.perf import run_loadgen

    out, logs = tmp_path / f"perf_onnx_{scenario}.json", tmp_path / "loadgen" / scenario
    run_loadgen(
        "onnx",
        demo_build["runtime_path"],
        demo_build["annotations"],
        demo_build["image_dir"],
        MODEL,
        scenario,
        "PerformanceOnly",
        SHORT[scenario],
        out,
        logs,
        threads=2,
        batch_size=4,
        performance_sample_count=16,
        resize_kernel=RESIZE_KERNEL,
        postprocess=DEMO["postprocess"],
        device="cpu",
        torch_settings=None,
        workers=2,  # Offline and Server: two batches in flight; SingleStream runs inline
    )
    record = read_json(out)
    assert record["variant"] == "onnx" and record["scenario"] == scenario
    assert record["result"] in ("VALID", "INVALID")
    assert record["valid"] == (record["result"] == "VALID")
    assert record["result"] == read_verdict(logs / "mlperf_log_summary.txt")
    assert record["samples"] >= SHORT[scenario]["min_query_count"]
    assert record["qps"] > 0
    for key in ("mean", "p50", "p90", "p99"):
        assert record["latency_ms"][key] > 0, key
    assert record["latency_ms"]["p50"] <= record["latency_ms"]["p99"]
    for stage in ("preprocess", "inference", "postprocess"):
        assert record["stages_ms"][stage] > 0, stage
    assert record["threads"] == 2
    assert record["batch_size"] == {"SingleStream": 1}.get(scenario, 4)
    assert record["performance_sample_count"] == 16
    assert Path(record["log_dir"]) == logs
    assert (logs / "mlperf_log_detail.txt").stat().st_size > 0
    assert not list(tmp_path.glob("loadgen/.tmp-*"))


@pytest.mark.slow
def test_accuracy_run_scores_like_the_reference_loop(demo_build, tmp_path):
    """A subset in reversed array order: LoadGen's sample index is the array position, the
    reference loop goes by image id, and both must give the same detections and mAP."""
    from retinaflow.data.annotations import image_records
    from retinaflow.detector import Detector
    from retinaflow.infer import coco_results, infer_images
    from retinaflow.perf import run_loadgen
    from retinaflow.runtime import open_runner

    data = read_json(demo_build["annotations"])
    images = data["images"][:40][::-1]
    ids = {img["id"] for img in images}
    subset = dict(data, images=images)
    subset["annotations"] = [a for a in data["annotations"] if a["image_id"] in ids]
    annotations = tmp_path / "subset.json"
    write_json(annotations, subset)

    logs = tmp_path / "accuracy"
    record = run_loadgen(
        "onnx",
        demo_build["runtime_path"],
        annotations,
        demo_build["image_dir"],
        MODEL,
        "Offline",
        "AccuracyOnly",
        SHORT["Offline"],
        tmp_path / "run.json",
        logs,
        threads=2,
        batch_size=8,
        performance_sample_count=16,  # loaded in sets of 16: load/unload hooks exercised
        resize_kernel=RESIZE_KERNEL,
        postprocess=DEMO["postprocess"],
        device="cpu",
        torch_settings=None,
        workers=2,  # batches completed out of order must still land on their samples
    )
    assert record["samples"] == 40 and record["mode"] == "AccuracyOnly"
    loadgen = score_accuracy_log(logs / "mlperf_log_accuracy.json", annotations, MAX_DETECTIONS)

    runner = open_runner("onnx", demo_build["runtime_path"], MODEL, 2, "cpu")
    detector = Detector(runner, "demo", 320, postprocess_settings())
    records = image_records(subset, demo_build["image_dir"])
    results = list(
        infer_images(
            records,
            detector,
            resize_kernel=RESIZE_KERNEL,
            batch_size=8,
            workers=2,
            decode="cpu",
            device="cpu",
            progress=False,
        )
    )
    reference = score_detections(annotations, coco_results(results), MAX_DETECTIONS)

    assert reference["bbox_mAP"] > 0.5
    assert loadgen["num_detections"] == reference["num_detections"]
    for name, value in reference["stats"].items():
        assert loadgen["stats"][name] == pytest.approx(value, abs=1e-6), name


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["SingleStream", "Offline"])
def test_a_failing_build_fails_the_run_without_hanging(demo_build, scenario, tmp_path):
    from retinaflow.perf.qsl import SampleLibrary, sample_records
    from retinaflow.perf.run import _start_test
    from retinaflow.perf.settings import loadgen_settings
    from retinaflow.perf.sut import DetectionSUT

    def broken(images, indices):
        raise RuntimeError("the accelerator fell over")

    records = sample_records(read_json(demo_build["annotations"]), demo_build["image_dir"])
    qsl = SampleLibrary(records[:8], 320, RESIZE_KERNEL)
    sut = DetectionSUT(broken, qsl, scenario, batch_size=4, workers=2)
    settings = loadgen_settings(scenario, "PerformanceOnly", SHORT[scenario], 8)
    _start_test(sut, qsl, settings, tmp_path, 8)  # returns: every sample was answered
    assert "fell over" in str(sut.error)


def test_each_worker_warms_up_before_the_test_and_a_failing_warm_up_is_raised():
    """start_workers runs the warm-up once on every worker thread (a PyTorch runner captures
    its CUDA graph per thread) and returns only when all have; the workers then serve. A
    warm-up that fails stops the workers and raises, before any query."""
    from types import SimpleNamespace

    from retinaflow.perf.sut import DetectionSUT

    class Recording(DetectionSUT):
        def _run(self, samples):
            served.append(threading.current_thread().name)

    warmed, served = [], []

    def warm_up():
        time.sleep(0.05)  # a slow warm-up: start_workers must wait for it
        warmed.append(threading.current_thread().name)

    sut = Recording(None, None, "Offline", batch_size=1, workers=3)
    sut.start_workers(warm_up)
    assert sorted(warmed) == [f"sut-worker-{i}" for i in range(3)]
    with sut:  # the workers already run: no second set
        sut.issue_queries([SimpleNamespace(index=i, id=i) for i in range(6)])
        _until(lambda: len(served) == 6)
    assert set(served) <= set(warmed)

    def broken():
        raise RuntimeError("no memory for the graph")

    failing = Recording(None, None, "Offline", batch_size=1, workers=2)
    with pytest.raises(RuntimeError, match="no memory for the graph"):
        failing.start_workers(broken)
    assert failing._workers == []  # stopped


def test_a_worker_waits_for_its_batch_to_fill_then_runs_what_it_has():
    """perf.batch_wait_ms (Server): a worker holding fewer than batch_size samples waits up to
    batch_wait for more, so a head of a fixed batch does not run a few samples padded to a
    whole batch; a lone sample still runs once the wait is over, and stopping does not wait."""
    from types import SimpleNamespace

    from retinaflow.perf.sut import DetectionSUT

    class Recording(DetectionSUT):
        def _run(self, samples):
            batches.append(([s.index for s in samples], time.perf_counter()))

    batches: list = []
    wait = 1.0  # far above a thread hand-off (~ms), far below a test's patience
    sut = Recording(None, None, "Server", batch_size=4, workers=1, batch_wait=wait)
    with sut:
        sut.issue_queries([SimpleNamespace(index=0, id=0)])
        time.sleep(0.05)  # the worker holds sample 0 and waits for three more
        sut.issue_queries([SimpleNamespace(index=i, id=i) for i in (1, 2, 3)])
        _until(lambda: len(batches) == 1)
        lone = time.perf_counter()
        sut.issue_queries([SimpleNamespace(index=4, id=4)])
        _until(lambda: len(batches) == 2)
        sut.issue_queries([SimpleNamespace(index=5, id=5)])
        stopping = time.perf_counter()
    stopped = time.perf_counter() - stopping
    assert [b for b, _ in batches] == [[0, 1, 2, 3], [4], [5]]
    # the lone sample ran once its wait was over (perf_counter's resolution is far finer than
    # the 10% margin), not at once
    assert batches[1][1] - lone >= 0.9 * wait
    assert stopped < 0.9 * wait  # the stop ends the wait: sample 5 ran without it


def _until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the SUT's worker did not run the batch"
        time.sleep(0.005)


def test_missing_image_fails_before_loadgen(three_images, tmp_path):
    from retinaflow.errors import DatasetError
    from retinaflow.perf.qsl import sample_records

    with pytest.raises(DatasetError, match="3 of 3 images .* missing.*sample index"):
        sample_records(read_json(three_images), tmp_path)


def test_unknown_scenario_setting_is_named():
    from retinaflow.perf.settings import loadgen_settings

    with pytest.raises(ValueError, match=r"setting Offline is \['qps'\]: unknown settings") as e:
        loadgen_settings("Offline", "PerformanceOnly", {"qps": 3})
    assert "config key perf.scenarios.Offline is" in as_configured(e.value, "perf.scenarios")
    settings = loadgen_settings("Server", "PerformanceOnly", SHORT["Server"], 16)
    assert settings.server_target_latency_ns == 200_000_000
    assert settings.performance_sample_count_override == 16
    assert settings.qsl_rng_seed != 0  # MLPerf's seeds from LoadGen's built-in mlperf.conf


@pytest.mark.slow
def test_perf_rules_run_and_loadgen_map_equals_reference(demo_run, tmp_path):
    workdir, _ = demo_run
    short = write_config(tmp_path / "perf.yaml", {"perf": {"scenarios": SHORT}})
    targets = ("results/perf_onnx_Server.json", "results/map_loadgen_onnx.json")
    snakemake(workdir, "--", *targets, configfiles=[short])
    record = json.loads((workdir / targets[0]).read_text())
    assert record["scenario"] == "Server" and record["qps"] > 0
    assert (workdir / "results/loadgen/onnx/Server/mlperf_log_summary.txt").exists()
    assert (workdir / "logs/perf/onnx-Server.log").read_text().strip()
    loadgen = json.loads((workdir / targets[1]).read_text())
    reference = json.loads((workdir / "results/map_onnx.json").read_text())
    assert loadgen["bbox_mAP"] == pytest.approx(reference["bbox_mAP"], abs=1e-6)
