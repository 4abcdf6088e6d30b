"""Tuning databases shipped with the package, like TVM's old TopHub: the demo model's int8 head,
tuned once for AVX-512 VNNI CPUs and once for AVX2 ones, so that `make demo` needs no tuning
on a common x86 CPU.

A shipped database is a pruned MetaSchedule database (the best record per workload) in
resources/tuning/<name>/ with its tuning.json, which names the model, precision, input shape
and the ISA class it was tuned for. Its records apply to any CPU of that class: a record is a
schedule (tiling, parallel and vector loops, the VNNI tensorization), not machine code, and
compile builds it for the build's own target. Across classes it does not apply: a VNNI CPU's
integer convs run in the packed layout, the others' in NCHW, so the workloads differ.

Which database a tuning job starts from is `choose`'s answer, with the messages that say why
a shipped database was taken or ignored; `coverage` then counts the model's convolution tasks
the database holds (0: the model differs from the one it was tuned on, and it is ignored).
"""

from __future__ import annotations

import gzip
import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .io import read_json
from .vnni import target_has_vnni

ISA_VNNI, ISA_AVX2 = "avx512-vnni", "avx2"
# What the AVX2 class needs of a CPU, as LLVM names the features (VNNI: vnni.VNNI_FEATURES).
AVX2_FEATURES = ("avx2", "fma")
META = "tuning.json"


def shipped_root() -> Path:
    return Path(str(resources.files("retinaflow") / "resources" / "tuning"))


def target_isa(target) -> str | None:
    """The ISA class of an LLVM target (a tvm Target): avx512-vnni, avx2, or None (another
    architecture, or an x86 target without `mcpu`: LLVM would emit neither)."""
    from tvm.target import codegen

    if target.kind.name != "llvm" or not target.attrs.get("mcpu"):
        return None
    if target_has_vnni(target):
        return ISA_VNNI
    try:
        if codegen.llvm_cpu_has_features(list(AVX2_FEATURES), target):
            return ISA_AVX2
    except Exception:  # a non-x86 triple: the feature names are unknown there
        return None
    return None


def describe_target(target) -> str:
    mcpu = target.attrs.get("mcpu")
    return f"{target.kind.name} -mcpu={mcpu}" if mcpu else str(target.kind.name)


def digest(root=None) -> str:
    """A sha256 over every shipped database's files: the tuning rule takes it as a param, so
    that a package update that changes a shipped database reruns tuning and what follows."""
    import hashlib

    root = Path(root) if root is not None else shipped_root()
    sha = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []:
        sha.update(str(path.relative_to(root)).encode())
        sha.update(path.read_bytes())
    return sha.hexdigest()


@dataclass
class Choice:
    """The shipped database a tuning job starts from (None: from scratch), and why."""

    path: Path | None = None
    meta: dict = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)


def choose(model: str, precision: str, input_shape: list[int], target, root=None) -> Choice:
    """The shipped database for (model, precision, input_shape) whose ISA class is the
    target's. Databases of the same model in another class are named in the messages."""
    root = Path(root) if root is not None else shipped_root()
    isa = target_isa(target)
    choice = Choice()
    candidates = sorted(p.parent for p in root.glob(f"*/{META}")) if root.is_dir() else []
    same_model = []
    for path in candidates:
        meta = read_json(path / META)
        if (meta.get("model"), meta.get("precision"), meta.get("input_shape")) == (
            model,
            precision,
            list(input_shape),
        ):
            same_model.append((path, meta))
    if not same_model:
        choice.messages.append(
            f"no shipped tuning database for model {model!r}, {precision}, input "
            f"{list(input_shape)} (shipped: {', '.join(p.name for p in candidates) or 'none'})"
        )
        return choice
    for path, meta in same_model:
        if meta.get("isa") == isa and choice.path is None:
            choice.path, choice.meta = path, meta
            choice.messages.append(
                f"shipped tuning database {path.name} ({meta.get('trials')} trials on "
                f"{meta.get('tuned_on')}) matches this target ({describe_target(target)}, "
                f"{isa})"
            )
        else:
            choice.messages.append(
                f"shipped tuning database {path.name} is for {meta.get('isa')} CPUs; this "
                f"target ({describe_target(target)}) is "
                f"{isa or 'neither AVX2 nor AVX-512 VNNI'}: ignored"
            )
    return choice


def copy_database(source: Path, work_dir: Path) -> None:
    """Put the shipped database's two tables, unpacked, into `work_dir` (MetaSchedule's
    JSONDatabase reads and extends them there)."""
    from .tuning import DATABASE_FILES

    for name in DATABASE_FILES:
        with gzip.open(source / f"{name}.gz", "rb") as packed, open(work_dir / name, "wb") as out:
            shutil.copyfileobj(packed, out)


def coverage(mod, target, work_dir: Path) -> tuple[int, int]:
    """(convolution tasks of the fused module that the database in `work_dir` holds, all its
    convolution tasks), workloads compared as compile.module_equality compares them."""
    from tvm.s_tir import meta_schedule as ms

    from .compile import module_equality, open_database
    from .tuning import is_convolution_task

    equality = module_equality(target)
    database = open_database(work_dir, target)
    tasks = [
        task
        for task in ms.relax_integration.extract_tasks(mod, target, module_equality=equality)
        if is_convolution_task(task.task_name)
    ]
    held = sum(database.has_workload(task.dispatched[0]) for task in tasks)
    return held, len(tasks)


def prune_into(work_dir: Path, destination: Path, target) -> None:
    """Write the best record of each workload of `work_dir`'s database to `destination`,
    gzipped (what is shipped: each workload is a base64 TIR graph of ~170 KB that packs ~20x)."""
    from .compile import open_database
    from .tuning import DATABASE_FILES

    destination.mkdir(parents=True, exist_ok=True)
    open_database(work_dir, target).dump_pruned(open_database(destination, target))
    for name in DATABASE_FILES:
        table = destination / name
        # mtime=0: the same records give the same bytes
        with open(table, "rb") as raw, open(destination / f"{name}.gz", "wb") as out:
            with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as packed:
                shutil.copyfileobj(raw, packed)
        table.unlink()
