"""The report's figures (matplotlib, Agg): mAP per variant against MLPerf's 99% gate, the
precision-recall curves and per-class AP from COCOeval's precision arrays, LoadGen's latency
percentiles per variant and scenario, the jobs' times from Snakemake's benchmark files, the
head's speed, and the comparison and speed tables as HTML. Each function reads records the
workflow wrote and writes one file."""

from __future__ import annotations

import csv
import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .io import atomic_path, read_json
from .summary import GATE_RATIO, STAT_KEYS

# LoadGen's latency figures in the perf record, in order (latency_ms keys)
LATENCY_POINTS = ("min", "p50", "p90", "p95", "p97", "p99", "max")
DPI = 110
LINE_STYLES = ("-", "--", "-.", ":")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike) -> None:
    plt = _pyplot()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)


def _colors(names: Sequence[str]) -> dict[str, tuple]:
    cmap = _pyplot().get_cmap("tab10")
    return {name: cmap(i % 10) for i, name in enumerate(names)}


def read_summary_rows(path: str | os.PathLike) -> list[dict]:
    """results/summary.csv's rows, the reference first (summary.write_summary_csv)."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ---- accuracy -------------------------------------------------------------------------------


def plot_map(rows: list[dict], path: str | os.PathLike) -> None:
    """mAP (COCO AP@[.5:.95]) and AP50 per variant, the gate line at 99% of the reference."""
    plt = _pyplot()
    variants = [r["variant"] for r in rows]
    ap = np.array([float(r["AP"]) for r in rows])
    ap50 = np.array([float(r["AP50"]) for r in rows])
    reference, ref_ap = rows[0]["reference"], float(rows[0]["AP"])
    gate = GATE_RATIO * ref_ap
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(rows) + 2), 4.5))
    x = np.arange(len(rows))
    colors = ["#2ca02c" if r["gate"] == "pass" else "#d62728" for r in rows]
    ax.bar(x - 0.2, ap, 0.4, color=colors, label="mAP (AP@[.5:.95])")
    ax.bar(x + 0.2, ap50, 0.4, color="#9ecae1", label="AP50")
    for xi, value in zip(x, ap):
        ax.text(xi - 0.2, value + 0.005, f"{value:.4f}", ha="center", va="bottom", fontsize=8)
    ax.axhline(
        gate, color="black", linestyle="--", linewidth=1, label=f"MLPerf gate: 99% = {gate:.4f}"
    )
    ax.set_xticks(x, variants)
    # the interesting part is near the gate: start the axis below the lowest bar
    low = min(float(ap.min()), gate)
    ax.set_ylim(max(0.0, low - 0.15 * max(low, 0.05)), min(1.04, max(ap50.max(), gate) * 1.06))
    ax.set_ylabel("COCO bbox AP")
    ax.set_title(
        f"mAP per variant: green passes MLPerf's gate (>= 99% of {reference} {ref_ap:.4f})"
    )
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)


def mean_precision(arrays: Mapping[str, np.ndarray], iou: float | None) -> np.ndarray:
    """The precision-recall curve over all classes (area all, the last maxDets): COCOeval's
    precision [T, R, K, A, M] at IoU `iou` (None: averaged over 0.5:0.95), averaged over the
    classes with ground truth. One value per recall threshold."""
    precision = arrays["precision"][..., 0, -1]  # [T, R, K]
    if iou is not None:
        t = int(np.argmin(np.abs(arrays["iou_thresholds"] - iou)))
        precision = precision[t : t + 1]
    valid = precision > -1
    summed = np.where(valid, precision, 0.0).sum(axis=(0, 2))
    counts = valid.sum(axis=(0, 2))
    return np.where(counts > 0, summed / np.maximum(counts, 1), np.nan)


def class_ap(arrays: Mapping[str, np.ndarray]) -> dict[int, float]:
    """{category id: AP@[.5:.95]} as COCOeval's stats[0] per class (area all, the last
    maxDets); classes without ground truth are left out."""
    precision = arrays["precision"][..., 0, -1]  # [T, R, K]
    out = {}
    for k, category in enumerate(arrays["category_ids"].tolist()):
        values = precision[:, :, k]
        values = values[values > -1]
        if values.size:
            out[int(category)] = float(values.mean())
    return out


def plot_pr_curves(arrays_by_variant: Mapping[str, Mapping | None], path) -> None:
    """Precision against recall per variant, at IoU 0.5 and averaged over IoU 0.5:0.95."""
    plt = _pyplot()
    colors = _colors(list(arrays_by_variant))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), sharey=True)
    for ax, (iou, title) in zip(axes, ((0.5, "IoU 0.5"), (None, "IoU 0.5:0.95 (mean)"))):
        for variant, arrays in arrays_by_variant.items():
            if arrays is None:
                ax.plot([], [], color=colors[variant], label=f"{variant} (no detections)")
                continue
            curve = mean_precision(arrays, iou)
            recall = arrays["recall_thresholds"]
            # the variants of a good build lie almost on top of each other: a dash pattern
            # each, so that none hides another
            style = LINE_STYLES[list(arrays_by_variant).index(variant) % len(LINE_STYLES)]
            ax.plot(
                recall, curve, color=colors[variant], linestyle=style, linewidth=1.4, label=variant
            )
        ax.set_title(f"precision-recall, {title}, all classes")
        ax.set_xlabel("recall")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("precision (mean over classes)")
    axes[1].legend(loc="lower left", fontsize=8)
    _save(fig, path)


def int8_variants(variants: Sequence[str]) -> list[str]:
    """The int8 variants among `variants` (TVM int8 builds and onnx-int8)."""
    return [v for v in variants if "int8" in v]


def class_ap_deltas(
    arrays_by_variant: Mapping[str, Mapping | None], reference: str, variants: Sequence[str]
) -> dict[str, dict[int, tuple[float, float]]]:
    """{variant: {category: (reference AP, variant AP)}} for the classes with ground truth."""
    ref = class_ap(arrays_by_variant[reference])
    out = {}
    for variant in variants:
        arrays = arrays_by_variant[variant]
        aps = class_ap(arrays) if arrays is not None else {}
        out[variant] = {c: (ap, aps.get(c, 0.0)) for c, ap in ref.items()}
    return out


def plot_class_ap(
    arrays_by_variant: Mapping[str, Mapping | None],
    reference: str,
    class_names: Sequence[str],
    count: int,
    path,
) -> list[tuple[str, float]]:
    """The `count` classes the int8 variants hurt most against the reference: per class its
    reference AP and each int8 variant's, worst (largest drop of any int8 variant) first.
    Returns [(class, largest drop)] in that order. Without an int8 variant the plot says so."""
    plt = _pyplot()
    variants = int8_variants([v for v in arrays_by_variant if v != reference])
    deltas = class_ap_deltas(arrays_by_variant, reference, variants)
    ref = class_ap(arrays_by_variant[reference])
    drop = {c: max((r - v for r, v in (deltas[x][c] for x in variants)), default=0.0) for c in ref}
    worst = sorted(ref, key=lambda c: (-drop[c], c))[:count]
    fig, ax = plt.subplots(figsize=(10, 0.55 * max(len(worst), 3) + 1.6))
    bars = [reference, *variants]
    colors = _colors(bars)
    height = 0.8 / len(bars)
    y = np.arange(len(worst))
    for i, name in enumerate(bars):
        values = [ref[c] if name == reference else deltas[name][c][1] for c in worst]
        ax.barh(y + i * height, values, height, color=colors[name], label=name)
    labels = []
    for c in worst:
        name = class_names[c] if 0 <= c < len(class_names) else str(c)
        labels.append(f"{name}  (Δ {-drop[c]:+.3f})" if variants else name)
    ax.set_yticks(y + 0.4 - height / 2, labels)
    ax.invert_yaxis()
    ax.set_xlabel("AP@[.5:.95] of the class")
    ax.set_xlim(0, 1)
    title = (
        f"the {len(worst)} classes int8 hurts most against {reference} (Δ: the largest drop)"
        if variants
        else f"per-class AP of {reference} (no int8 variant among the report's variants)"
    )
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    _save(fig, path)
    return [(class_names[c] if 0 <= c < len(class_names) else str(c), drop[c]) for c in worst]


def write_table_html(rows: list[dict], columns: Sequence[str], title: str, note: str, path):
    """A self-contained HTML table (the Snakemake report shows HTML inline)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for c in columns:
            value = row.get(c, "")
            try:
                text = f"{float(value):.4f}" if c in STAT_KEYS or c.startswith("delta") else value
            except (TypeError, ValueError):
                text = value
            cls = ' class="fail"' if value == "fail" else ""
            cells.append(f"<td{cls}>{html.escape(str(text))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; font-size: 13px; margin: 1em; }}
table {{ border-collapse: collapse; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
th {{ background: #eee; }} td:first-child {{ text-align: left; font-weight: bold; }}
td.fail {{ color: #b00; font-weight: bold; }}
</style></head><body>
<h3>{html.escape(title)}</h3><p>{html.escape(note)}</p>
<table><tr>{head}</tr>
{chr(10).join(body)}
</table></body></html>
"""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(page)


SUMMARY_COLUMNS = (
    "variant", *STAT_KEYS, "delta_AP", "ratio_AP", "gate", "calibration", "speed",
)  # fmt: skip


def write_summary_html(rows: list[dict], path) -> None:
    reference, ref_ap = rows[0]["reference"], float(rows[0]["AP"])
    note = (
        f"COCO bbox stats per variant (results/summary.csv). Reference {reference} "
        f"(mAP {ref_ap:.4f}); MLPerf's gate: mAP >= 99% of it, {GATE_RATIO * ref_ap:.4f}."
    )
    write_table_html(rows, SUMMARY_COLUMNS, "Comparison of the builds", note, path)


# ---- speed ----------------------------------------------------------------------------------


def plot_latency(records: Mapping[tuple[str, str], dict], path) -> None:
    """LoadGen's latency percentiles (min, p50 ... p99, max) per variant, one panel per
    scenario, log scale. `records`: {(variant, scenario): perf record}."""
    plt = _pyplot()
    scenarios = list(dict.fromkeys(s for _, s in records))
    variants = list(dict.fromkeys(v for v, _ in records))
    colors = _colors(variants)
    cols = min(2, len(scenarios))
    rows = (len(scenarios) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols, 4.0 * rows), squeeze=False)
    for ax, scenario in zip(axes.flat, scenarios):
        for variant in variants:
            record = records.get((variant, scenario))
            if record is None:
                continue
            latency = record["latency_ms"]
            points = [(i, latency.get(k)) for i, k in enumerate(LATENCY_POINTS)]
            points = [(i, v) for i, v in points if v is not None]
            if not points:
                continue
            xs, ys = zip(*points)
            verdict = record.get("result") or "?"
            ax.plot(xs, ys, marker="o", color=colors[variant], label=f"{variant} ({verdict})")
            if latency.get("mean") is not None:
                ax.axhline(latency["mean"], color=colors[variant], linestyle=":", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_xticks(range(len(LATENCY_POINTS)), LATENCY_POINTS)
        unit = "query" if scenario == "MultiStream" else "sample"
        ax.set_title(f"{scenario}: latency per {unit} (dotted: mean)", fontsize=10)
        ax.set_ylabel("ms (log)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(scenarios) :]:
        ax.axis("off")
    fig.suptitle("LoadGen latency distribution (the percentiles mlperf_log_detail.txt reports)")
    _save(fig, path)


def plot_speed(speed: dict, path) -> None:
    """The head's time per call per variant: every timed round (results/speed.json times_s)
    as a box and its points, the median labelled with its ratio to onnx."""
    plt = _pyplot()
    variants = list(speed["variants"])
    entries = [speed["variants"][v] for v in variants]
    times = [1e3 * np.asarray(e.get("times_s") or [e["median_s"]]) for e in entries]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(variants) + 2), 4.4))
    colors = _colors(variants)
    x = np.arange(len(variants))
    ax.boxplot(times, positions=x, widths=0.5, showfliers=False)
    rng = np.random.default_rng(0)
    for xi, v, t in zip(x, variants, times):
        ax.scatter(xi + rng.uniform(-0.12, 0.12, t.size), t, s=10, color=colors[v], zorder=3)
    for xi, e in zip(x, entries):
        m = 1e3 * e["median_s"]
        label = f"{m:.1f} ms"
        if e.get("ratio_to_onnx") is not None:
            label += f"\n{e['ratio_to_onnx']:.2f}× onnx"
        if e.get("tuning", {}).get("label") == "untuned":
            label += "\nuntuned"
        ax.text(xi + 0.3, m, label, ha="left", va="center", fontsize=7)
    ax.set_yscale("log")
    ax.set_xticks(x, variants)
    ax.set_xlim(-0.6, len(variants) - 0.1)
    ax.set_ylabel("ms per call (log)")
    s = speed.get("settings", {})
    ax.set_title(
        f"the head alone: {s.get('rounds', '?')} interleaved rounds a variant, batch "
        f"{s.get('batch', '?')}, {s.get('threads', '?')} threads",
        fontsize=10,
    )
    ax.grid(axis="y", alpha=0.3, which="both")
    _save(fig, path)


def write_speed_html(speed: dict, path) -> None:
    rows = []
    for variant, e in speed["variants"].items():
        spread = e["spread"]
        rows.append(
            {
                "variant": variant,
                "median ms": f"{1e3 * e['median_s']:.2f}",
                "min ms": f"{1e3 * spread['min']:.2f}",
                "p25 ms": f"{1e3 * spread['p25']:.2f}",
                "p75 ms": f"{1e3 * spread['p75']:.2f}",
                "max ms": f"{1e3 * spread['max']:.2f}",
                "× onnx": "" if e.get("ratio_to_onnx") is None else f"{e['ratio_to_onnx']:.2f}",
                "runtime": e.get("runtime", ""),
                "tuning": e.get("tuning", {}).get("label", ""),
            }
        )
    columns = ("variant", "median ms", "min ms", "p25 ms", "p75 ms", "max ms", "× onnx")
    columns += ("runtime", "tuning")
    machine = speed.get("machine", {})
    note = f"results/speed.json: the head alone, interleaved; machine {machine.get('cpu', '')}"
    write_table_html(rows, columns, "Speed of the head", note, path)


def read_benchmarks(root: str | os.PathLike) -> list[dict]:
    """Every Snakemake benchmark file under `root` (benchmarks/<stage>/<job>.tsv): its stage,
    job, seconds and peak memory (max_rss, MB), the mean of its rows."""
    root = Path(root)
    out = []
    for path in sorted(root.rglob("*.tsv")):
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        seconds = [float(r["s"]) for r in rows if r.get("s") not in (None, "", "NA")]
        rss = [float(r["max_rss"]) for r in rows if r.get("max_rss") not in (None, "", "NA", "-")]
        if not seconds:
            continue
        rel = path.relative_to(root)
        out.append(
            {
                "stage": rel.parts[0] if len(rel.parts) > 1 else "",
                "job": str(rel.with_suffix("")),
                "s": float(np.mean(seconds)),
                "max_rss_mb": float(np.mean(rss)) if rss else None,
            }
        )
    return out


def plot_stage_times(benchmarks: list[dict], path) -> None:
    """Each job's wall time and peak memory (Snakemake's benchmark: files), grouped by stage,
    with each stage's total time."""
    plt = _pyplot()
    if not benchmarks:
        raise ValueError("no Snakemake benchmark files to plot: run the workflow first")
    stages = list(dict.fromkeys(b["stage"] for b in benchmarks))
    colors = _colors(stages)
    totals = {s: sum(b["s"] for b in benchmarks if b["stage"] == s) for s in stages}
    n = len(benchmarks)
    fig, (ax, ax_mem) = plt.subplots(
        1, 2, figsize=(13, 0.24 * n + 1.8), sharey=True, gridspec_kw={"width_ratios": [3, 1.3]}
    )
    y = np.arange(n)
    ax.barh(y, [b["s"] for b in benchmarks], color=[colors[b["stage"]] for b in benchmarks])
    for yi, b in zip(y, benchmarks):
        ax.text(b["s"], yi, f" {b['s']:.1f} s", va="center", fontsize=7)
    ax.set_yticks(y, [b["job"] for b in benchmarks], fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("wall time per job, s (log)")
    ax.grid(axis="x", alpha=0.3, which="both")
    handles = [
        plt.Rectangle((0, 0), 1, 1, color=colors[s], label=f"{s or '-'}: {totals[s]:.0f} s")
        for s in stages
    ]
    ax.legend(
        handles=handles, fontsize=7, title="stage: total", ncol=min(len(stages), 6),
        loc="upper center", bbox_to_anchor=(0.7, -0.35 / max(n, 8) ** 0.5 - 0.02),
    )  # fmt: skip
    mem = [b["max_rss_mb"] or 0.0 for b in benchmarks]
    ax_mem.barh(y, mem, color=[colors[b["stage"]] for b in benchmarks])
    ax_mem.set_xlabel("peak memory (max_rss), MB")
    ax_mem.grid(axis="x", alpha=0.3)
    total = sum(totals.values())
    ax.set_title(
        f"per-stage times: {n} jobs' Snakemake benchmark files, {total:.0f} s in all",
        loc="left",
        fontsize=10,
    )
    _save(fig, path)


# ---- drawn detections -----------------------------------------------------------------------


def sample_image_ids(image_ids: Sequence[int], count: int, seed: int) -> list[int]:
    """A seeded sample of `count` image ids (all when fewer), in id order."""
    ids = sorted(image_ids)
    if count >= len(ids):
        return ids
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.choice(ids, size=count, replace=False))


def plot_detection_grid(
    annotations: dict,
    image_dir: str | os.PathLike,
    detections_by_variant: Mapping[str, list[dict]],
    image_ids: Sequence[int],
    min_score: float,
    path,
) -> None:
    """One row per image: its ground truth, then each variant's detections with a score of at
    least `min_score`, boxes labelled with the class (and score)."""
    plt = _pyplot()
    from PIL import Image

    names = {c["id"]: c["name"] for c in annotations["categories"]}
    images = {im["id"]: im for im in annotations["images"]}
    truth: dict[int, list] = {}
    for a in annotations["annotations"]:
        truth.setdefault(a["image_id"], []).append(a)
    by_image = {}
    for variant, detections in detections_by_variant.items():
        for d in detections:
            if d["score"] >= min_score:
                by_image.setdefault((variant, d["image_id"]), []).append(d)
    columns = ["ground truth", *detections_by_variant]
    cmap = plt.get_cmap("tab10")
    fig, axes = plt.subplots(
        len(image_ids), len(columns), figsize=(2.6 * len(columns), 2.6 * len(image_ids)),
        squeeze=False,
    )  # fmt: skip
    for r, image_id in enumerate(image_ids):
        record = images[image_id]
        with Image.open(Path(image_dir) / record["file_name"]) as im:
            pixels = np.asarray(im.convert("RGB"))
        for c, column in enumerate(columns):
            ax = axes[r][c]
            ax.imshow(pixels)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                boxes = [(a["bbox"], a["category_id"], None) for a in truth.get(image_id, [])]
            else:
                boxes = [
                    (d["bbox"], d["category_id"], d["score"])
                    for d in by_image.get((column, image_id), [])
                ]
            for (x, y, w, h), category, score in boxes:
                color = cmap(int(category) % 10)
                ax.add_patch(
                    plt.Rectangle((x, y), w, h, fill=False, edgecolor=color, linewidth=1.5)
                )
                label = names.get(category, str(category))
                if score is not None:
                    label += f" {score:.2f}"
                top = y < 0.08 * pixels.shape[0]  # no room above: inside the box
                ax.text(
                    x, y, label, fontsize=6, color="white", va="top" if top else "bottom",
                    clip_on=True,
                    bbox={"facecolor": color, "alpha": 0.8, "pad": 1, "linewidth": 0},
                )  # fmt: skip
            if r == 0:
                ax.set_title(column, fontsize=10)
            if c == 0:
                ax.set_ylabel(f"{record['file_name']}\nobjects: {len(boxes)}", fontsize=7)
            else:
                ax.set_xlabel(f"boxes >= {min_score}: {len(boxes)}", fontsize=7)
    fig.suptitle(
        f"ground truth and each variant's detections (score >= {min_score}), "
        f"{len(image_ids)} sampled images"
    )
    fig.tight_layout()
    _save(fig, path)


def read_perf_records(paths: Mapping[tuple[str, str], str | os.PathLike]) -> dict:
    return {key: read_json(path) for key, path in paths.items()}


# ---- what each report rule makes ------------------------------------------------------------


def accuracy_figures(
    summary_csv, arrays_files: Mapping[str, str | os.PathLike], annotations_path, classes: int,
    out: Mapping[str, str | os.PathLike],
) -> list[tuple[str, float]]:  # fmt: skip
    """The accuracy figures: out["map"], ["pr"], ["class_ap"] (PNG) and ["table"] (HTML).
    Returns the classes of the per-class plot with their largest int8 drop."""
    from .evaluate import read_precision_arrays

    rows = read_summary_rows(summary_csv)
    arrays = {v: read_precision_arrays(p) for v, p in arrays_files.items()}
    reference = rows[0]["reference"]
    if arrays.get(reference) is None:
        raise ValueError(f"the reference variant {reference!r} has no detections to plot")
    names = [c["name"] for c in sorted(read_json(annotations_path)["categories"], key=_id)]
    plot_map(rows, out["map"])
    plot_pr_curves(arrays, out["pr"])
    worst = plot_class_ap(arrays, reference, names, classes, out["class_ap"])
    write_summary_html(rows, out["table"])
    return worst


def _id(category: dict) -> int:
    return category["id"]


def speed_figures(
    perf_files: Mapping[tuple[str, str], str | os.PathLike], speed_json,
    out: Mapping[str, str | os.PathLike],
) -> None:  # fmt: skip
    """out["latency"] (LoadGen's percentiles), ["speed"] (the head's times), ["table"]."""
    plot_latency(read_perf_records(perf_files), out["latency"])
    speed = read_json(speed_json)
    plot_speed(speed, out["speed"])
    write_speed_html(speed, out["table"])


def detection_grid(
    annotations_path, image_dir, detection_files: Mapping[str, str | os.PathLike], count: int,
    seed: int, min_score: float, path,
) -> list[int]:  # fmt: skip
    """The grid of drawn detections of a seeded sample of `count` images; returns their ids."""
    annotations = read_json(annotations_path)
    ids = sample_image_ids([im["id"] for im in annotations["images"]], count, seed)
    detections = {v: read_json(p) for v, p in detection_files.items()}
    plot_detection_grid(annotations, image_dir, detections, ids, min_score, path)
    return ids


def stage_times(root, path) -> list[dict]:
    """The per-job times of every Snakemake benchmark file under `root`, plotted to `path`."""
    benchmarks = read_benchmarks(root)
    plot_stage_times(benchmarks, path)
    return benchmarks
