"""Downloads that happen once: resumed after a cut, retried with backoff, verified, and renamed
into place only when complete, so a file at its final path is always a whole, checked file.

Every function takes a `setting`: the name of the setting a user sets to point at a copy fetched
by hand (the rule layer maps it to its config key). Offline, the error names the URL and that
setting instead of hanging or retrying for minutes.
A "URL" may also be a local path or a file:// URL; it is then copied, with the same checks.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from PIL import Image
from tqdm import tqdm

from ..errors import ImageError, RetinaflowError, ref

CHUNK_SIZE = 1 << 16
USER_AGENT = "retinaflow-downloader/0.1"


class DownloadError(RetinaflowError):
    """A file could not be fetched (HTTP error, too many failed attempts, missing local copy)."""


class OfflineError(DownloadError):
    """The host cannot be reached at all: no point retrying, the user must provide the file."""


class ChecksumError(DownloadError):
    """A file is complete but its md5 is not the published one."""


class _Transient(Exception):
    """A failure worth another attempt: cut connection, 5xx, timeout, corrupt content."""


def md5sum(path: str | os.PathLike) -> str:
    """md5 hex digest of a file, read in chunks (weights files are ~150 MB)."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def part_path(dest: str | os.PathLike) -> Path:
    """Where an unfinished download of `dest` lives; it is renamed to `dest` when complete."""
    dest = Path(dest)
    return dest.with_name(dest.name + ".part")


