"""What an OpenImages run asks for, as one object: every source receives the same one, so a
download setting cannot reach one source and miss another. The values are the config's (the
dataset's section, or the calibration's fetch section): no defaults here."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import DatasetError, SettingError, ref

if TYPE_CHECKING:
    from .splits import Split


@dataclass(frozen=True)
class DownloadSettings:
    """How files are downloaded: parallel threads, retries after a transient failure, and the
    seconds a connection may stay silent."""

    workers: int
    retries: int
    timeout: float

    @classmethod
    def from_config(cls, section: Mapping) -> DownloadSettings:
        """From the config's download section (keys workers, retries, timeout_s)."""
        return cls(
            workers=section["workers"], retries=section["retries"], timeout=section["timeout_s"]
        )


@dataclass(frozen=True)
class SourceUrls:
    """Where the box CSV, the class map and the image bucket are (the config's urls section);
    None: not given, which the sources that download refuse. Each may also be a local path (a
    file fetched by hand)."""

    boxes: str | None = None
    class_map: str | None = None
    images: str | None = None

    @classmethod
    def from_config(cls, section: Mapping) -> SourceUrls:
        """From the config's urls section (keys boxes, class_map, images); empty: not given."""
        return cls(**{f.name: section[f.name] or None for f in fields(cls)})


@dataclass(frozen=True, kw_only=True)
class OpenImagesSettings:
    """Where an OpenImages split comes from and how it is fetched: everything but the split.

    source: direct | fiftyone | local. download, urls: how and from where direct and fiftyone
    download (local needs neither). cache_root: where direct and fiftyone leave the split in
    the MLPerf layout, kept across runs. local_root: the MLPerf-layout folder source local
    checks. zoo_dir: fiftyone's zoo folder (None: fiftyone's own). max_images, seed: a seeded
    subset of a split chosen from its box CSV (None: the whole split; a seed is needed with
    max_images). Errors name these fields as settings (errors.ref: "source", "urls.boxes"),
    which the workflow resolves to its config keys. None only where it means "not needed".
    """

    source: str
    download: DownloadSettings | None = None
    urls: SourceUrls = field(default_factory=SourceUrls)
    cache_root: str | os.PathLike | None = None
    local_root: str | os.PathLike | None = None
    zoo_dir: str | os.PathLike | None = None
    max_images: int | None = None
    seed: int | None = None

    def __post_init__(self):
        if self.max_images is not None and self.seed is None:
            raise SettingError("seed", None, f"a seed is needed to draw {ref('max_images')}")

    def urls_for(self, split: Split) -> SourceUrls:
        """The URLs to fetch `split` from; a DatasetError naming the key if one is not set."""
        missing = [f.name for f in fields(self.urls) if not getattr(self.urls, f.name)]
        if missing:
            names = ", ".join(ref(f"urls.{name}") for name in missing)
            raise DatasetError(
                f"{names} not set: give the URL, or the path of the file fetched by hand "
                f"(config/config.yaml has OpenImages' own)"
            )
        return self.urls

    def downloads(self) -> DownloadSettings:
        """The download settings; the sources that download need them."""
        if self.download is None:
            raise ValueError(
                "OpenImagesSettings.download is not set: the direct and fiftyone sources "
                "download with it"
            )
        return self.download

    def cache_dir(self) -> Path:
        """cache_root as a Path; the sources that download need one."""
        if self.cache_root is None:
            raise ValueError(
                "OpenImagesSettings.cache_root is not set: the direct and fiftyone sources "
                "download into it"
            )
        return Path(self.cache_root)
