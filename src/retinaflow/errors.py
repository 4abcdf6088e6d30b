"""Errors a user can act on: each message names the file, key or value and the fix."""


class RetinaflowError(Exception):
    """Base class: the workflow prints these messages as they are, without a traceback."""


class ImageError(RetinaflowError):
    """An image is missing or does not decode."""


class CheckpointError(RetinaflowError):
    """A weights file is missing or does not fit the architecture."""


class DatasetError(RetinaflowError):
    """An annotations file breaks the openimages-mlperf.json conventions."""


class ParityError(RetinaflowError):
    """An exported model disagrees with its PyTorch source beyond the tolerance."""


class DeviceError(RetinaflowError):
    """The configured device (a GPU) is not present, or the runtime cannot use it."""


class FidelityError(RetinaflowError):
    """A build's head maps drift from ONNX Runtime fp32 past the configured fidelity limit."""
