"""Test helpers: a real HTTP file server on 127.0.0.1 with injectable faults, and small content
in OpenImages' formats (the real CSV headers, real JPEGs) for it to serve.

The server answers Range requests as S3/GCS do (206 + Content-Range, 416 past the end) and can,
per path and once each: cut the connection after N bytes, answer 404, or serve corrupt bytes.
"""

from __future__ import annotations

import hashlib
import io
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image

BOX_HEADER = (
    "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,"
    "IsOccluded,IsTruncated,IsGroupOf,IsDepiction,IsInside"
)
TRAIN_BOX_HEADER = (
    BOX_HEADER + ",XClick1X,XClick2X,XClick3X,XClick4X,XClick1Y,XClick2Y,XClick3Y,XClick4Y"
)


class _HTTPServer(ThreadingHTTPServer):
    """Quiet about clients that hang up: tests of timeouts make them do so on purpose."""

    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class FileServer:
    """Serves `files` (path -> bytes) on a free loopback port; use as a context manager."""

    def __init__(self, delay_s: float = 0.0):
        self.files: dict[str, bytes] = {}
        self.drop_after: dict[str, int] = {}  # path -> bytes sent before the cut (first GET)
        self.corrupt_once: dict[str, bytes] = {}  # path -> body of the first GET
        self.fail_status: dict[str, int] = {}  # path -> HTTP status of every GET
        self.ignore_range = False
        self.delay_s = delay_s
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self._lock = threading.Lock()
        self._httpd = _HTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def count(self, path: str) -> int:
        """How many GETs `path` received."""
        with self._lock:
            return sum(p == path for p, _ in self.requests)

    def __enter__(self) -> FileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _take(self, table: dict, path: str):
        with self._lock:
            return table.pop(path, None)

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                with server._lock:
                    server.requests.append((path, self.headers.get("Range")))
                if server.delay_s:
                    time.sleep(server.delay_s)
                if path in server.fail_status:
                    return self._send_status(server.fail_status[path])
                body = server.files.get(path)
                if body is None:
                    return self._send_status(404)
                corrupt = server._take(server.corrupt_once, path)
                if corrupt is not None:
                    body = corrupt
                start = self._range_start()
                if start is not None and start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if start is None:
                    self.send_response(200)
                    start = 0
                else:
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                payload = body[start:]
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                cut = server._take(server.drop_after, path)
                if cut is not None:
                    self.wfile.write(payload[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(payload)

            def _range_start(self) -> int | None:
                header = self.headers.get("Range")
                if server.ignore_range or not header or not header.startswith("bytes="):
                    return None
                first = header[len("bytes=") :].split("-")[0]
                return int(first) if first else None

            def _send_status(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler


def md5_of(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def make_jpeg(width: int, height: int, seed: int, exif_orientation: int | None = None) -> bytes:
    """A small real JPEG of random blocks (so it does not compress to nothing)."""
    rng = random.Random(seed)
    img = Image.new("RGB", (width, height))
    step = 8
    for y in range(0, height, step):
        for x in range(0, width, step):
            colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
            img.paste(colour, (x, y, x + step, y + step))
    out = io.BytesIO()
    if exif_orientation is None:
        img.save(out, "JPEG", quality=85)
    else:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        img.save(out, "JPEG", quality=85, exif=exif)
    return out.getvalue()


class FakeOpenImages:
    """OpenImages-shaped content: a class map, a box CSV sorted by ImageID, and JPEGs.

    Boxes mix MLPerf classes with other classes; some images hold no MLPerf box at all (they
    are not part of the MLPerf set); flags vary, including IsGroupOf = 1.
    """

    EXTRA_CLASSES = ("Person", "Car", "Tree", "Building", "Flower")

    def __init__(
        self, classes: list[str], n_images: int, seed: int, train: bool = False, shuffle=False
    ):
        rng = random.Random(seed)
        self.classes = classes
        names = list(classes) + [c for c in self.EXTRA_CLASSES if c not in classes]
        rng.shuffle(names)
        self.label_of = {name: f"/m/0{i:05x}" for i, name in enumerate(names)}
        self.image_ids = sorted({f"{rng.getrandbits(64):016x}" for _ in range(n_images)})
        self.sizes = {i: (rng.randrange(24, 96), rng.randrange(24, 96)) for i in self.image_ids}
        self.header = TRAIN_BOX_HEADER if train else BOX_HEADER
        extras = [c for c in names if c not in classes]
        self.rows: list[list[str]] = []
        for k, image_id in enumerate(self.image_ids):
            only_extra = k % 7 == 3
            for _ in range(rng.randrange(1, 6)):
                pool = extras if only_extra or rng.random() < 0.25 else classes
                name = rng.choice(pool)
                x0, x1 = sorted(round(rng.random(), rng.choice((1, 4, 6))) for _ in range(2))
                y0, y1 = sorted(round(rng.random(), rng.choice((2, 5, 6))) for _ in range(2))
                flags = [rng.choice("01") for _ in range(5)]
                row = [image_id, "xclick", self.label_of[name], "1"]
                row += [repr(v) for v in (x0, x1 + 0.01, y0, y1 + 0.01)] + flags
                if train:
                    row += ["-1"] * 8
                self.rows.append(row)
        mlperf = self.mlperf_ids()
        self.exif = {mlperf[1]: 6} if len(mlperf) > 1 else {}  # cv2 swaps this one's sides
        if shuffle:  # the real CSVs are sorted by ImageID; the builder must not rely on it
            rng.shuffle(self.rows)

    def boxes_csv(self) -> bytes:
        lines = [self.header] + [",".join(r) for r in self.rows]
        return ("\n".join(lines) + "\n").encode()

    def class_map_csv(self) -> bytes:
        return "".join(f"{label},{name}\n" for name, label in self.label_of.items()).encode()

    def jpeg(self, image_id: str) -> bytes:
        width, height = self.sizes[image_id]
        seed = int(image_id[:8], 16)
        return make_jpeg(width, height, seed, self.exif.get(image_id))

    def mlperf_ids(self) -> list[str]:
        """ImageIDs holding at least one box of the MLPerf classes, read straight off the rows."""
        wanted = {self.label_of[c] for c in self.classes}
        return sorted({r[0] for r in self.rows if r[2] in wanted})

    def serve(self, server: FileServer, split: str = "validation", prefix: str = "") -> dict:
        """Publish the CSVs and images on `server`; returns the three URLs."""
        boxes = f"{prefix}/csv/{split}-annotations-bbox.csv"
        class_map = f"{prefix}/csv/class-descriptions-boxable.csv"
        server.files[boxes] = self.boxes_csv()
        server.files[class_map] = self.class_map_csv()
        for image_id in self.image_ids:
            server.files[f"{prefix}/bucket/{split}/{image_id}.jpg"] = self.jpeg(image_id)
        return {
            "boxes_url": server.url + boxes,
            "class_map_url": server.url + class_map,
            "images_url": server.url + f"{prefix}/bucket",
        }
