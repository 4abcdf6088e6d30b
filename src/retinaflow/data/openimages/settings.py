"""What an OpenImages run asks for, as one object: every source receives the same one, so a
download setting cannot reach one source and miss another."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .splits import Split


@dataclass(frozen=True)
class DownloadSettings:
    """How files are downloaded: parallel threads, retries after a transient failure, and the
    seconds a connection may stay silent."""

    workers: int = 16
    retries: int = 4
    timeout: float = 60.0

    @classmethod
    def from_config(cls, section: Mapping | None) -> DownloadSettings:
        """From the config's download section (keys workers, retries, timeout_s)."""
        section = section or {}
        return cls(
            workers=section.get("workers", cls.workers),
            retries=section.get("retries", cls.retries),
            timeout=section.get("timeout_s", cls.timeout),
        )


@dataclass(frozen=True)
class SourceUrls:
    """Where the box CSV, the class map and the image bucket are; None: the split's default.
    Each may also be a local path (a file fetched by hand)."""

    boxes: str | None = None
    class_map: str | None = None
    images: str | None = None

    @classmethod
    def from_config(cls, section: Mapping | None) -> SourceUrls:
        """From the config's urls section; an empty value means the default."""
        return cls(**{key: value or None for key, value in (section or {}).items()})

    def or_defaults(self, defaults: SourceUrls) -> SourceUrls:
        """These URLs, each missing one taken from `defaults`."""
        return SourceUrls(
            **{f.name: getattr(self, f.name) or getattr(defaults, f.name) for f in fields(self)}
        )


@dataclass(frozen=True)
class OpenImagesSettings:
    """Where an OpenImages split comes from and how it is fetched: everything but the split.

    source: direct | fiftyone | local. cache_root: where direct and fiftyone leave the split in
    the MLPerf layout, kept across runs. local_root: the MLPerf-layout folder source local
    checks. zoo_dir: fiftyone's zoo folder (None: fiftyone's own). max_images, seed: a seeded
    subset of a split chosen from its box CSV. config_prefix: the config section that error
    messages name (None: the split's).
    """

    source: str = "direct"
    cache_root: str | os.PathLike | None = None
    local_root: str | os.PathLike | None = None
    zoo_dir: str | os.PathLike | None = None
    urls: SourceUrls = field(default_factory=SourceUrls)
    download: DownloadSettings = field(default_factory=DownloadSettings)
    max_images: int | None = None
    seed: int = 42
    config_prefix: str | None = None

    def prefix(self, split: Split) -> str:
        """The config section that messages about `split` name."""
        return self.config_prefix or split.config_prefix

    def urls_for(self, split: Split) -> SourceUrls:
        """The URLs to fetch `split` from: those set here, else the split's defaults."""
        return self.urls.or_defaults(split.default_urls)

    def cache_dir(self) -> Path:
        """cache_root as a Path; the sources that download need one."""
        if self.cache_root is None:
            raise ValueError(
                "OpenImagesSettings.cache_root is not set: the direct and fiftyone sources "
                "download into it"
            )
        return Path(self.cache_root)
