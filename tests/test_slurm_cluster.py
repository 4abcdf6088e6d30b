"""Cluster submission through profiles/slurm, proven on a real one-node SLURM on this machine.

The fixture installs (apt) and starts munged, slurmctld and slurmd (tests/cluster/start.sh) and
stops them by pid afterwards, also when a test fails. Needs root and a reachable apt mirror, as
in CI; without them the tests fail with the reason, they are never skipped.
"""

import filecmp
import json
import shutil
import subprocess

import pytest

from .cluster import harness


@pytest.fixture(scope="module")
def slurm_cluster(request):
    failed_before = request.session.testsfailed
    try:
        context = harness.local_slurm_cluster()
        cluster = context.__enter__()
    except harness.ClusterError as err:
        pytest.fail(f"could not start the test SLURM cluster: {err}", pytrace=False)
    print(f"\nSLURM test cluster up in {cluster.start_seconds:.1f}s, state in {cluster.state_dir}")
    try:
        yield cluster
    finally:
        context.__exit__(None, None, None)
        if request.session.testsfailed == failed_before:
            harness.remove_state_dir(cluster)
        else:
            print(f"\nSLURM state and daemon logs kept in {cluster.state_dir}")


def sbatch(cluster, *args):
    """Submit a batch job; return its id."""
    proc = subprocess.run(
        ["sbatch", "--parsable", *args],
        capture_output=True,
        text=True,
        env=cluster.env(),
        check=False,
    )
    assert proc.returncode == 0, f"sbatch {' '.join(args)} failed: {proc.stderr}"
    return proc.stdout.strip().split(";")[0]


def read_env_file(path):
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def test_sbatch_runs_jobs_and_hands_out_fake_gpus(slurm_cluster):
    jobs_dir = slurm_cluster.state_dir / "jobs"
    jobs_dir.mkdir(exist_ok=True)
    script = (
        'echo "JOB_ID=$SLURM_JOB_ID"; '
        'env | grep -E "^(CUDA_VISIBLE_DEVICES|SLURM_GPUS_ON_NODE)=" || true'
    )
    plain = sbatch(slurm_cluster, f"--output={jobs_dir}/plain.out", "--wrap", script)
    gpu = sbatch(slurm_cluster, "--gpus=1", f"--output={jobs_dir}/gpu.out", "--wrap", script)

    for job_id, name in ((plain, "plain"), (gpu, "gpu")):
        fields = harness.wait_for_job(job_id, slurm_cluster.env())
        assert fields["JobState"] == "COMPLETED", (fields, slurm_cluster.log_tail())
        assert fields["ExitCode"] == "0:0", fields
        seen = read_env_file(jobs_dir / f"{name}.out")
        assert seen["JOB_ID"] == job_id
        if name == "gpu":
            assert fields.get("TresPerJob") == "gres:gpu:1", fields
            assert seen.get("SLURM_GPUS_ON_NODE") == "1", seen
            assert seen.get("CUDA_VISIBLE_DEVICES") in {"0", "1"}, seen
        else:
            assert "CUDA_VISIBLE_DEVICES" not in seen, seen

    # The node has two GPUs: a request for three cannot be met and is refused at submission.
    too_many = subprocess.run(
        ["sbatch", "--gpus=3", "--wrap", "true"],
        capture_output=True,
        text=True,
        env=slurm_cluster.env(),
        check=False,
    )
    assert too_many.returncode != 0
    assert "Requested node configuration is not available" in too_many.stderr


@pytest.mark.slow
def test_smoke_dag_runs_as_slurm_jobs_and_matches_a_local_run(slurm_cluster, tmp_path):
    targets = ["results/sum_of_squares.txt"]
    on_slurm = harness.run_snakemake_on_cluster(
        tmp_path / "slurm",
        targets,
        slurm_conf=slurm_cluster.slurm_conf,
        snakefile=harness.SMOKE_SNAKEFILE,
        timeout=600,
    ).check()
    local = harness.run_snakemake_locally(
        tmp_path / "local", targets, snakefile=harness.SMOKE_SNAKEFILE, timeout=300
    ).check()
    print(
        f"\nsmoke DAG (3 jobs): {on_slurm.seconds:.1f}s through profiles/slurm, "
        f"{local.seconds:.1f}s through profiles/local "
        f"(cluster start: {slurm_cluster.start_seconds:.1f}s)"
    )

    # Every rule ran as its own, successful SLURM job of this run, on the test node.
    assert on_slurm.run_id, on_slurm.output
    rules = {"make_numbers", "square_numbers", "sum_squares"}
    assert sorted(job.rule for job in on_slurm.jobs) == sorted(rules), on_slurm.jobs
    for job in on_slurm.jobs:
        assert job.state == "COMPLETED" and job.exit_code == "0:0", job
        assert job.stdout is not None and job.stdout.is_file(), f"no SLURM log kept for {job}"
        evidence = read_env_file(on_slurm.workdir / "evidence" / f"{job.rule}.env")
        assert evidence.get("SLURM_JOB_ID") == job.job_id, (job, evidence)
        assert evidence.get("SLURMD_NODENAME") == job.node, (job, evidence)

    # Only the rule with resources gpu=1 was submitted with --gpus=1, and it got a fake GPU.
    assert {job.rule: job.gpus for job in on_slurm.jobs} == {
        "make_numbers": 0,
        "square_numbers": 1,
        "sum_squares": 0,
    }
    gpu_env = read_env_file(on_slurm.workdir / "evidence" / "square_numbers.env")
    assert gpu_env.get("SLURM_GPUS_ON_NODE") == "1", gpu_env
    assert gpu_env.get("CUDA_VISIBLE_DEVICES") in {"0", "1"}, gpu_env

    # The local run saw no SLURM, and both runs produced identical data.
    for rule in rules:
        assert (local.workdir / "evidence" / f"{rule}.env").read_text() == ""
    for output in ("data/numbers.txt", "data/squares.txt", "results/sum_of_squares.txt"):
        assert filecmp.cmp(on_slurm.workdir / output, local.workdir / output, shallow=False)
    assert (on_slurm.workdir / "results/sum_of_squares.txt").read_text() == "2870\n"


