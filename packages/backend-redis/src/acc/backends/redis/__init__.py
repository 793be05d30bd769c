"""acc.backends.redis: a Redis store for acc (work in progress)."""

from acc.backends.redis._version import __version__

__all__ = ["__version__"]
