"""Run Snakemake on the one-node test SLURM of tests/cluster/{install,start,stop}.sh.

Used by tests/test_slurm_cluster.py and by the end-to-end DAG tests:

    with local_slurm_cluster() as cluster:
        run = run_snakemake_on_cluster(workdir, ["results/map_onnx.json"], "config/demo.yaml")
        run.check()
        assert {job.rule for job in run.jobs} >= {"infer_onnx", "score_detections"}

A cluster run uses `--profile profiles/slurm --profile profiles/slurm-test` (the users' profile,
then the test cluster's overrides); a local run uses `--profile profiles/local`. Both run
`python -m snakemake` with this interpreter, which the SLURM jobs re-invoke on the node.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLUSTER_DIR = REPO / "tests" / "cluster"
SMOKE_SNAKEFILE = CLUSTER_DIR / "smoke" / "Snakefile"
LOCAL_PROFILES = (REPO / "profiles" / "local",)
SLURM_PROFILES = (REPO / "profiles" / "slurm", REPO / "profiles" / "slurm-test")

# Job states after which a SLURM job will not change any more.
FINAL_STATES = {
    "BOOT_FAIL",
    "CANCELLED",
    "COMPLETED",
    "DEADLINE",
    "FAILED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "TIMEOUT",
}


class ClusterError(RuntimeError):
    """The test cluster could not be installed, started or queried."""


@dataclass(frozen=True)
class LocalCluster:
    """A running test cluster: its state dir, config, and how long it took to start."""

    state_dir: Path
    start_seconds: float

    @property
    def slurm_conf(self) -> Path:
        return self.state_dir / "slurm.conf"

    def env(self) -> dict[str, str]:
        """This process's environment plus SLURM_CONF, for SLURM clients and Snakemake."""
        return {**os.environ, "SLURM_CONF": str(self.slurm_conf)}

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the daemons' logs, for error messages."""
        parts = []
        for log in ("log/slurmctld.log", "log/slurmd.log", "munge/munged.log"):
            path = self.state_dir / log
            text = path.read_text(errors="replace") if path.exists() else "(missing)\n"
            parts.append(f"----- {path}\n" + "".join(text.splitlines(True)[-lines:]))
        return "".join(parts)


@dataclass(frozen=True)
class SlurmJob:
    """One SLURM job as `scontrol show job` reports it."""

    job_id: str
    rule: str
    wildcards: str
    state: str
    exit_code: str
    tres_per_job: str
    node: str
    stdout: Path | None
    fields: dict[str, str] = field(repr=False)

    @property
    def gpus(self) -> int:
        """GPUs requested with --gpus (TresPerJob=gres:gpu:N), 0 if none."""
        match = re.search(r"gpu:(?:[^,:]+:)?(\d+)", self.tres_per_job)
        return int(match.group(1)) if match else 0


@dataclass
class SnakemakeRun:
    """A finished `snakemake` invocation; `jobs` holds its SLURM jobs (empty for a local run)."""

    command: list[str]
    workdir: Path
    returncode: int
    seconds: float
    output: str
    run_id: str | None = None
    jobs: list[SlurmJob] = field(default_factory=list)

    def check(self) -> SnakemakeRun:
        """Raise AssertionError with the end of Snakemake's output unless it succeeded."""
        if self.returncode != 0:
            tail = "\n".join(self.output.splitlines()[-60:])
            raise AssertionError(
                f"snakemake exited with {self.returncode} after {self.seconds:.1f}s in "
                f"{self.workdir}\ncommand: {' '.join(self.command)}\n--- output (end) ---\n{tail}"
            )
        return self

    def jobs_of(self, rule: str) -> list[SlurmJob]:
        return [job for job in self.jobs if job.rule == rule]


def _require_root() -> None:
    if os.geteuid() != 0:
        raise ClusterError(
            "the SLURM test cluster needs root (it installs Debian packages and starts munged, "
            "slurmctld and slurmd); run the tests as root, as CI does"
        )


