"""Which images of a split are used: a fixed list (calibration), or the images holding a box of
the classes, optionally a seeded subset of them. Every source selects through here, so the same
settings pick the same images whichever source fetches them.

Unlike MLCommons' tool, a `max_images` subset is drawn WITHOUT replacement (its
np.random.choice draws duplicates, which then duplicate annotations).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ...errors import SettingError
from .splits import Split
from .tables import mlperf_calibration_list


def listed_images(split: Split, image_ids: Sequence[str] | None = None) -> list[str] | None:
    """The images fixed up front, sorted and unique: `image_ids` when given, else the split's
    list (calibration: MLPerf's 500); None for a split chosen from its box CSV."""
    if image_ids is None and not split.listed:
        return None
    return sorted(set(image_ids if image_ids is not None else mlperf_calibration_list()))


def eligible_images(table: pd.DataFrame, classes: Sequence[str]) -> list[str]:
    """Sorted ImageIDs holding at least one box of `classes` (24,781 in the full validation)."""
    return sorted(table.loc[table["DisplayName"].isin(set(classes)), "ImageID"].unique())


def select_images(
    image_ids: Sequence[str],
    max_images: int | None,
    seed: int,
) -> list[str]:
    """A seeded subset of `max_images` ids drawn WITHOUT replacement, sorted; all when None.

    The ids are sorted first, so the subset depends only on the set of ids and the seed.
    """
    ids = sorted(set(image_ids))
    if max_images is None:
        return ids
    if isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 1:
        raise SettingError("max_images", max_images, "a positive integer, or null for all")
    if max_images >= len(ids):
        return ids
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(ids), size=max_images, replace=False)
    return [ids[i] for i in sorted(picked)]


def selected_images(
    table: pd.DataFrame,
    classes: Sequence[str],
    max_images: int | None,
    seed: int,
) -> list[str]:
    """The images of a box table a split uses: the eligible ones, subset by max_images."""
    return select_images(eligible_images(table, classes), max_images, seed)
