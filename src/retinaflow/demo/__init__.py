"""The embedded offline demo, kept apart from the benchmark's own modules.

`dataset`: the synthetic shape set (the demo's evaluation, calibration and training splits, in
the openimages-mlperf.json conventions). `training`: how the shipped demo weights
(resources/demo/retinanet_demo.pt) were trained, and their val mAP through `evaluate`.
The benchmark needs neither: with OpenImages and the MLPerf weights, nothing here runs.
"""
