"""retinaflow: the MLPerf RetinaNet benchmark as a library; the Snakemake workflow calls it."""

__version__ = "0.1.0"
