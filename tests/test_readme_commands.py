"""Every command the README shows runs, at least as a dry run, so that a broken example fails CI.

`snakemake` lines run as written, with `-n`, from a folder laid out like the project's root (a
`--report FILE` line, which renders finished results, as the dry run of its targets);
`make` lines run as `make -n`; the benchmarks (`python -m retinaflow.benchmarks KIND`) and
the tuning script run with `--dry-run` (their plan, no timing); shell lines that make a file
(`printf ... > mine.yaml`) run before the lines after them. A command of a kind this test does
not know fails it (so does an unknown benchmark), so a new README example gets a runner here
before it lands.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from retinaflow.benchmarks.__main__ import KINDS as BENCHMARK_KINDS

ROOT = Path(__file__).resolve().parents[1]
DRY_RUN_SCRIPTS = ("scripts/tune_shipped_database.py",)
BENCHMARKS = ("-m", "retinaflow.benchmarks")  # `python -m retinaflow.benchmarks KIND ...`
PROJECT_ENTRIES = ("Snakefile", "workflow", "config", "resources", "profiles", "scripts")


def readme_blocks() -> list[list[str]]:
    """The commands of each ```bash block, comments stripped, in order."""
    text = (ROOT / "README.md").read_text()
    blocks = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        lines = []
        for line in block.splitlines():
            command = re.split(r"\s+#\s", " " + line, maxsplit=1)[0].strip()
            if command:
                lines.append(command)
        blocks.append(lines)
    return blocks


COMMANDS = [(i, line) for i, block in enumerate(readme_blocks()) for line in block]


def test_the_readme_shows_commands():
    assert any(line.startswith("make demo") for _, line in COMMANDS)
    assert sum(line.startswith("snakemake") for _, line in COMMANDS) >= 8


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory):
    """A working directory that looks like a fresh clone's root (links to the project)."""
    root = tmp_path_factory.mktemp("readme")
    for name in PROJECT_ENTRIES:
        (root / name).symlink_to(ROOT / name)
    return root


def _run(argv: list[str], cwd: Path, shell: bool = False) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    return subprocess.run(
        argv if not shell else argv[0],
        cwd=cwd,
        shell=shell,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def _runner(line: str, cwd: Path) -> subprocess.CompletedProcess | None:
    words = shlex.split(line)
    if words[0] == "source":  # the venv's activation: the test already runs inside it
        return None
    if words[0] == "snakemake":
        if "--report" in words:  # the report of finished jobs: the plan of the DAG it reports
            at = words.index("--report")
            words = words[:at] + words[at + 2 :]
        return _run([sys.executable, "-m", "snakemake", *words[1:], "-n"], cwd)
    if words[0] == "make":
        return _run(["make", "-n", *words[1:]], ROOT)
    # the scripts that time or tune for minutes: their plan (--dry-run)
    if words[0].endswith("/python") and tuple(words[1:3]) == BENCHMARKS:
        assert words[3:4] and words[3] in BENCHMARK_KINDS, f"unknown benchmark: {line}"
        return _run([sys.executable, *words[1:], "--dry-run"], ROOT)
    if words[0].endswith("/python") and words[1].startswith(DRY_RUN_SCRIPTS):
        return _run([sys.executable, *words[1:], "--dry-run"], ROOT)
    if words[0] == "printf" and ">" in words:
        return _run([line], cwd, shell=True)
    raise AssertionError(f"README command of an unknown kind, give it a runner here: {line}")


@pytest.mark.parametrize("block", sorted({i for i, _ in COMMANDS}), ids=lambda i: f"block{i}")
def test_readme_block_runs(block, project_copy):
    for index, line in COMMANDS:
        if index != block:
            continue
        proc = _runner(line, project_copy)
        if proc is None:
            continue
        output = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"README command failed: {line}\n{output[-3000:]}"
        if line.startswith("snakemake"):
            # a dry run that planned jobs, or found them all done: never an error
            assert "Job stats" in output or "Nothing to be done" in output, output[-2000:]
