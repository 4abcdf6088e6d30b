"""The comparison table: one row per variant, its COCO numbers, the change against fp32,
MLPerf's accuracy gate (a build passes only with mAP >= 99% of the fp32 mAP), for an int8
variant the calibration set it was quantized on, and the head's speed from results/speed.json
(median and ratio to onnx; a TVM build without tuned functions is marked untuned)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from .calibration import calibration_label
from .io import atomic_path, read_json

STAT_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100")
REFERENCE_VARIANTS = ("fp32", "onnx")  # first present is the reference
GATE_RATIO = 0.99
COLUMNS = (
    "variant",
    *STAT_KEYS,
    "delta_AP",
    "ratio_AP",
    "gate",
    "int8_execution",
    "calibration",
    "speed_ms",
    "speed_ratio_to_onnx",
    "tuning",
    "speed",
    "reference",
)


def _read_stats(variant: str, path: str | os.PathLike) -> dict[str, float]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"map file {path} of variant {variant!r} does not exist")
    stats = read_json(path).get("stats")
    missing = [k for k in STAT_KEYS if stats is None or k not in stats]
    if missing:
        raise ValueError(
            f"map file {path} of variant {variant!r} lacks stats {missing}: rerun its score rule"
        )
    return {k: float(stats[k]) for k in STAT_KEYS}


def _int8_execution(variant: str, meta_path: str | os.PathLike | None) -> str:
    """What the build's meta json says about int8 ("" where it says nothing)."""
    if meta_path is None or not Path(meta_path).is_file():
        return ""
    return str(read_json(meta_path).get("int8_execution", ""))


def _calibration(variant: str, record_path: str | os.PathLike | None) -> str:
    """The calibration set a quantize record names, e.g. "demo (100 images, seed 3000)"."""
    if record_path is None:
        return ""
    path = Path(record_path)
    if not path.is_file():
        raise FileNotFoundError(f"quantize record {path} of variant {variant!r} does not exist")
    desc = read_json(path).get("calibration")
    if not desc:
        raise ValueError(
            f"quantize record {path} of variant {variant!r} does not name its calibration set: "
            "rerun its quantize rule"
        )
    return calibration_label(desc)


def _speed(variant: str, record: dict | None) -> dict:
    """The speed columns of a variant from the speed record (empty where it has none)."""
    entry = (record or {}).get("variants", {}).get(variant)
    if entry is None:
        return {"speed_ms": "", "speed_ratio_to_onnx": "", "tuning": "", "speed": ""}
    ms, ratio = 1e3 * entry["median_s"], entry.get("ratio_to_onnx")
    tuning = entry.get("tuning", {}).get("label", "")
    text = f"{ms:.1f} ms" + (f" ({ratio:.2f}× onnx)" if ratio is not None else "")
    if tuning == "untuned":
        text += " **untuned**"
    return {
        "speed_ms": ms,
        "speed_ratio_to_onnx": ratio if ratio is not None else "",
        "tuning": tuning,
        "speed": text,
    }


def summarize(
    map_files: dict[str, str | os.PathLike],
    meta_files: dict[str, str | os.PathLike] | None = None,
    quantize_files: dict[str, str | os.PathLike] | None = None,
    speed_file: str | os.PathLike | None = None,
) -> list[dict]:
    """Rows in the order of COLUMNS, the reference variant first, the others as given.

    quantize_files maps each int8 variant to its quantize record (the calibration column);
    the other variants leave that column empty. speed_file is results/speed.json (the speed
    columns; empty without it).
    """
    speed = read_json(speed_file) if speed_file is not None else None
    reference = next((v for v in REFERENCE_VARIANTS if v in map_files), None)
    if reference is None:
        raise ValueError(
            f"the summary needs a reference variant {REFERENCE_VARIANTS} among the map files, "
            f"got {sorted(map_files)}: add results/map_fp32.json or results/map_onnx.json"
        )
    stats = {variant: _read_stats(variant, path) for variant, path in map_files.items()}
    ref_ap = stats[reference]["AP"]
    order = [reference, *(v for v in map_files if v != reference)]
    rows = []
    for variant in order:
        ap = stats[variant]["AP"]
        rows.append(
            {
                "variant": variant,
                **stats[variant],
                "delta_AP": ap - ref_ap,
                "ratio_AP": ap / ref_ap if ref_ap > 0 else float("nan"),
                "gate": "pass" if ap >= GATE_RATIO * ref_ap else "fail",
                "int8_execution": _int8_execution(variant, (meta_files or {}).get(variant)),
                "calibration": _calibration(variant, (quantize_files or {}).get(variant)),
                **_speed(variant, speed),
                "reference": reference,
            }
        )
    return rows


def write_summary_csv(rows: list[dict], path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _plain(row[k]) for k in COLUMNS})


def _plain(value):
    return f"{value:.6f}" if isinstance(value, float) else value


def write_summary_md(
    rows: list[dict], path: str | os.PathLike, speed_settings: dict | None = None
) -> None:
    """A markdown table with the reference and the gate threshold stated above it."""
    reference = rows[0]["reference"]
    ref_ap = rows[0]["AP"]
    lines = [
        "# Accuracy by variant",
        "",
        f"Reference: `{reference}` (mAP {ref_ap:.4f}). MLPerf gate: a variant passes when its "
        f"mAP >= {GATE_RATIO:.0%} of the reference, i.e. >= {GATE_RATIO * ref_ap:.4f}.",
        "Calibration: the set an int8 build was quantized on, none of whose images is scored.",
        *_speed_note(speed_settings),
        "",
        "| variant | " + " | ".join(STAT_KEYS) + " | ΔAP | AP / ref | gate | calibration | speed |",
        "|---|" + "---:|" * (len(STAT_KEYS) + 2) + "---|---|---:|",
    ]
    notes = []
    for row in rows:
        cells = [f"{row[k]:.4f}" for k in STAT_KEYS]
        gate = "**fail**" if row["gate"] == "fail" else "pass"
        name = row["variant"]
        if row["int8_execution"]:
            notes.append(f"- `{name}`: int8 execution {row['int8_execution']}.")
            name += " *"
        lines.append(
            f"| {name} | "
            + " | ".join(cells)
            + f" | {row['delta_AP']:+.4f} | {row['ratio_AP']:.2%} | {gate}"
            + f" | {row['calibration']} | {row['speed']} |"
        )
    if notes:
        lines += ["", "\\* from the build's meta json:", *notes]
    with atomic_path(path) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")


def _speed_note(settings: dict | None) -> list[str]:
    if not settings:
        return []
    return [
        f"Speed: the head alone (no pre- or post-processing), median of {settings['rounds']} "
        f"interleaved rounds, batch {settings['batch']}, {settings['threads']} threads "
        "(results/speed.json); ×onnx: its ratio to ONNX Runtime fp32. **untuned**: a TVM build "
        "with no tuned function runs TVM's default loops: not the build's tuned speed."
    ]


def write_summary(
    map_files: dict[str, str | os.PathLike],
    md_path: str | os.PathLike,
    csv_path: str | os.PathLike,
    meta_files: dict[str, str | os.PathLike] | None = None,
    quantize_files: dict[str, str | os.PathLike] | None = None,
    speed_file: str | os.PathLike | None = None,
) -> list[dict]:
    """summarize, then write results/summary.md and results/summary.csv."""
    rows = summarize(map_files, meta_files, quantize_files, speed_file)
    settings = read_json(speed_file)["settings"] if speed_file is not None else None
    write_summary_md(rows, md_path, settings)
    write_summary_csv(rows, csv_path)
    return rows
