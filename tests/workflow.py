"""Running the Snakemake workflow from tests: the CLI in a subprocess, as a user runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def write_config(path: Path, overrides: dict) -> Path:
    path.write_text(yaml.safe_dump(overrides))
    return path


def snakemake(workdir: Path, *args: str, configfiles=(), check=True, timeout=1200, demo=True):
    """Run snakemake on the project's Snakefile in `workdir`; the demo config comes first
    unless demo=False (then config/config.yaml, the default, is the base)."""
    base = [str(ROOT / "config" / "demo.yaml")] if demo else []
    configs = [*base, *map(str, configfiles)]
    cmd = [
        *SNAKEMAKE,
        "-s", str(ROOT / "Snakefile"),
        "--directory", str(workdir),
        "--cores", "2",
        *(["--configfile", *configs] if configs else []),
        *args,
    ]  # fmt: skip
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


def planned_jobs(workdir: Path, *targets: str, configfiles=()) -> dict[str, int]:
    """The jobs a dry run would execute, as {rule: count} (empty when nothing is to be done)."""
    proc = snakemake(workdir, "-n", "--quiet", "rules", "--", *targets, configfiles=configfiles)
    out = proc.stdout + proc.stderr
    if "Nothing to be done" in out:
        return {}
    table = out.split("Job stats:")[1].split("\n\n")[0]
    jobs = {}
    for line in table.splitlines():
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if match and match.group(1) != "total":
            jobs[match.group(1)] = int(match.group(2))
    return jobs
