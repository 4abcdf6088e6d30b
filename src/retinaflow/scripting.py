"""What every workflow script shares: a log file per job, messages mirrored on stderr, and user
errors (RetinaflowError) reported as one clear line instead of a traceback, the settings they
name resolved to the config keys they came from (`config_keys`)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from .errors import RetinaflowError

LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"


def config_keys(config: Mapping, *sections: str, **keys: str) -> Callable[[str], str | None]:
    """How a job names the settings its errors mention (errors.ref): the config key `keys`
    gives for a name, else the first of `sections` (dotted paths into `config`) where the
    name (itself maybe dotted, "urls.boxes") is a key of the config; None where none is."""

    def resolve(name: str) -> str | None:
        if name in keys:
            return keys[name]
        for section in sections:
            node = config
            for part in f"{section}.{name}".split("."):
                if not isinstance(node, Mapping) or part not in node:
                    break
                node = node[part]
            else:
                return f"{section}.{name}"
        return None

    return resolve


@contextmanager
def job_logging(
    log_path: str | os.PathLike | None,
    threads: int | None = None,
    name: str = "retinaflow",
    settings: Callable[[str], str | None] | None = None,
) -> Iterator:
    """Yield a logger writing to `log_path` and stderr; exit 1 with the message on a user error.

    `threads` (the job's Snakemake threads) caps PyTorch's intra-op pool, so that a job uses
    the cores its rule declares and no more. `settings` (config_keys) names the config key of
    each setting a user error mentions.
    """
    if threads:
        import torch

        torch.set_num_threads(threads)
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    logger.handlers.clear()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    for handler in handlers:
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logger.addHandler(handler)
    try:
        yield logger
    except RetinaflowError as err:
        if settings is not None:
            err.named(settings)
        logger.error("%s", err)
        sys.exit(1)
    finally:
        for handler in handlers:
            handler.close()
        logger.handlers.clear()


def user_errors(log_root: str | os.PathLike, since: float) -> list[str]:
    """The user errors (RetinaflowError messages) that jobs wrote to their logs under
    `log_root` after `since` (a time.time()), so that the workflow can repeat them as the last
    lines of its output, below Snakemake's error blocks, where a user reads first."""
    messages = []
    root = Path(log_root)
    logs = [p for p in root.rglob("*.log") if p.is_file()] if root.is_dir() else []
    for path in sorted(logs):
        if path.stat().st_mtime < since:
            continue
        text = path.read_text(errors="replace")
        marker = text.rfind(" ERROR ")
        if marker >= 0:
            messages.append(f"{path}: {text[marker + len(' ERROR ') :].strip()}")
    return messages
