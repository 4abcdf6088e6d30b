import shutil

import pytest

from .workflow import snakemake


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """One end-to-end run of the demo DAG in a fresh directory, shared by the DAG tests."""
    workdir = tmp_path_factory.mktemp("demo-run")
    proc = snakemake(workdir, "--", "results/map_onnx.json", "results/map_torch.json")
    yield workdir, proc
    shutil.rmtree(workdir, ignore_errors=True)
