"""The façade users talk to: :class:`CacheBackend`.

A backend joins the policy (:mod:`acc.core.policy`), the codec, the key function and two
stores behind the storage port: ``responses`` (entries by cache key) and ``redirects``
(aliases: the key of a URL that redirected, or was redirected to, mapped to the key
its response is stored under). Backend packages subclass it only to build their stores;
everything a user calls lives here, so it behaves the same on every backend.

The cache is an optimisation, so storage failures fail open: the operation is treated
as a miss (or a skipped write), ``stats.errors`` grows and a warning is logged once per
outage. With ``strict=True`` they raise :class:`BackendUnavailable` instead.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from datetime import timedelta
from types import TracebackType
from typing import Any, TypeVar

from acc.core.coalesce import SingleFlight
from acc.core.codec import Codec, DecodeError
from acc.core.errors import BackendError, BackendUnavailable, ConfigError
from acc.core.expiration import NEVER_EXPIRE, ExpirationTime
from acc.core.keys import CacheRequest, create_key, normalize_url
from acc.core.memory import MemoryCache
from acc.core.models import CachedResponse, utcnow
from acc.core.settings import CacheSettings
from acc.core.stats import CacheStats
from acc.core.storage import BaseCache

__all__ = ["CacheBackend"]

logger = logging.getLogger("acc")
_T = TypeVar("_T")


class CacheBackend:
    """The cache: policy and settings over a ``responses`` and a ``redirects`` store.

    Used as it is, it keeps everything in memory. Backend packages provide subclasses
    (``SQLiteBackend``, ``RedisBackend``, ...) that build persistent stores; any
    :class:`BaseCache` can also be passed directly.

    Args:
        cache_name: The namespace of this cache in its storage (a file, a key prefix, a
            database name).
        expire_after: How long responses stay fresh: seconds, a ``timedelta``, a
            ``datetime`` (naive means UTC), ``NEVER_EXPIRE`` or ``DO_NOT_CACHE``.
        urls_expire_after: Glob patterns (matched against the URL without its scheme,
            as prefixes) mapped to expirations; the first match wins over
            ``expire_after``.
        allowed_codes: Statuses that are stored.
        allowed_methods: Methods that are looked up and stored.
        include_headers: Key requests by all their headers (credentials aside, which
            always count).
        match_headers: Key requests by the values of these headers only.
        ignored_params: Parameter and header names left out of keys and redacted
            where stored (query, form fields, top-level JSON keys, headers).
        cache_control: Follow HTTP caching headers (not supported yet: must be False).
        filter_fn: ``f(response) -> bool`` (or an awaitable), applied to a
            :class:`CachedResponse` before it is stored and after it is read; false
            means "do not cache" and "treat as a miss".
        key_fn: ``f(request: CacheRequest) -> str`` replacing the default key.
        stale_if_error: Not supported yet: must be False.
        stale_while_revalidate: Not supported yet: must be False.
        secret_key: Sign entries with HMAC-SHA256; a list rotates keys (the first
            signs, all verify). Unsigned or badly signed entries read as misses.
        autoclose: Close the backend when the session using it closes.
        strict: Raise :class:`BackendUnavailable` on storage failures instead of
            failing open.
        responses: The store for entries (default: a new :class:`MemoryCache`).
        redirects: The store for redirect aliases (default: a new :class:`MemoryCache`).

    Raises:
        TypeError: An unknown keyword argument.
        ConfigError: An invalid value; the message names the argument.
    """

    def __init__(
        self,
        cache_name: str = "acc-cache",
        *,
        expire_after: ExpirationTime = NEVER_EXPIRE,
        urls_expire_after: Any = None,
        allowed_codes: Iterable[int] = (200,),
        allowed_methods: Iterable[str] = ("GET", "HEAD"),
        include_headers: bool = False,
        match_headers: Iterable[str] | None = None,
        ignored_params: Iterable[str] = (),
        cache_control: bool = False,
        filter_fn: Callable[[CachedResponse], bool | Awaitable[bool]] | None = None,
        key_fn: Callable[[CacheRequest], str] | None = None,
        stale_if_error: bool = False,
        stale_while_revalidate: bool = False,
        secret_key: str | bytes | Sequence[str | bytes] | None = None,
        autoclose: bool = True,
        strict: bool = False,
        responses: BaseCache | None = None,
        redirects: BaseCache | None = None,
    ) -> None:
        self.settings = CacheSettings.build(
            cache_name=cache_name,
            expire_after=expire_after,
            urls_expire_after=urls_expire_after,
            allowed_codes=allowed_codes,
            allowed_methods=allowed_methods,
            include_headers=include_headers,
            match_headers=match_headers,
            ignored_params=ignored_params,
            cache_control=cache_control,
            filter_fn=filter_fn,
            key_fn=key_fn,
            stale_if_error=stale_if_error,
            stale_while_revalidate=stale_while_revalidate,
            secret_key=secret_key,
            autoclose=autoclose,
            strict=strict,
        )
        for name, store in (("responses", responses), ("redirects", redirects)):
            if store is not None and not isinstance(store, BaseCache):
                raise ConfigError(name, f"expected a BaseCache, not {type(store).__name__}")
        self.responses: BaseCache = responses if responses is not None else MemoryCache()
        self.redirects: BaseCache = redirects if redirects is not None else MemoryCache()
        self.codec = Codec(self.settings.secret_key or None)
        self.stats = CacheStats()
        self.inflight = SingleFlight()
        self._closed = False
        self._in_outage = False

    # -- properties users read ------------------------------------------------------------

    @property
    def cache_name(self) -> str:
        """The namespace of this cache in its storage."""
        return self.settings.cache_name

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    def __repr__(self) -> str:
        return f"{type(self).__name__}(cache_name={self.cache_name!r})"

    # -- construction from a URL -----------------------------------------------------------

    @classmethod
    def from_url(cls, url: str, **options: Any) -> CacheBackend:
        """Build a backend from a URL, such as ``sqlite:///http-cache.sqlite``.

        Called on ``CacheBackend`` itself, the URL's scheme picks the backend class among
        the installed ``acc.backends`` entry points (see :mod:`acc.core.registry`), whose
        own ``from_url`` builds it. This default implementation builds an in-memory cache
        from ``memory://[cache_name][?option=value&...]``. Query options are converted to
        the types the constructor expects; keyword ``options`` override them.

        Raises:
            ConfigError: An unknown scheme (the message lists the installed ones and the
                package that provides a known one), or an invalid URL or value.
            TypeError: An unknown option.
        """
        from acc.core.registry import default_from_url  # reads entry points: on first use

        return default_from_url(cls, url, options)

    # -- keys -----------------------------------------------------------------------------

    def create_key(self, request: CacheRequest) -> str:
        """Return the cache key of ``request``, with ``key_fn`` when one is set."""
        if self.settings.key_fn is not None:
            return self.settings.key_fn(request)
        return create_key(request, self.settings.key_settings)

    # -- coordination between processes ------------------------------------------------------

    def fetch_lock(self, key: str) -> AbstractAsyncContextManager[bool]:
        """Coordinate the fetch of a missing ``key`` with other processes sharing the cache.

        The session enters this context, as the one task of its process fetching ``key``
        (in-process coalescing comes first), around the fetch and the write of the
        response. This default does no cross-process coordination and yields ``False``.
        Backends whose store is shared between processes may override it (the Redis
        backend does, with ``lock=True``): enter once this process may fetch, and yield
        ``True`` when another process held the lock meanwhile, so that the caller looks in
        the cache again before fetching. An override must never fail a request: on a
        storage error it yields ``False`` and lets the fetch go ahead.
        """
        return nullcontext(False)

    # -- failure handling -------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise BackendError(f"{self!r} is closed")

    def _storage_failed(self, operation: str, exc: BaseException) -> None:
        """Count and report a storage failure; raise it when ``strict``."""
        self.stats.errors += 1
        if self.settings.strict:
            raise BackendUnavailable(f"{self!r}: {operation} failed: {exc!r}") from exc
        if not self._in_outage:
            self._in_outage = True
            logger.warning(
                "acc: %s failed on %r (%r); serving from the network until storage recovers",
                operation,
                self,
                exc,
            )

    def _storage_ok(self) -> None:
        if self._in_outage:
            self._in_outage = False
            logger.warning("acc: storage of %r is working again", self)

    # -- reading and writing entries --------------------------------------------------------

    async def get_response(self, key: str) -> CachedResponse | None:
        """Return the entry under ``key`` (or under the key it aliases), or ``None``.

        An entry that cannot be decoded is deleted and counted in ``stats.errors``; an
        entry rejected by ``filter_fn`` is a miss. Neither raises.
        """
        self._check_open()
        try:
            data = await self.responses.read(key)
            if data is None:
                target = await self.redirects.read(key)
                if target is not None:
                    key = target.decode("utf-8", "replace")
                    data = await self.responses.read(key)
        except Exception as exc:
            self._storage_failed("read", exc)
            return None
        if self._in_outage:
            self._storage_ok()
        if data is None:
            return None
        try:
            entry = self.codec.decode(data, key=key)
        except DecodeError as exc:
            self.stats.errors += 1
            logger.warning("acc: discarding unreadable entry %s: %s", key, exc)
            await self._delete_quietly(key)
            return None
        if self.settings.filter_fn is not None and not await self._passes_filter(entry):
            return None
        return entry

    async def save_response(
        self, key: str, entry: CachedResponse, *, aliases: Iterable[str] = ()
    ) -> bool:
        """Store ``entry`` under ``key`` and point ``aliases`` at it.

        The store's native expiry is set from ``entry.expires``.

        Returns:
            Whether the entry was stored (``filter_fn`` or a storage failure may prevent it).
        """
        self._check_open()
        if self.settings.filter_fn is not None and not await self._passes_filter(entry):
            return False
        data = self.codec.encode(entry, key=key)
        expires_at = None if entry.expires is None else entry.expires.timestamp()
        try:
            await self.responses.write(key, data, expires_at=expires_at)
            for alias in aliases:
                if alias != key:
                    await self.redirects.write(alias, key.encode(), expires_at=expires_at)
        except Exception as exc:
            self._storage_failed("write", exc)
            return False
        if self._in_outage:
            self._storage_ok()
        self.stats.writes += 1
        return True

    async def _passes_filter(self, entry: CachedResponse) -> bool:
        assert self.settings.filter_fn is not None
        result = self.settings.filter_fn(entry)
        if inspect.isawaitable(result):
            result = await result
        return bool(result)

    async def _delete_quietly(self, key: str) -> None:
        try:
            await self.responses.delete(key)
        except Exception as exc:
            self._storage_failed("delete", exc)

    # -- the façade's management methods ------------------------------------------------------

    async def clear(self) -> None:
        """Remove every entry and alias of this cache."""
        self._check_open()
        await self.responses.clear()
        await self.redirects.clear()

    async def delete(
        self,
        *keys: str,
        expired: bool = False,
        older_than: timedelta | float | None = None,
        urls: Iterable[str] | None = None,
    ) -> int:
        """Delete entries, and the aliases that point at them.

        Args:
            keys: Cache keys to delete.
            expired: Also delete every entry past its expiration.
            older_than: Also delete entries created longer ago than this
                (a ``timedelta`` or seconds).
            urls: Also delete every entry whose URL is one of these (any method, any
                variant), matched after normalisation.

        Returns:
            The number of entries deleted.
        """
        self._check_open()
        if isinstance(older_than, (int, float)) and not isinstance(older_than, bool):
            older_than = timedelta(seconds=older_than)
        if older_than is not None and not isinstance(older_than, timedelta):
            raise ConfigError("older_than", f"expected a timedelta or seconds, not {older_than!r}")
        if isinstance(urls, str):
            raise ConfigError("urls", "expected a list of URLs, not a single string")
        doomed = set(keys)
        deleted = 0
        now = utcnow()
        if expired:
            native = await self.responses.delete_expired(time.time())
            if native is not None:
                deleted += native
                expired = False
        ignored = self.settings.ignored_params
        wanted_urls = {normalize_url(u, ignored) for u in urls} if urls else set()
        if expired or older_than is not None or wanted_urls:
            cutoff = now - older_than if older_than is not None else None
            async for key, data in self.responses.items():
                try:
                    entry = self.codec.decode(data, key=key)
                except DecodeError:
                    doomed.add(key)
                    continue
                if (
                    (expired and entry.is_expired(now))
                    or (cutoff is not None and entry.created_at < cutoff)
                    or (wanted_urls and normalize_url(entry.url, ignored) in wanted_urls)
                ):
                    doomed.add(key)
        if doomed:
            present = await self.responses.read_many(sorted(doomed))
            deleted += sum(1 for value in present if value is not None)
            await self.responses.bulk_delete(doomed)
        if keys:
            # A key given may itself be an alias (the URL a redirect started from).
            await self.redirects.bulk_delete(keys)
        await self._delete_dangling_aliases(doomed)
        return deleted

    async def _delete_dangling_aliases(self, doomed: set[str]) -> None:
        """Delete the aliases whose target is in ``doomed``."""
        dangling = [
            key async for key, target in self.redirects.items() if target.decode() in doomed
        ]
        if dangling:
            await self.redirects.bulk_delete(dangling)

    def url_key(self, url: str, method: str = "GET") -> str:
        """The key a plain request (no body, no extra headers) for ``url`` has."""
        return self.create_key(CacheRequest(method=method, url=url))

    async def delete_url(self, url: str, method: str = "GET") -> None:
        """Delete the entry of a plain ``method`` request for ``url``."""
        await self.delete(self.url_key(url, method))

    async def has_url(self, url: str, method: str = "GET") -> bool:
        """Whether a plain ``method`` request for ``url`` has an entry."""
        self._check_open()
        key = self.url_key(url, method)
        return await self.responses.contains(key) or await self.redirects.contains(key)

    async def urls(self) -> AsyncIterator[str]:
        """Iterate over the distinct URLs of the stored entries, skipping unreadable ones."""
        self._check_open()
        seen: set[str] = set()
        async for key, data in self.responses.items():
            try:
                url = self.codec.decode(data, key=key).url
            except DecodeError:
                continue
            if url not in seen:
                seen.add(url)
                yield url

    async def close(self) -> None:
        """Close both stores. Idempotent; later use raises :class:`BackendError`."""
        if self._closed:
            return
        self._closed = True
        await self.responses.close()
        await self.redirects.close()

    async def __aenter__(self: _T) -> _T:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
