"""acc.sessions.aiohttp: a drop-in caching :class:`aiohttp.ClientSession`.

Use :class:`CachedSession` where you used ``aiohttp.ClientSession``, or mix
:class:`CacheMixin` into your own session class.
"""

from acc.sessions.aiohttp._version import __version__
from acc.sessions.aiohttp.response import CachedClientResponse
from acc.sessions.aiohttp.session import CachedSession, CacheMixin

__all__ = ["CacheMixin", "CachedClientResponse", "CachedSession", "__version__"]
