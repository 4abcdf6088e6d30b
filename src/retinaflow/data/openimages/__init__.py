"""OpenImages v6, MLPerf subset, in the MLPerf layout: one module per job.

- settings: what a run asks for (source, folders, URLs, download settings), one dataclass;
- splits: validation and calibration, and where each one's files live;
- tables: the CSVs (fetch, box table, class map) and the class and calibration lists;
- selection: which images of a split are used (eligible images, seeded subset);
- mlperf_json: image sizes and openimages-mlperf.json, built by MLCommons' rules;
- direct_source, fiftyone_source (+ fiftyone_dataset), local_source: one fetcher per source,
  each taking the split as an argument;
- prepare: the workflow's entry point, fetch then publish into the DAG's layout.

Nothing is imported here, so that importing one module does not import them all.
"""
