"""One small adapter per backend behind one interface: a runner takes an NCHW float32 batch in
[0,1] and returns the 10 head maps as numpy arrays, in the order of model.head.OUTPUT_NAMES."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class HeadRunner(Protocol):
    def __call__(self, images: np.ndarray) -> list[np.ndarray]: ...
