"""Typed errors that the UI, CLI and worker each turn into one readable sentence.

Library code raises these and never prints or exits; every message is written to be
shown to a user as it is.
"""

from __future__ import annotations


class RestorationError(Exception):
    """Base class: anything the user can act on."""


class InputImageError(RestorationError):
    """The image (or mask) a user sent cannot be used: unreadable, too large, wrong kind."""


class UnknownModelError(RestorationError):
    """A model id that is not in the registry."""


class ModelUnavailableError(RestorationError):
    """A card exists but its files are not here and cannot be fetched."""


class ChecksumError(ModelUnavailableError):
    """A weights file whose size or sha256 differs from its card: deleted, to be fetched again."""


class InvalidOptionError(RestorationError):
    """An option value the chosen model does not support (scale, noise level, tile size)."""
