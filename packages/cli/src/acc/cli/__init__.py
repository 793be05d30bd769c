"""acc.cli: the ``acc`` command, a client of acc.core like any other.

It finds backends by URL scheme (the ``acc.backends`` entry points) and never imports
one; every caching rule, and every explanation of one, comes from :mod:`acc.core`.
"""

from acc.cli._version import __version__

__all__ = ["__version__"]
