"""Time the image fetcher against a local HTTP server: parallel threads vs one thread.

The server (tests/http_server.py, on 127.0.0.1) waits `--latency-ms` before each answer to stand
in for a round trip to the bucket; every image is decoded before it is kept, as in a real run.

    .venv/bin/python -m retinaflow.benchmarks download --images 200 --latency-ms 20 --workers 16
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the project, for tests.http_server

from retinaflow.data.download import fetch_images  # noqa: E402
from tests.http_server import FileServer, make_jpeg  # noqa: E402


def time_fetch(server: FileServer, names: list[str], workers: int) -> float:
    """Seconds to fetch every image into a fresh folder with `workers` threads."""
    with tempfile.TemporaryDirectory() as out:
        items = [(f"{server.url}/validation/{n}.jpg", Path(out) / f"{n}.jpg") for n in names]
        start = time.perf_counter()
        summary = fetch_images(items, setting="benchmark", workers=workers, retries=0, timeout=30)
        seconds = time.perf_counter() - start
    assert summary.downloaded == len(names)
    return seconds


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--repeat", type=int, default=3, help="report the best of N runs")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, time nothing")
    args = parser.parse_args(argv)
    if args.dry_run:
        print(f"would time: {vars(args)}")
        return

    names = [f"{i:016x}" for i in range(args.images)]
    with FileServer(delay_s=args.latency_ms / 1000) as server:
        for i, name in enumerate(names):
            server.files[f"/validation/{name}.jpg"] = make_jpeg(args.size, args.size, seed=i)
        kb = sum(len(b) for b in server.files.values()) / len(names) / 1024
        parallel = min(time_fetch(server, names, args.workers) for _ in range(args.repeat))
        serial = min(time_fetch(server, names, 1) for _ in range(args.repeat))
    print(
        f"{args.images} images of {kb:.0f} KB, {args.latency_ms:.0f} ms latency per request "
        f"(best of {args.repeat}):\n"
        f"  {args.workers} threads: {parallel:.2f} s ({args.images / parallel:.0f} images/s)\n"
        f"  1 thread:   {serial:.2f} s ({args.images / serial:.0f} images/s)\n"
        f"  speed-up:   {serial / parallel:.1f}x"
    )


if __name__ == "__main__":
    main()
