"""Errors a user can act on: each message names the file, the setting or the value, and the fix.

The library does not know where a value came from. A message that names a setting does so by
the library's name for it (the parameter that took the value: "method", "urls.boxes"), written
`ref(name)`. The workflow's rule layer, which knows the config, resolves those names to config
keys (`RetinaflowError.named`), so renaming a config key never touches a library module; outside
the workflow the message says "setting <name>".
"""

from __future__ import annotations

import re
from collections.abc import Callable

_REF = re.compile(r"\{setting:([A-Za-z0-9_.\-]+)\}")


def ref(name: str) -> str:
    """A message's mention of the setting `name`: its config key once the workflow resolves it."""
    return "{setting:" + name + "}"


class RetinaflowError(Exception):
    """Base class: the workflow prints these messages as they are, without a traceback."""

    def __init__(self, message: str = ""):
        super().__init__(message)
        self.resolve: Callable[[str], str | None] | None = None

    @property
    def settings(self) -> list[str]:
        """The settings the message names, by the library's names."""
        return _REF.findall(self.template)

    @property
    def template(self) -> str:
        """The message with its settings unresolved."""
        return str(self.args[0]) if self.args else ""

    def named(self, resolve: Callable[[str], str | None]) -> RetinaflowError:
        """This error, its settings called by what `resolve` makes of their names (a config
        key; None leaves a name as it is)."""
        self.resolve = resolve
        return self

    def __str__(self) -> str:
        return _REF.sub(lambda m: self._name(m[1]), self.template)

    def _name(self, setting: str) -> str:
        key = self.resolve(setting) if self.resolve else None
        return f"config key {key}" if key else f"setting {setting}"


class SettingError(RetinaflowError, ValueError):
    """A setting's value cannot work: the setting, its value, and what would be right."""

    def __init__(self, setting: str, value, expected: str):
        super().__init__(f"{ref(setting)} is {value!r}: {expected}")
        self.setting = setting
        self.value = value
        self.expected = expected


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
