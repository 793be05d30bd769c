"""The backend: ``ExampleBackend``, the cache policy wired to two ``ExampleCache`` stores."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from acc.backends.example.cache import ExampleCache
from acc.core.backend import CacheBackend
from acc.core.errors import ConfigError
from acc.core.registry import parse_url_options, url_scheme

__all__ = ["ExampleBackend"]


class ExampleBackend(CacheBackend):
    """An acc cache in an Example store.

    Args:
        url: Where the store is, as an ``example://`` URL without options.
        cache_name: The namespace prefix of this cache in the store.
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
        **policy_kwargs: Any,
    ) -> None:
        for name in ("responses", "redirects"):
            if name in policy_kwargs:
                raise TypeError(f"ExampleBackend builds its own stores: {name}= is not accepted")
        super().__init__(
            cache_name,
            responses=ExampleCache(url, f"{cache_name}_responses"),
            redirects=ExampleCache(url, f"{cache_name}_redirects"),
            **policy_kwargs,
        )
        self.url = url

    @classmethod
    def from_url(cls, url: str, **options: Any) -> ExampleBackend:
        """Build from ``example://host/...?option=value``; keyword options win."""
        if url_scheme(url) != "example":
            raise ConfigError("url", f"expected an example:// URL, not {url!r}")
        parts = urlsplit(url)
        kwargs = parse_url_options(parts.query, cls, skip=("url",))
        kwargs.update(options)
        return cls(urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), **kwargs)
