"""acc.backends.mongo: a MongoDB store for acc (work in progress)."""

from acc.backends.mongo._version import __version__

__all__ = ["__version__"]
