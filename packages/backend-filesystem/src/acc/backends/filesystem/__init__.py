"""acc.backends.filesystem: a persistent store in a folder of files, standard library only.

:class:`FileBackend` is the cache (``CacheBackend`` options plus the cache folder);
:class:`FileCache` is one store, a folder of files, behind the ``BaseCache`` port.
The package registers the ``file`` URL scheme:
``CacheBackend.from_url("file:///http-cache")`` (a folder relative to the current
directory; four slashes for an absolute path).
"""

from acc.backends.filesystem._version import __version__
from acc.backends.filesystem.backend import FileBackend
from acc.backends.filesystem.cache import FileCache, cache_folder

__all__ = ["FileBackend", "FileCache", "__version__", "cache_folder"]