def install_slurm() -> None:
    """Install slurmctld, slurmd, slurm-client and munge with apt (a no-op when present)."""
    _require_root()
    proc = subprocess.run(
        [str(CLUSTER_DIR / "install.sh")], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise ClusterError(
            f"tests/cluster/install.sh failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"
        )


@contextlib.contextmanager
def local_slurm_cluster(
    state_dir: Path | None = None, *, start_timeout: int = 60
) -> Iterator[LocalCluster]:
    """Install and start the test cluster; stop its daemons on exit, also after an error.

    state_dir defaults to a new /tmp/retinaflow-slurm-* directory (kept afterwards: it holds the
    daemons' logs). It must be enterable by the users slurm and munge, which rules out pytest's
    tmp_path (mode 700).
    """
    install_slurm()
    if state_dir is None:
        state_dir = Path(tempfile.mkdtemp(prefix="retinaflow-slurm-", dir="/tmp"))
    state_dir.mkdir(parents=True, exist_ok=True)
    state_dir.chmod(0o755)
    try:
        started = time.monotonic()
        proc = subprocess.run(
            [str(CLUSTER_DIR / "start.sh"), str(state_dir)],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "SLURM_START_TIMEOUT": str(start_timeout)},
        )
        start_seconds = time.monotonic() - started
        if proc.returncode != 0:
            raise ClusterError(
                f"tests/cluster/start.sh {state_dir} failed (exit {proc.returncode}):\n"
                f"{proc.stdout}{proc.stderr}"
            )
        yield LocalCluster(state_dir=state_dir, start_seconds=start_seconds)
    finally:
        stop = subprocess.run(
            [str(CLUSTER_DIR / "stop.sh"), str(state_dir)],
            capture_output=True,
            text=True,
            check=False,
        )
        if stop.returncode != 0:
            print(f"tests/cluster/stop.sh failed:\n{stop.stdout}{stop.stderr}", file=sys.stderr)


def _default_snakefile() -> Path:
    for candidate in (REPO / "Snakefile", REPO / "workflow" / "Snakefile"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"no Snakefile in {REPO} or {REPO / 'workflow'}")


