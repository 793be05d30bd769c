"""The backend: ``ExampleBackend``, the cache policy wired to two ``ExampleCache`` stores."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from acc.backends.example.cache import ExampleCache
from acc.core.backend import CacheBackend
from acc.core.errors import ConfigError
from acc.core.url_options import OptionsTable, parse_url_options, url_scheme

__all__ = ["URL_OPTIONS", "ExampleBackend"]

# The options of ExampleBackend a URL query may set, each with the type its value becomes,
# besides CacheBackend's (expire_after, allowed_codes, ...), which every backend takes.
# Objects only code can pass (clients, callables) stay out of it.
URL_OPTIONS: OptionsTable = {"pool_size": int}


class ExampleBackend(CacheBackend):
    """An acc cache in an Example store.

    Args:
        url: Where the store is, as an ``example://`` URL without options.
        cache_name: The namespace prefix of this cache in the store.
        pool_size: Connections the driver may open (DRIVER: your driver's options).
        policy_kwargs: Every option of :class:`~acc.core.CacheBackend`; passed on, so an
            unknown keyword raises ``TypeError`` there.

    Raises:
        TypeError: An unknown keyword argument.
        ConfigError: An invalid value; the message names the argument.
    """

    def __init__(
        self,
        url: str = "example://localhost",
        *,
        cache_name: str = "acc_cache",
        pool_size: int = 10,
        **policy_kwargs: Any,
    ) -> None:
        for name in ("responses", "redirects"):
            if name in policy_kwargs:
                raise TypeError(f"ExampleBackend builds its own stores: {name}= is not accepted")
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
            raise ConfigError("pool_size", f"expected a positive integer, not {pool_size!r}")
        super().__init__(
            cache_name,
            responses=ExampleCache(url, f"{cache_name}_responses"),
            redirects=ExampleCache(url, f"{cache_name}_redirects"),
            **policy_kwargs,
        )
        self.url = url
        self.pool_size = pool_size  # DRIVER: hand it to your driver's client instead

    @classmethod
    def from_url(cls, url: str, **options: Any) -> ExampleBackend:
        """Build from ``example://host/...?option=value``; keyword options win.

        The query may set the options of :data:`URL_OPTIONS` and ``CacheBackend``'s; an
        unknown one raises ``TypeError``, a value that does not convert ``ConfigError``.
        """
        if url_scheme(url) != "example":
            raise ConfigError("url", f"expected an example:// URL, not {url!r}")
        parts = urlsplit(url)
        kwargs = parse_url_options(parts.query, URL_OPTIONS, owner=cls.__name__)
        kwargs.update(options)
        return cls(urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), **kwargs)