@pytest.mark.slow
def test_demo_dag_through_profiles_slurm_matches_the_local_run(slurm_cluster, demo_run, tmp_path):
    """The demo DAG submitted with --profile profiles/slurm: every job a SLURM job, the GPU
    rule on the fake-GPU node, and the same mAP file as the local run of conftest's demo_run."""
    local_dir, _ = demo_run
    on_slurm = harness.run_snakemake_on_cluster(
        tmp_path / "slurm",
        ["results/map_onnx.json"],
        harness.REPO / "config" / "demo.yaml",
        slurm_conf=slurm_cluster.slurm_conf,
        timeout=1200,
    ).check()
    print(f"\ndemo DAG to results/map_onnx.json: {on_slurm.seconds:.1f}s through profiles/slurm")

    rules = {"make_demo_dataset", "fetch_weights", "export_head", "simplify_head", "infer"}
    rules |= {"score_detections"}
    assert sorted(job.rule for job in on_slurm.jobs) == sorted(rules), on_slurm.jobs
    for job in on_slurm.jobs:
        assert job.state == "COMPLETED" and job.exit_code == "0:0", job
        assert job.stdout is not None and job.stdout.is_file(), job
    assert {job.rule: job.gpus for job in on_slurm.jobs}["infer"] == 1  # resources gpu=1
    assert all(job.gpus == 0 for job in on_slurm.jobs if job.rule != "infer")

    for output in ("results/map_onnx.json", "preds/demo/onnx/detections.json"):
        assert filecmp.cmp(on_slurm.workdir / output, local_dir / output, shallow=False), output


@pytest.mark.slow
def test_inference_shards_run_as_slurm_jobs_and_gather_the_unsharded_bytes(
    slurm_cluster, demo_run, tmp_path
):
    """infer.shards: 2 through profiles/slurm over a copy of conftest's demo_run (so only
    inference runs): each shard its own SLURM job with its own GPU, the gather a CPU job, and
    detections.json byte-identical to the local, unsharded run's (test_workflow_e2e compares
    the mAP files)."""
    local_dir, _ = demo_run
    workdir = tmp_path / "slurm-shards"
    shutil.copytree(local_dir, workdir, symlinks=True)
    shards = tmp_path / "shards.yaml"
    shards.write_text("infer:\n  shards: 2\n")
    on_slurm = harness.run_snakemake_on_cluster(
        workdir,
        ["preds/demo/onnx/detections.json"],
        slurm_conf=slurm_cluster.slurm_conf,
        extra_args=["--configfile", str(harness.REPO / "config" / "demo.yaml"), str(shards)],
        timeout=600,
    ).check()
    print(f"\ninfer.shards 2 on SLURM over demo_run: {on_slurm.seconds:.1f}s")

    rules = sorted(job.rule for job in on_slurm.jobs)
    assert rules == ["infer_gather", "infer_shard", "infer_shard"], rules
    for job in on_slurm.jobs:
        assert job.state == "COMPLETED" and job.exit_code == "0:0", job
        assert job.stdout is not None and job.stdout.is_file(), job
    shard_jobs = on_slurm.jobs_of("infer_shard")
    assert len({job.job_id for job in shard_jobs}) == 2
    assert sorted(job.wildcards.rsplit("_", 1)[-1] for job in shard_jobs) == ["1-of-2", "2-of-2"]
    assert {job.rule: job.gpus for job in on_slurm.jobs} == {
        "infer_shard": 1,  # profiles/slurm: a GPU each
        "infer_gather": 0,
    }

    output = "preds/demo/onnx/detections.json"
    assert filecmp.cmp(workdir / output, local_dir / output, shallow=False)
    stats = json.loads((workdir / "preds/demo/onnx/stats.json").read_text())
    assert [s["shard"] for s in stats["shards"]] == ["1-of-2", "2-of-2"]