def run_snakemake(
    workdir: Path | str,
    targets: Sequence[str],
    configfile: Path | str | None = None,
    *,
    profiles: Sequence[Path] = LOCAL_PROFILES,
    snakefile: Path | str | None = None,
    extra_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    timeout: float = 3600,
) -> SnakemakeRun:
    """Run `python -m snakemake` on targets in workdir with the given profiles."""
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    snakefile = Path(snakefile).resolve() if snakefile else _default_snakefile()
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile)]
    command += ["--directory", str(workdir)]
    for profile in profiles:
        command += ["--profile", str(profile)]
    if configfile is not None:
        command += ["--configfile", str(Path(configfile).resolve())]
    # "--": --configfile and other list options would swallow the targets
    command += [*extra_args, "--", *targets]
    started = time.monotonic()
    try:
        proc = subprocess.run(
            command,
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
        returncode, output = proc.returncode, proc.stdout
    except subprocess.TimeoutExpired as err:
        returncode = -1
        output = err.stdout or ""
        if isinstance(output, bytes):  # TimeoutExpired keeps bytes even with text=True
            output = output.decode(errors="replace")
        output += f"\n(harness: snakemake killed after {timeout:.0f}s)"
    return SnakemakeRun(
        command=command,
        workdir=workdir,
        returncode=returncode,
        seconds=time.monotonic() - started,
        output=output,
    )


def run_snakemake_locally(
    workdir: Path | str,
    targets: Sequence[str],
    configfile: Path | str | None = None,
    **kwargs,
) -> SnakemakeRun:
    """Run the DAG as local processes through profiles/local (the reference run)."""
    return run_snakemake(workdir, targets, configfile, profiles=LOCAL_PROFILES, **kwargs)


def run_snakemake_on_cluster(
    workdir: Path | str,
    targets: Sequence[str],
    configfile: Path | str | None = None,
    *,
    slurm_conf: Path | str | None = None,
    snakefile: Path | str | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = 3600,
) -> SnakemakeRun:
    """Run the DAG through profiles/slurm (+ profiles/slurm-test) on the test cluster.

    slurm_conf defaults to $SLURM_CONF (LocalCluster.slurm_conf). The returned run lists its
    SLURM jobs (found by the run ID the plugin logs, which is every job's name), with rule,
    state, exit code, TresPerJob (gres:gpu:N for a rule with resources gpu=N) and log path.
    Call .check() to fail on a non-zero exit.
    """
    slurm_conf = str(slurm_conf or os.environ.get("SLURM_CONF") or "")
    if not slurm_conf or not Path(slurm_conf).is_file():
        raise ClusterError(
            f"no slurm.conf at {slurm_conf!r}: start the cluster (local_slurm_cluster) and pass "
            "slurm_conf=cluster.slurm_conf or set SLURM_CONF"
        )
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError as err:
        raise ClusterError(
            f"snakemake-executor-plugin-slurm is not installed for {sys.executable}: "
            "pip install -r requirements.txt"
        ) from err
    env = {**os.environ, "SLURM_CONF": slurm_conf}
    run = run_snakemake(
        workdir,
        targets,
        configfile,
        profiles=SLURM_PROFILES,
        snakefile=snakefile,
        extra_args=extra_args,
        env=env,
        timeout=timeout,
    )
    match = re.search(r"SLURM run ID: (\S+)", run.output)
    if match:
        run.run_id = match.group(1)
        run.jobs = slurm_jobs(run.run_id, env)
    return run


def _parse_scontrol_line(line: str) -> dict[str, str]:
    """Split one line of `scontrol -o show job` into its Key=Value fields."""
    pairs = re.findall(r"(?:^|\s)([A-Za-z][\w:/]*)=(.*?)(?=\s+[A-Za-z][\w:/]*=|\s*$)", line)
    return dict(pairs)


def slurm_jobs(run_id: str, env: dict[str, str]) -> list[SlurmJob]:
    """The SLURM jobs named run_id (the plugin names every job of a run so), oldest first.

    Needs finished jobs still in the controller's memory: the test cluster keeps them an hour
    (MinJobAge=3600) since there is no accounting database for sacct.
    """
    listing = subprocess.run(
        ["squeue", "--noheader", "--states=all", f"--name={run_id}", "--format=%i"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if listing.returncode != 0:
        raise ClusterError(f"squeue failed: {listing.stderr.strip()}")
    jobs = []
    for job_id in sorted(listing.stdout.split(), key=int):
        shown = subprocess.run(
            ["scontrol", "--oneliner", "show", "job", job_id],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if shown.returncode != 0:
            raise ClusterError(f"scontrol show job {job_id} failed: {shown.stderr.strip()}")
        fields = _parse_scontrol_line(shown.stdout.strip())
        comment = fields.get("Comment", "")  # rule_<rule> or rule_<rule>_wildcards_<wildcards>
        rule, _, wildcards = comment.removeprefix("rule_").partition("_wildcards_")
        stdout = fields.get("StdOut")
        jobs.append(
            SlurmJob(
                job_id=job_id,
                rule=rule,
                wildcards=wildcards,
                state=fields.get("JobState", ""),
                exit_code=fields.get("ExitCode", ""),
                tres_per_job=fields.get("TresPerJob", ""),
                node=fields.get("NodeList", ""),
                stdout=Path(stdout) if stdout and stdout != "(null)" else None,
                fields=fields,
            )
        )
    return jobs


def wait_for_job(job_id: str, env: dict[str, str], timeout: float = 60) -> dict[str, str]:
    """Poll `scontrol show job` until the job reaches a final state; return its fields."""
    deadline = time.monotonic() + timeout
    fields: dict[str, str] = {}
    while time.monotonic() < deadline:
        shown = subprocess.run(
            ["scontrol", "--oneliner", "show", "job", job_id],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if shown.returncode == 0:
            fields = _parse_scontrol_line(shown.stdout.strip())
            if fields.get("JobState") in FINAL_STATES:
                return fields
        time.sleep(0.5)
    raise ClusterError(
        f"job {job_id} not finished after {timeout:.0f}s (last state: "
        f"{fields.get('JobState', 'unknown')}, reason: {fields.get('Reason', '?')})"
    )


def remove_state_dir(cluster: LocalCluster) -> None:
    """Delete a stopped cluster's state dir (config, logs); only call after the daemons stopped."""
    shutil.rmtree(cluster.state_dir, ignore_errors=True)
