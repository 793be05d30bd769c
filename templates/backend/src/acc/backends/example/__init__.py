"""acc.backends.example: an Example storage backend for acc."""

from acc.backends.example._version import __version__
from acc.backends.example.backend import ExampleBackend
from acc.backends.example.cache import ExampleCache

__all__ = ["ExampleBackend", "ExampleCache", "__version__"]
