"""Datasets in the openimages-mlperf.json conventions, and image preprocessing."""
