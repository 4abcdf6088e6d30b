"""The evaluation split with its ground truth and every variant's detections in a persistent
FiftyOne dataset (fiftyone's own MongoDB: its mongod, its database dir), scored there with
FiftyOne's COCO-style evaluation, so that the FiftyOne App can show what each build detects
and misses, image by image, and its mAP stands next to pycocotools'.

Both implement COCOeval (101 recall points, IoU 0.50:0.95, at most 100 detections per image
and class, crowd boxes matched last and never counted), and with distinct scores they agree to
rounding (1e-16 in tests/test_report.py; FiftyOne's boxes relative to the image change no IoU:
scaling both axes scales every area alike). They differ only where detections of one class
have equal scores: FiftyOne ranks a score's true positives before its false positives,
pycocotools in image order, so FiftyOne's AP is then the same or a little higher (+2.5e-3 on
a made-up set with scores rounded to 2 decimals; on the demo's 200 images +5.3e-4 for the int8
builds, whose quantised logits tie by the thousand, and +2.3e-5 for onnx, whose scores tie
where sigmoid saturates in float32).
`compare` records the difference per variant.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from .io import read_json, write_json

GROUND_TRUTH = "ground_truth"


def field_name(variant: str) -> str:
    """The sample field of a variant's detections: pred_onnx_int8 for onnx-int8."""
    return "pred_" + variant.replace("-", "_")


def _detections(fo, entries: list[dict], width: int, height: int, names: Mapping, truth: bool):
    detections = []
    for e in entries:
        x, y, w, h = e["bbox"]
        d = fo.Detection(
            label=names[e["category_id"]],
            bounding_box=[x / width, y / height, w / width, h / height],
        )
        if truth:
            d["iscrowd"] = int(e.get("iscrowd", 0))
        else:
            d.confidence = float(e["score"])
        detections.append(d)
    return fo.Detections(detections=detections)


def build_dataset(
    name: str,
    annotations_path: str | os.PathLike,
    image_dir: str | os.PathLike,
    detections: Mapping[str, list[dict]],
    progress: bool = True,
):
    """A persistent dataset `name` (replacing one of that name): one sample per evaluation
    image with its ground truth (`ground_truth`) and each variant's detections
    (`field_name(variant)`), boxes relative to the image as FiftyOne keeps them."""
    import fiftyone as fo

    annotations = read_json(annotations_path)
    names = {c["id"]: c["name"] for c in annotations["categories"]}
    by_image: dict[tuple, list] = {}
    for a in annotations["annotations"]:
        by_image.setdefault((GROUND_TRUTH, a["image_id"]), []).append(a)
    for variant, entries in detections.items():
        for d in entries:
            by_image.setdefault((variant, d["image_id"]), []).append(d)
    if fo.dataset_exists(name):
        fo.delete_dataset(name)
    dataset = fo.Dataset(name, persistent=True)
    samples = []
    for image in sorted(annotations["images"], key=lambda im: im["id"]):
        w, h = image["width"], image["height"]
        sample = fo.Sample(
            filepath=str(Path(image_dir, image["file_name"]).resolve()),
            metadata=fo.ImageMetadata(width=w, height=h),
            image_id=image["id"],
        )
        sample[GROUND_TRUTH] = _detections(
            fo, by_image.get((GROUND_TRUTH, image["id"]), []), w, h, names, truth=True
        )
        for variant in detections:
            entries = by_image.get((variant, image["id"]), [])
            sample[field_name(variant)] = _detections(fo, entries, w, h, names, truth=False)
        samples.append(sample)
    dataset.add_samples(samples, progress=progress)
    dataset.info = {"annotations": str(annotations_path), "variants": list(detections)}
    dataset.save()
    return dataset


def evaluate(dataset, variants, max_detections: int, progress: bool = True) -> dict[str, dict]:
    """FiftyOne's COCO-style evaluation of each variant's field against the ground truth
    (eval key eval_<variant>, stored on the dataset for the App): {variant: mAP, AP50 ...}."""
    out = {}
    for variant in variants:
        field = field_name(variant)
        key = "eval_" + variant.replace("-", "_")
        results = dataset.evaluate_detections(
            field,
            gt_field=GROUND_TRUTH,
            eval_key=key,
            method="coco",
            compute_mAP=True,
            max_preds=max_detections,
            progress=progress,
        )
        out[variant] = {"mAP": float(results.mAP()), "eval_key": key, "field": field}
    return out


def compare(fiftyone_maps: Mapping[str, dict], map_files: Mapping[str, str | os.PathLike]):
    """{variant: FiftyOne's mAP, pycocotools' (results/map_{variant}.json stats.AP), the
    difference}."""
    out = {}
    for variant, entry in fiftyone_maps.items():
        coco = float(read_json(map_files[variant])["stats"]["AP"])
        out[variant] = {
            **entry,
            "pycocotools_mAP": coco,
            "difference": entry["mAP"] - coco,
        }
    return out


def load_and_evaluate(
    name: str,
    annotations_path: str | os.PathLike,
    image_dir: str | os.PathLike,
    detection_files: Mapping[str, str | os.PathLike],
    map_files: Mapping[str, str | os.PathLike],
    max_detections: int,
    out_path: str | os.PathLike,
    html_path: str | os.PathLike,
    progress: bool = True,
) -> dict:
    """build_dataset, evaluate, compare; write the record (results/fiftyone.json) and the
    comparison as an HTML table for the report."""
    import fiftyone as fo

    detections = {v: read_json(p) for v, p in detection_files.items()}
    dataset = build_dataset(name, annotations_path, image_dir, detections, progress)
    maps = compare(evaluate(dataset, list(detections), max_detections, progress), map_files)
    record = {
        "dataset": name,
        "samples": len(dataset),
        "database_dir": fo.config.database_dir,
        "fiftyone_version": fo.__version__,
        "ground_truth_field": GROUND_TRUTH,
        "max_detections": max_detections,
        "variants": maps,
        "largest_difference": max((abs(m["difference"]) for m in maps.values()), default=0.0),
        "open_app": f'fiftyone app launch "{name}"',
    }
    write_json(out_path, record)
    write_comparison_html(record, html_path)
    return record


def write_comparison_html(record: dict, path: str | os.PathLike) -> None:
    from .plots import write_table_html

    rows = [
        {
            "variant": variant,
            "FiftyOne mAP": f"{m['mAP']:.6f}",
            "pycocotools mAP": f"{m['pycocotools_mAP']:.6f}",
            "difference": f"{m['difference']:+.2e}",
            "field": m["field"],
            "eval key": m["eval_key"],
        }
        for variant, m in record["variants"].items()
    ]
    columns = ("variant", "FiftyOne mAP", "pycocotools mAP", "difference", "field", "eval key")
    note = (
        f"FiftyOne dataset {record['dataset']!r} ({record['samples']} samples, database "
        f"{record['database_dir']}): FiftyOne's COCO-style evaluation (compute_mAP) of each "
        "variant's field against ground_truth, next to pycocotools' COCOeval. Open it: "
        f"{record['open_app']}"
    )
    write_table_html(rows, columns, "FiftyOne's mAP against pycocotools'", note, path)
