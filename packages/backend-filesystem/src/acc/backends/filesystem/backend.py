"""The file-system cache backend: :class:`FileBackend`.

Rules this module keeps: the backend only builds its two stores (``responses`` and
``redirects``, two folders of one cache folder) and reads its URL; every caching rule is
the core's (:class:`~acc.core.CacheBackend`), and the storage rules are
:mod:`acc.backends.filesystem.cache`'s.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from acc.backends.filesystem.cache import FileCache, cache_folder
from acc.core.backend import CacheBackend
from acc.core.errors import ConfigError
from acc.core.url_options import OptionsTable, local_path_url, parse_url_options

__all__ = ["URL_OPTIONS", "FileBackend"]

_OWN_STORES = ("responses", "redirects")

URL_OPTIONS: OptionsTable = {}
"""The options of :class:`FileBackend` a URL query may set besides ``CacheBackend``'s: none."""


class FileBackend(CacheBackend):
    """A cache in a folder: one file per entry, in ``responses/`` and ``redirects/``.

    Needs nothing but the standard library. Several backends, in one process or many, may
    use the same folder; files are created ``0600`` and folders ``0700``.

    Args:
        cache_name: The cache folder: ``~`` is expanded, a relative path is taken against
            the current directory (now); it and its missing parents are created on the
            first write.
        policy_kwargs: Every option of :class:`~acc.core.CacheBackend`
            (``expire_after``, ``allowed_codes``, ``secret_key``, ...).

    Raises:
        TypeError: An unknown keyword argument.
        ConfigError: An invalid value; the message names the argument.

    Example:
        >>> backend = FileBackend("~/.cache/my-app", expire_after=3600)  # doctest: +SKIP
    """

    def __init__(
        self, cache_name: str | os.PathLike[str] = "acc-cache", **policy_kwargs: Any
    ) -> None:
        for name in _OWN_STORES:
            if name in policy_kwargs:
                raise TypeError(f"FileBackend builds its own stores: {name}= is not accepted")
        self.cache_dir: Path = cache_folder(cache_name)
        """The cache folder."""
        self._files = (
            FileCache(self.cache_dir, "responses"),
            FileCache(self.cache_dir, "redirects"),
        )
        super().__init__(
            os.fspath(cache_name),
            responses=self._files[0],
            redirects=self._files[1],
            **policy_kwargs,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.cache_dir)!r})"

    async def disk_usage(self) -> int:
        """Bytes the cache's files take on disk (both stores; file sizes, not blocks)."""
        self._check_open()
        return sum([await store.disk_usage() for store in self._files])

    @classmethod
    def from_url(cls, url: str, **options: Any) -> FileBackend:
        """Build a backend from a ``file:`` URL, with the path rules of ``sqlite:`` URLs.

        * ``file:///relative/folder``: a folder relative to the current directory;
        * ``file:////absolute/folder``: an absolute path (four slashes);
        * ``file:///~/folder``: in the home folder.

        Options may follow as a query (``?expire_after=3600``): ``CacheBackend``'s,
        converted to the types they declare; keyword ``options`` override them.

        Raises:
            ConfigError: Not a ``file:`` URL, a host in it, no folder, or an invalid value.
            TypeError: An unknown option.
        """
        path, query = local_path_url(
            url, "file", "file:///relative/folder or file:////absolute/folder"
        )
        kwargs = parse_url_options(query, URL_OPTIONS, skip=("cache_name",), owner=cls.__name__)
        kwargs.update(options)
        if not path and "cache_name" not in kwargs:
            raise ConfigError(
                "url",
                f"{url!r} names no folder; use file:///relative/folder or file:////absolute/folder",
            )
        kwargs.setdefault("cache_name", path)
        return cls(**kwargs)