def decode_check(path: str | os.PathLike) -> tuple[int, int]:
    """Fully decode an image (PIL load) and return its stored (width, height).

    A truncated or corrupt JPEG raises ImageError naming the file; headers alone would pass.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            return img.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        size_kb = path.stat().st_size / 1024 if path.exists() else 0
        raise ImageError(
            f"image {path} does not decode ({err}; {size_kb:.0f} KB on disk): "
            "delete it and rerun the dataset rule to fetch it again"
        ) from err


def download_file(
    url: str,
    dest: str | os.PathLike,
    *,
    setting: str,
    md5: str | None = None,
    validate: Callable[[Path], object] | None = None,
    retries: int,
    timeout: float,
    backoff: float = 0.5,
    progress: bool = False,
) -> Path:
    """Fetch `url` to `dest` unless `dest` is already there (and matches `md5` when given).

    Bytes go to `<dest>.part`, resumed with an HTTP Range request after a cut; the part is
    renamed to `dest` only once its length is complete, `validate(part)` passed (a decode
    check, say: failing it discards the part and fetches again) and its md5 matches. A wrong
    md5 moves the file to `<dest>.bad-md5` and raises ChecksumError with both sums.
    """
    dest = Path(dest)
    if dest.exists():
        if md5 is not None:
            _verify_md5(dest, md5, url, setting)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    local = _local_source(url)
    if local is None and urlparse(url).scheme not in ("http", "https"):
        raise DownloadError(
            f"{ref(setting)}: {url} is neither an http(s) URL nor a local path "
            "(the OpenImages bucket is https://open-images-dataset.s3.amazonaws.com)",
        )
    failures = 0
    while True:
        try:
            if local is not None:
                _copy_into(local, part, setting)
            else:
                _fetch_into(url, part, setting, timeout, progress)
            if validate is not None:
                _validate_part(part, validate)
            break
        except _Transient as err:
            failures += 1
            if failures > retries or local is not None:  # a local copy will not get better
                kept = f"; the partial file {part} is kept and a rerun resumes it"
                kept = kept if part.exists() else ""
                raise DownloadError(
                    f"could not download {url} after {failures} attempts ({err}){kept}. "
                    f"To use a copy fetched by hand, set {ref(setting)} to its path",
                ) from err
            time.sleep(backoff * 2 ** (failures - 1))
    if md5 is not None:
        _verify_md5(part, md5, url, setting, final=dest)
    os.replace(part, dest)
    return dest


def _local_source(url: str) -> Path | None:
    """The local path a "URL" names (plain path or file://), or None for a remote URL."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if len(parsed.scheme) <= 1:  # no scheme, or a Windows drive letter
        return Path(url)
    return None


def _copy_into(src: Path, part: Path, setting: str) -> None:
    if not src.is_file():
        raise DownloadError(
            f"local file {src} does not exist: fix {ref(setting)} "
            "(a URL, or the path of a copy fetched by hand)",
        )
    shutil.copyfile(src, part)


def _validate_part(part: Path, validate: Callable[[Path], object]) -> None:
    try:
        validate(part)
    except RetinaflowError as err:
        part.unlink(missing_ok=True)
        raise _Transient(f"the fetched file failed its check, fetching it again: {err}") from err


def _verify_md5(path: Path, expected: str, url: str, setting: str, final: Path | None = None):
    got = md5sum(path)
    if got == expected.lower():
        return
    final = final or path
    aside = final.with_name(final.name + ".bad-md5")
    os.replace(path, aside)
    raise ChecksumError(
        f"{final} has md5 {got}, expected {expected} (from {url}); moved it to {aside}. "
        f"Rerun to download it again, or set {ref(setting)} to a good copy",
    )


_OFFLINE_ERRNOS = {101, 113}  # ENETUNREACH, EHOSTUNREACH


def _is_offline(reason: object) -> bool:
    """A connect failure that says "no route to this host" rather than "try again"."""
    if isinstance(reason, socket.gaierror | ConnectionRefusedError):
        return True
    return isinstance(reason, OSError) and reason.errno in _OFFLINE_ERRNOS


def _fetch_into(url: str, part: Path, setting: str, timeout: float, progress: bool) -> None:
    """One attempt: append to `part` from where it stops (Range), or start it over."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        err.close()
        if err.code == 416 and have:
            if err.headers.get("Content-Range", "").strip() == f"bytes */{have}":
                return  # the part was already whole: a run died between last byte and rename
            part.unlink()
            raise _Transient("the server refused to resume (HTTP 416); starting over") from err
        if err.code in (408, 425, 429) or err.code >= 500:
            raise _Transient(f"HTTP {err.code} {err.reason}") from err
        raise DownloadError(
            f"{url} answered HTTP {err.code} {err.reason}: check the URL in "
            f"{ref(setting)}, or set it to the path of a copy fetched by hand",
        ) from err
    except urllib.error.URLError as err:
        if _is_offline(err.reason):
            raise OfflineError(
                f"cannot reach {url} ({err.reason}): no network here? Fetch the file by hand "
                f"and set {ref(setting)} to its path",
            ) from err
        raise _Transient(f"connection failed: {err.reason}") from err
    except (OSError, http.client.HTTPException) as err:
        raise _Transient(f"no answer: {err!r}") from err
    with response:
        start, total = _content_range(response, have)
        if start != have:
            part.unlink(missing_ok=True)
            if start != 0:
                raise _Transient(f"server resumed at byte {start}, not {have}; starting over")
        mode = "ab" if start else "wb"
        bar = tqdm(
            total=total,
            initial=start,
            unit="B",
            unit_scale=True,
            desc=Path(urlparse(url).path).name,
            file=sys.stderr,
            disable=not progress,
            mininterval=1.0,
        )
        try:
            with open(part, mode) as f, bar:
                while chunk := response.read(CHUNK_SIZE):
                    f.write(chunk)
                    bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as err:
            raise _Transient(f"connection cut after {_size(part)} bytes: {err!r}") from err
    got = _size(part)
    if total is not None and got != total:
        raise _Transient(f"connection closed at byte {got} of {total}")


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


def _content_range(response, have: int) -> tuple[int, int | None]:
    """(first byte of this body, total file size or None) from a 200 or 206 answer."""
    if response.status == 206:
        match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
        if match is None:
            raise _Transient("206 answer without a usable Content-Range")
        total = None if match[3] == "*" else int(match[3])
        return int(match[1]), total
    length = response.headers.get("Content-Length")
    return 0, int(length) if length is not None else None


@dataclass
class FetchSummary:
    """What a parallel fetch did: the counts its final line reports."""

    total: int = 0
    downloaded: int = 0
    present: int = 0
    replaced: int = 0
    failed: list[str] = field(default_factory=list)

    def line(self, where: str) -> str:
        done = self.total - len(self.failed)
        text = (
            f"{done}/{self.total} images in {where}: {self.downloaded} downloaded, "
            f"{self.present} already complete"
        )
        if self.replaced:
            text += f", {self.replaced} corrupt on disk and fetched again"
        if self.failed:
            text += f", {len(self.failed)} FAILED"
        return text


def fetch_images(
    items: Sequence[tuple[str, str | os.PathLike]],
    *,
    setting: str,
    workers: int,
    retries: int,
    timeout: float,
    backoff: float = 0.5,
    verify_existing: bool = True,
    desc: str = "images",
) -> FetchSummary:
    """Fetch (url, dest) pairs in parallel threads, each decoded before it is kept.

    A file already at dest is decoded (verify_existing) and fetched again if it fails. Shows a
    progress bar and a final count line on stderr. Offline, stops at the first image; other
    failures let the rest finish, then raise one DownloadError listing them (a rerun fetches
    only what is missing).
    """
    summary = FetchSummary(total=len(items))
    lock = threading.Lock()

    def fetch_one(url: str, dest: Path) -> None:
        outcome = "downloaded"
        if dest.exists():
            if not verify_existing:
                outcome = "present"
            else:
                try:
                    decode_check(dest)
                    outcome = "present"
                except ImageError:
                    dest.unlink()
                    outcome = "replaced"
        if outcome != "present":
            download_file(
                url,
                dest,
                setting=setting,
                validate=decode_check,
                retries=retries,
                timeout=timeout,
                backoff=backoff,
            )
        with lock:
            setattr(summary, outcome, getattr(summary, outcome) + 1)
            if outcome == "replaced":
                summary.downloaded += 1

    errors: list[str] = []
    bar = tqdm(total=len(items), desc=desc, unit="img", file=sys.stderr, mininterval=0.5)
    with bar, ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {pool.submit(fetch_one, url, Path(dest)): url for url, dest in items}
        for future in as_completed(futures):
            bar.update(1)
            err = future.exception()
            if isinstance(err, OfflineError):
                for other in futures:
                    other.cancel()
                raise err
            if isinstance(err, RetinaflowError):
                errors.append(err.template)  # its settings still unresolved
                summary.failed.append(futures[future])
            elif err is not None:
                raise err
    where = str(Path(items[0][1]).parent) if items else "-"
    print(summary.line(where), file=sys.stderr, flush=True)
    if errors:
        shown = "\n  ".join(errors[:10])
        more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
        raise DownloadError(
            f"{len(errors)} of {len(items)} images could not be fetched (rerun to retry only "
            f"those, or put them in {where} by hand):\n  {shown}{more}",
        )
    return summary
