"""Errors raised by :mod:`models` (and the root class every wastewatch error derives from)."""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "ConversionError",
    "ModelConfigError",
    "WastewatchError",
]


class WastewatchError(Exception):
    """Root of every error wastewatch raises on purpose.

    The command line turns these into exit code 2 and one line on stderr: the message must say
    what was wrong and what to do about it.
    """


class CheckpointError(WastewatchError, ValueError):
    """A path is not a readable wastewatch checkpoint (or its weights do not match its card)."""


class ConversionError(WastewatchError, TypeError):
    """A network contains a layer that cannot be recast as a convolution."""


class ModelConfigError(WastewatchError, ValueError):
    """Model arguments that cannot build a working network (e.g. a patch too small)."""
