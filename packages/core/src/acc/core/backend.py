"""The façade users talk to: :class:`CacheBackend`.

A backend joins the request flow (:mod:`acc.core.flow`), the policy
(:mod:`acc.core.http.policy`), the codec, the key function and two stores behind the
storage port: ``responses`` (entries by cache key) and ``redirects`` (aliases: the key of
a URL that redirected, or was redirected to, mapped to the key its response is stored
under). Backend packages subclass it only to build their stores; everything a user calls
lives here, so it behaves the same on every backend.

:meth:`CacheBackend.fetch` is the cache for any HTTP client: give it a request and a
``send`` coroutine, and every setting applies exactly as through a client binding.
:meth:`~CacheBackend.read_entry` and :meth:`~CacheBackend.write_entry` are the raw entry
operations underneath (codec, signature, Vary and aliases, no policy): they are what the
flow uses, and what tools that copy or inspect entries use.

The cache is an optimisation, so storage failures fail open: the operation is treated
as a miss (or a skipped write), ``stats.errors`` grows, an ``"error"`` event goes to the
listeners and a warning is logged, rate-limited during an outage (see
:mod:`acc.core.outage`). With ``strict=True`` they raise :class:`BackendUnavailable`
instead.

Listeners (:mod:`acc.core.events`) receive an event for each decision of the flow and
each storage error; :meth:`CacheBackend.explain` tells what the flow would do for a
request, step by step, without doing it (:mod:`acc.core.flow.explain`).

Settings may change on a live backend, one way only: assigning the attribute of the
same name (``backend.expire_after = 60``; :meth:`CacheBackend.change_settings` is the same
for several settings at once). The assignment is checked as the constructor checks its
keyword (a :class:`ConfigError` leaves the settings as they were) and replaces
:attr:`CacheBackend.settings` as a whole; requests read the settings once each, so a
request in flight finishes under the settings it started with. ``cache_name`` cannot
change: the namespace belongs to the stores.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Generic, TypeVar, overload

import attrs

from acc.core import maintenance
from acc.core.codec import Codec, DecodeError
from acc.core.errors import BackendError, BackendUnavailable, ConfigError, EntryTooLarge
from acc.core.events import CacheEvent, EventHub, Listener
from acc.core.expiration import ExpirationTime, URLExpirations
from acc.core.flow.coalesce import SingleFlight
from acc.core.flow.driver import RequestFlow
from acc.core.flow.entries import carries_cookies, unservable, without_cookies
from acc.core.flow.explain import ProbeCallable, explain_request
from acc.core.flow.outcome import CacheResult
from acc.core.flow.refresh import BackgroundRefreshes
from acc.core.flow.send import SendCallable, SendExchange
from acc.core.flow.writes import QueuedWrite, WriteBehind
from acc.core.http.decisions import UNSET, RequestOptions, _Unset
from acc.core.http.explain import Explanation
from acc.core.http.policy import entry_storage_expiry
from acc.core.http.vary import (
    VaryRecord,
    decode_vary_record,
    encode_vary_record,
    variant_key,
    varying_headers,
)
from acc.core.keys import CacheRequest, create_key
from acc.core.models import CachedResponse, HeaderPairs, StoredEntry, utcnow
from acc.core.outage import OutageLog
from acc.core.settings import (
    DEFAULT_BREAKER_COOLDOWN,
    DEFAULT_BREAKER_THRESHOLD,
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_STORAGE_BUDGET,
    CacheSettings,
)
from acc.core.stats import CacheStats
from acc.core.storage import BaseCache
from acc.core.storage.guard import (
    CLOSED,
    OPEN,
    UNBOUNDED,
    Budget,
    BudgetSpent,
    StorageGuard,
    StorageTimeout,
)
from acc.core.storage.memo import DecodedMemo
from acc.core.storage.memory import MemoryCache
from acc.core.storage.near import NearCache

__all__ = ["CacheBackend"]

logger = logging.getLogger("acc")
_T = TypeVar("_T")
_V = TypeVar("_V")
_PARTS_FROM = 1024 * 1024
"""Bodies of at least this many bytes are handed to stores as parts, never joined."""


_NEAR_CACHE_OPTIONS = frozenset({"max_entries", "max_bytes", "max_age"})


def _near_cache_options(value: object) -> dict[str, Any] | None:
    """Check ``near_cache``: off, on with defaults, or a mapping of NearCache bounds."""
    if value is False or value is None:
        return None
    if value is True:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(
            "near_cache", f"expected True, False or a mapping of bounds, not {value!r}"
        )
    unknown = set(value) - _NEAR_CACHE_OPTIONS
    if unknown:
        raise ConfigError(
            "near_cache",
            f"unknown option(s) {sorted(map(str, unknown))}; "
            f"expected some of {sorted(_NEAR_CACHE_OPTIONS)}",
        )
    return dict(value)


def _near(inner: BaseCache, **options: Any) -> NearCache:
    try:
        return NearCache(inner, **options)
    except ConfigError as exc:
        raise ConfigError("near_cache", str(exc)) from exc


def _patterns(value: URLExpirations) -> dict[str, ExpirationTime]:
    return {pattern: expiration for _regex, pattern, expiration in value.rules}


def _keys_or_none(value: tuple[str | bytes, ...]) -> tuple[str | bytes, ...] | None:
    return value or None


_PUBLIC_FORMS: dict[str, Callable[[Any], Any]] = {
    "urls_expire_after": _patterns,
    "secret_key": _keys_or_none,
}
"""Settings whose validated value is given back in another form the constructor accepts."""

_SETTING_NAMES: tuple[str, ...] = tuple(
    name
    for name in inspect.signature(CacheSettings.build).parameters
    if name in {field.name for field in attrs.fields(CacheSettings)}
)
"""The settings, as ``CacheSettings.build`` takes them (derived fields left out)."""


def _public(name: str, value: Any) -> Any:
    form = _PUBLIC_FORMS.get(name)
    return value if form is None else form(value)


class _Setting(Generic[_V]):
    """A setting of :class:`CacheBackend`, read from and assigned to its settings.

    Reading gives the validated value (``backend.allowed_codes`` is a ``frozenset``), in a
    form the constructor accepts back; assigning checks the new value as the constructor
    does and replaces the settings.
    """

    name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.__doc__ = f"The ``{name}`` setting; assign it to change it (checked)."

    @overload
    def __get__(self, backend: None, owner: type) -> _Setting[_V]: ...
    @overload
    def __get__(self, backend: CacheBackend, owner: type) -> _V: ...
    def __get__(self, backend: CacheBackend | None, owner: type) -> _Setting[_V] | _V:
        if backend is None:
            return self
        public: _V = _public(self.name, getattr(backend.settings, self.name))
        return public

    def __set__(self, backend: CacheBackend, value: object) -> None:
        backend.change_settings(**{self.name: value})


class CacheBackend:
    """The cache: policy and settings over a ``responses`` and a ``redirects`` store.

    Used as it is, it keeps everything in memory. Backend packages provide subclasses
    (``SQLiteBackend``, ``RedisBackend``, ...) that build persistent stores; any
    :class:`BaseCache` can also be passed directly.

    Args:
        cache_name: The namespace of this cache in its storage (a file, a key prefix, a
            database name).
        expire_after: How long responses stay fresh: seconds, a ``timedelta``, a
            ``datetime`` (naive means UTC), ``NEVER_EXPIRE`` or ``DO_NOT_CACHE``. Left
            unset, ``NEVER_EXPIRE`` without ``cache_control``; with it, no fallback: a
            response without explicit or heuristic freshness is stale (stored only to
            be revalidated). Given, it is the fallback in both modes.
        urls_expire_after: Glob patterns (matched against the URL without its scheme,
            as prefixes) mapped to expirations; the first match wins over
            ``expire_after``.
        allowed_codes: Statuses that are stored. Left unset, ``(200,)`` without
            ``cache_control``; with it, RFC 9111 decides: a heuristically cacheable
            status, or any final status with explicit freshness (``206`` and ``304``
            never).
        allowed_methods: Methods that are looked up and stored.
        include_headers: Key requests by all their headers (credentials aside, which
            always count).
        match_headers: Key requests by the values of these headers only.
        ignored_params: Parameter and header names left out of keys and redacted
            where stored (query, form fields, top-level JSON keys, headers).
        credential_headers: Request headers that are credentials, besides
            ``Authorization``, ``Proxy-Authorization``, ``Cookie``, ``X-Api-Key``,
            ``Api-Key``, ``X-Auth-Token`` and ``X-Access-Token``: requests are keyed by a
            hash of their values (one user never gets another's response) and the values
            are never stored.
        credential_params: Query parameters that are credentials (an API key in the
            URL): keyed by a hash of their values, and redacted wherever a URL is stored.
        cache_control: Follow HTTP caching headers as a private cache (RFC 9111):
            request and response ``Cache-Control``, ``Expires``, ``Age``, ``Vary``,
            heuristic freshness. See the expiration page of the docs.
        filter_fn: ``f(response) -> bool`` (or an awaitable), applied to a
            :class:`CachedResponse` before it is stored and after it is read; false
            means "do not cache" and "treat as a miss".
        key_fn: ``f(request: CacheRequest) -> str`` replacing the default key.
        stale_if_error: Answer a 5xx or a failed connection with the stored entry when it
            is stale by at most this (seconds or a ``timedelta``; ``True``: any
            staleness; ``False``: never). RFC 5861 §4.
        stale_while_revalidate: Serve an entry stale by at most this at once and
            refresh it in the background (seconds, ``timedelta``, ``True`` or
            ``False``). RFC 5861 §3.
        secret_key: Sign entries with HMAC-SHA256; a list rotates keys (the first
            signs, all verify). Unsigned or badly signed entries read as misses.
        store_cookies: Keep ``Set-Cookie`` in stored responses (of the final response
            and of every redirect hop), and restore those cookies into the client's
            cookie jar on hits, as aiohttp-client-cache does. Off by default: one
            request's cookies are never replayed into another session. Only for a cache
            that one user's session alone uses (a single-user script).
        autoclose: Close the backend when the session using it closes.
        strict: Raise :class:`BackendUnavailable` on storage failures instead of
            failing open.
        responses: The store for entries (default: a new :class:`MemoryCache`).
        redirects: The store for redirect aliases (default: a new :class:`MemoryCache`).
        clock: A function returning the current time as an aware UTC ``datetime``
            (default: the system clock). Every freshness decision reads it, so tests
            can move time instead of sleeping.
        refresh_close_timeout: Seconds :meth:`close` waits for background refreshes
            (stale-while-revalidate) started through :meth:`fetch` before cancelling them.
        near_cache: Keep recently used entries of a remote store in process memory
            (:class:`~acc.core.storage.near.NearCache`): ``True`` with the default bounds, or a
            mapping of ``max_entries``, ``max_bytes`` and ``max_age`` (seconds a local
            copy is served, so how late another process's change may be seen). Off by
            default; see the performance page of the documentation.
        max_body_size: Bytes of body above which a response is not stored: it streams
            to the caller as it comes, never buffered by acc (default 16 MiB; ``None``:
            no bound). A declared ``Content-Length`` above it is decided on before
            reading; otherwise the body is kept while the caller reads it, and given up
            on past the limit.
        storage_budget: Seconds a request may wait on storage in all (reads, writes,
            invalidations) before it goes on without it (default 1; ``None``: no
            bound). An operation still running then is cancelled: a read is a miss, a
            write is skipped. In-process stores are not timed.
        breaker_threshold: Consecutive storage failures or timeouts after which the
            circuit breaker opens and storage is skipped (default 5; ``None``: never).
        breaker_cooldown: Seconds (by ``clock``) storage is skipped once the breaker
            opened, before one request probes it again (default 10).
        listeners: Callables that receive a :class:`~acc.core.events.CacheEvent` for each
            decision and each storage error, synchronously; what they raise is logged,
            never passed on (see :mod:`acc.core.events`).
        write_behind: Store the entries of misses after their responses went back to
            the caller, from a bounded queue (see :mod:`acc.core.flow.writes`): ``True``
            (the default) queues at most 1,000 entries (and 64 MiB of body), a number sets
            that bound, ``False`` (or 0) writes every entry before the response is
            returned. A full queue writes inline; ``strict=True`` always writes inline, and
            so do in-process stores (:class:`MemoryCache`), whose write costs no more
            than queuing it.
            Queued entries are served to this process's requests at once, written by
            :meth:`flush` and :meth:`close`; a crash loses them.
        write_close_timeout: Seconds :meth:`close` waits for queued writes before it
            drops the rest (counted and logged).

    Every setting (``expire_after`` to ``strict``) is also an attribute: reading it gives
    the validated value, assigning it changes the setting on the live backend, checked as
    the constructor checks it (see :meth:`change_settings`).

    Raises:
        TypeError: An unknown keyword argument.
        ConfigError: An invalid value; the message names the argument.
    """

    expire_after: _Setting[ExpirationTime] = _Setting()
    urls_expire_after: _Setting[dict[str, ExpirationTime]] = _Setting()
    allowed_codes: _Setting[frozenset[int]] = _Setting()
    allowed_methods: _Setting[frozenset[str]] = _Setting()
    include_headers: _Setting[bool] = _Setting()
    match_headers: _Setting[tuple[str, ...]] = _Setting()
    ignored_params: _Setting[frozenset[str]] = _Setting()
    cache_control: _Setting[bool] = _Setting()
    filter_fn: _Setting[Callable[..., Any] | None] = _Setting()
    key_fn: _Setting[Callable[..., str] | None] = _Setting()
    stale_if_error: _Setting[bool | float] = _Setting()
    stale_while_revalidate: _Setting[bool | float] = _Setting()
    secret_key: _Setting[tuple[str | bytes, ...] | None] = _Setting()
    autoclose: _Setting[bool] = _Setting()
    strict: _Setting[bool] = _Setting()
    write_behind: _Setting[int] = _Setting()

    def __init__(
        self,
        cache_name: str = "acc-cache",
        *,
        expire_after: ExpirationTime | _Unset = UNSET,
        urls_expire_after: Any = None,
        allowed_codes: Iterable[int] | None = None,
        allowed_methods: Iterable[str] = ("GET", "HEAD"),
        include_headers: bool = False,
        match_headers: Iterable[str] | None = None,
        ignored_params: Iterable[str] = (),
        credential_headers: Iterable[str] = (),
        credential_params: Iterable[str] = (),
        cache_control: bool = False,
        filter_fn: Callable[[CachedResponse], bool | Awaitable[bool]] | None = None,
        key_fn: Callable[[CacheRequest], str] | None = None,
        stale_if_error: bool | float | timedelta = False,
        stale_while_revalidate: bool | float | timedelta = False,
        secret_key: str | bytes | Sequence[str | bytes] | None = None,
        store_cookies: bool = False,
        autoclose: bool = True,
        strict: bool = False,
        responses: BaseCache | None = None,
        redirects: BaseCache | None = None,
        near_cache: bool | Mapping[str, float] = False,
        clock: Callable[[], datetime] | None = None,
        refresh_close_timeout: float = 5.0,
        listeners: Iterable[Listener] = (),
        max_body_size: int | None = DEFAULT_MAX_BODY_SIZE,
        storage_budget: float | timedelta | None = DEFAULT_STORAGE_BUDGET,
        breaker_threshold: int | None = DEFAULT_BREAKER_THRESHOLD,
        breaker_cooldown: float | timedelta = DEFAULT_BREAKER_COOLDOWN,
        write_behind: bool | int = True,
        write_close_timeout: float = 10.0,
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
            credential_headers=credential_headers,
            credential_params=credential_params,
            cache_control=cache_control,
            filter_fn=filter_fn,
            key_fn=key_fn,
            stale_if_error=stale_if_error,
            stale_while_revalidate=stale_while_revalidate,
            secret_key=secret_key,
            store_cookies=store_cookies,
            autoclose=autoclose,
            strict=strict,
            max_body_size=max_body_size,
            storage_budget=storage_budget,
            breaker_threshold=breaker_threshold,
            breaker_cooldown=breaker_cooldown,
            write_behind=write_behind,
        )
        for name, store in (("responses", responses), ("redirects", redirects)):
            if store is not None and not isinstance(store, BaseCache):
                raise ConfigError(name, f"expected a BaseCache, not {type(store).__name__}")
        self.responses: BaseCache = responses if responses is not None else MemoryCache()
        self.redirects: BaseCache = redirects if redirects is not None else MemoryCache()
        self.codec = Codec(self.settings.secret_key or None)
        near = _near_cache_options(near_cache)
        if near is not None and clock is not None:
            near["clock"] = lambda: clock().timestamp()
        if near is not None:
            self.responses = _near(self.responses, expires_of=self.codec.expires_at, **near)
            self.redirects = _near(self.redirects, **near)
        # Entries decoded from the store's bytes, reused while it returns equal bytes.
        self._decoded = self._new_memo()
        if clock is not None and not callable(clock):
            raise ConfigError("clock", f"expected a callable returning a datetime, not {clock!r}")
        self._clock: Callable[[], datetime] = clock or utcnow
        for name, seconds in (
            ("refresh_close_timeout", refresh_close_timeout),
            ("write_close_timeout", write_close_timeout),
        ):
            if (
                isinstance(seconds, bool)
                or not isinstance(seconds, (int, float))
                or not seconds >= 0
            ):
                raise ConfigError(name, f"expected seconds >= 0, not {seconds!r}")
        self.refresh_close_timeout = float(refresh_close_timeout)
        self.write_close_timeout = float(write_close_timeout)
        self._writes = WriteBehind(self._write_queued)
        self.stats = CacheStats()
        self.events = EventHub(listeners)
        self._outage = OutageLog()
        self._evictions_seen = 0
        self.inflight = SingleFlight()
        self.flow = RequestFlow(self)
        self.refreshes = BackgroundRefreshes()
        self._closed = False
        self._in_outage = False
        self.read_guard = self._guard("reads")
        """The breaker of storage reads, and the budget's timer (see :mod:`.storage.guard`)."""
        self.write_guard = self._guard("writes")
        """The breaker of writes and deletes: a store that cannot write (a lock another
        process holds, a full disk) may still serve what it holds."""
        # In-process stores cannot hang: their operations are not timed (no timer cost).
        self._timed = not (self.responses.in_process and self.redirects.in_process)
        # A store whose driver may not end promptly when cancelled is timed in a task.
        self._isolated = not (self.responses.cancels_promptly and self.redirects.cancels_promptly)

    # -- properties users read ------------------------------------------------------------

    @property
    def cache_name(self) -> str:
        """The namespace of this cache in its storage (it cannot change)."""
        return self.settings.cache_name

    @cache_name.setter
    def cache_name(self, value: object) -> None:
        raise AttributeError(
            "cache_name cannot change on a live backend: its stores are built for it; "
            f"build another backend, such as {type(self).__name__}({value!r}, ...)"
        )

    def change_settings(self, **changes: Any) -> None:
        """Change settings of the live backend: ``expire_after``, ``allowed_codes``, ...

        Assigning one attribute (``backend.expire_after = 60``) calls this with that one
        setting; call it directly to change several at once (``include_headers=True``
        with ``match_headers=None``, which are checked together). Each value is checked
        as the constructor checks it; on an error nothing changes. A new ``secret_key``
        signs new entries and verifies old ones from then on.

        Raises:
            TypeError: A name that is not a setting (``cache_name`` included).
            ConfigError: An invalid value; the message names the argument.
        """
        current = {name: _public(name, getattr(self.settings, name)) for name in _SETTING_NAMES}
        changeable = set(current) - {"cache_name"}
        unknown = sorted(set(changes) - changeable)
        if unknown:
            raise TypeError(
                f"{type(self).__name__}.change_settings() got unknown setting(s) "
                f"{', '.join(unknown)}; settings are {', '.join(sorted(changeable))}"
            )
        # Options the user never gave stay "not given" (with cache_control=True that means
        # no fallback expiry and RFC 9111's statuses), unless this change gives them.
        if not self.settings.expire_after_set:
            current["expire_after"] = UNSET
        if not self.settings.allowed_codes_set:
            current["allowed_codes"] = None
        current.update(changes)
        settings = CacheSettings.build(**current)
        if settings.secret_key != self.settings.secret_key:
            self.codec = Codec(settings.secret_key or None)
            self._decoded = self._new_memo()  # entries checked under the old keys
        self.settings = settings

    def _new_memo(self) -> DecodedMemo:
        return DecodedMemo(shares_store_bytes=self.responses.returns_stored_objects)

    def now(self) -> datetime:
        """The current time by this cache's clock (aware UTC)."""
        return self._clock()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    def __repr__(self) -> str:
        return f"{type(self).__name__}(cache_name={self.cache_name!r})"

    # -- listeners ---------------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` with a :class:`~acc.core.events.CacheEvent` for every decision."""
        self.events.add(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling ``listener``; no error if it was not added."""
        self.events.remove(listener)

    # -- construction from a URL -----------------------------------------------------------

    @classmethod
    def from_url(cls, url: str, **options: Any) -> CacheBackend:
        """Build a backend from a URL, such as ``sqlite:///http-cache.sqlite``.

        Called on ``CacheBackend`` itself, the URL's scheme picks the backend class (see
        :mod:`acc.core.registry`), whose own ``from_url`` builds it. This default
        implementation builds an in-memory cache from
        ``memory://[cache_name][?option=value&...]``. Query options are those of
        :data:`~acc.core.url_options.CACHE_OPTIONS`, converted to the types it declares;
        keyword ``options`` override them.

        Raises:
            ConfigError: An unknown scheme (the message lists the installed ones and the
                package that provides a known one), or an invalid URL or value.
            TypeError: An unknown option.
        """
        # Imported on first use of a URL: cattrs takes milliseconds to import, which a
        # program that passes its stores directly need not pay.
        from urllib.parse import urlsplit

        from acc.core.registry import resolve_backend_class
        from acc.core.url_options import parse_url_options, url_scheme

        scheme = url_scheme(url)
        if scheme != "memory":
            if cls is not CacheBackend:
                raise ConfigError(
                    "url",
                    f"{cls.__name__}.from_url() does not handle {scheme}:// URLs; "
                    "use CacheBackend.from_url() to pick the backend by scheme",
                )
            found = resolve_backend_class(scheme)
            if not issubclass(found, CacheBackend):
                raise ConfigError(
                    "url", f"the backend for {scheme!r} ({found!r}) is not a CacheBackend subclass"
                )
            if found is CacheBackend:  # registered for another scheme: it would call itself
                raise ConfigError("url", f"CacheBackend.from_url() does not handle {scheme}://")
            return found.from_url(url, **options)
        parts = urlsplit(url)
        if parts.fragment:
            raise ConfigError("url", f"{url!r}: a backend URL has no #fragment")
        name = (parts.netloc + parts.path).strip("/")
        kwargs = parse_url_options(parts.query, skip=("cache_name",), owner=cls.__name__)
        kwargs.update(options)
        if name:
            kwargs.setdefault("cache_name", name)
        return cls(**kwargs)

    # -- the cache for any client -----------------------------------------------------------

    async def fetch(
        self,
        request: CacheRequest,
        send: SendCallable,
        *,
        expire_after: ExpirationTime | _Unset = UNSET,
        refresh: bool = False,
        force_refresh: bool = False,
        only_if_cached: bool = False,
    ) -> CacheResult:
        """Answer ``request`` from the cache, or through ``send`` and store the answer.

        This is the whole cache for any HTTP client: lookup, freshness, revalidation,
        Vary, stale windows, coalescing, storing, invalidation after unsafe methods, stats
        and logging, with every setting of this backend applied exactly as through a
        client binding (see :mod:`acc.core.flow.driver`).

        Args:
            request: The request; its key is made from it.
            send: ``async def send(request: CacheRequest) -> CachedResponse``, which
                performs the request with any client and returns the response, body read.
                When the flow revalidates, the request it gets carries ``If-None-Match``
                and/or ``If-Modified-Since``, and it may return a ``304``. Any exception
                it raises is a failed fetch (stale-if-error may answer it).
            expire_after: The expiration for this response, overriding the settings.
            refresh: Revalidate the stored entry before using it.
            force_refresh: Ignore the stored entry, fetch, and store the new response.
            only_if_cached: Never call ``send``; a miss is a ``504`` response.

        Returns:
            The response and how it was obtained (``from_cache``, ``revalidated``,
            ``stale``, ``cache_key``, ``stored``).

        Raises:
            ConfigError: An invalid ``expire_after``.
        """
        self._check_open()
        if not isinstance(request, CacheRequest):
            raise TypeError(f"request must be an acc.core.CacheRequest, not {request!r}")
        options = RequestOptions.build(
            expire_after=expire_after,
            refresh=refresh,
            force_refresh=force_refresh,
            only_if_cached=only_if_cached,
        )
        outcome = await self.flow.run(
            request, SendExchange(request, send), options, refreshes=self.refreshes
        )
        response = outcome.entry if outcome.entry is not None else outcome.live
        assert response is not None
        return CacheResult(
            response=response,
            from_cache=outcome.from_cache,
            revalidated=outcome.revalidated,
            stale=outcome.stale,
            cache_key=outcome.cache_key,
            stored=outcome.stored,
        )

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
            raise BackendError(
                f"{self!r} is closed. A session or client closes its backend when it closes "
                "(autoclose=True, the default); to share one backend between several "
                "sessions, build it with autoclose=False (or set backend.autoclose = False) "
                "and close it yourself"
            )

    def new_budget(self) -> Budget:
        """A new budget of storage waiting for one request (``storage_budget`` seconds).

        Unbounded when ``storage_budget`` is ``None`` or both stores are in-process.
        """
        seconds = self.settings.storage_budget
        if seconds is None or not self._timed:
            return UNBOUNDED
        return Budget(seconds)

    def _storage_failed(self, operation: str, exc: BaseException) -> None:
        """Count and report a storage failure; raise it when ``strict``."""
        self.stats.errors += 1
        if self.events.listeners:
            self.events.emit(CacheEvent("error", "storage error", f"{operation} failed: {exc!r}"))
        if isinstance(exc, StorageTimeout):
            self.stats.storage_timeouts += 1
        if self.settings.strict:
            raise BackendUnavailable(f"{self!r}: {operation} failed: {exc!r}") from exc
        self._in_outage = True
        self._outage.failed(self, operation, exc, self.now())

    def _storage_ok(self) -> None:
        if self._in_outage:
            self._in_outage = False
            self._outage.recovered(self)

    def _storage_skipped(self, operation: str, guard: StorageGuard) -> None:
        """Count an operation the open breaker skipped; raise when ``strict``."""
        self.stats.storage_skipped += 1
        if self.settings.strict:
            raise BackendUnavailable(
                f"{self!r}: {operation} skipped: the circuit breaker is open after "
                f"{guard.failures} consecutive storage failures"
            )

    def _guard(self, what: str) -> StorageGuard:
        def changed(old: str, new: str) -> None:
            stats = self.stats
            # Called on a change of state only, so both guards exist by then.
            stats.breaker_open = not (self.read_guard.state == self.write_guard.state == CLOSED)
            if old == CLOSED and new == OPEN:
                stats.breaker_trips += 1
                logger.warning(
                    "acc: %d consecutive storage failures on %r; skipping storage %s for %gs",
                    self.settings.breaker_threshold,
                    self,
                    what,
                    self.settings.breaker_cooldown,
                )
            elif new == CLOSED:
                logger.warning("acc: storage %s of %r work again (a probe succeeded)", what, self)

        return StorageGuard(
            threshold=self.settings.breaker_threshold,
            cooldown=self.settings.breaker_cooldown,
            clock=lambda: self._clock().timestamp(),
            on_change=changed,
        )

    async def _guarded(
        self,
        operation: str,
        run: Awaitable[_T],
        budget: Budget,
        guard: StorageGuard,
        probe: bool,
    ) -> tuple[bool, _T | None]:
        """Await ``run`` within ``budget``: ``(True, result)``, or ``(False, None)`` on failure.

        A failure (an error, the budget running out) is counted and reported, and raised
        as :class:`BackendUnavailable` with ``strict``; ``guard`` counts it, or the
        success, towards its breaker.
        """
        try:
            result = await guard.timed(run, budget, isolated=self._isolated)
        except asyncio.CancelledError:
            if probe:
                guard.abandoned()
            raise
        except EntryTooLarge:
            guard.succeeded()  # the store answered: it is working
            raise
        except BudgetSpent:  # not started: no failure of storage
            if probe:
                guard.abandoned()
            self.stats.storage_skipped += 1
            return False, None
        except Exception as exc:
            guard.failed()
            self._storage_failed(operation, exc)
            return False, None
        guard.succeeded()
        self._storage_ok()
        return True, result

    # -- reading and writing entries --------------------------------------------------------

    async def read_entry(
        self,
        key: str,
        *,
        request_headers: HeaderPairs = (),
        budget: Budget | None = None,
    ) -> CachedResponse | None:
        """Return the entry stored under ``key`` (or under the key it aliases), or ``None``.

        A raw entry operation, not the cache: no freshness, no ``filter_fn``, no stats of
        hits (use :meth:`fetch`, or a client binding, for that). A miss on ``responses``
        looks in ``redirects``: an alias names the key the entry is stored under; a vary
        record names the request headers that select a variant (see
        :mod:`acc.core.http.vary`), which ``request_headers`` give values to. Whatever
        goes wrong with what storage holds (a value that is not an entry, is not bytes,
        does not verify, or could not be served: see
        :func:`acc.core.flow.entries.unservable`), the value is deleted, counted in
        ``stats.errors`` and logged once; it reads as ``None``, never an exception.

        It waits on storage for at most ``budget`` (by default a new
        :meth:`new_budget`), and not at all while the circuit breaker is open: either
        way it reads as ``None``.

        An entry still waiting in the write-behind queue (see ``write_behind``) is
        served as it was queued, before storage is asked.
        """
        self._check_open()
        pending = self._writes.pending
        if pending:  # an idle queue costs a read this one test
            queued = pending.get(key)
            if queued is not None:
                if not queued.names:
                    return queued.entry
                variant = variant_key(queued.key, queued.names, request_headers)
                queued = pending.get(variant)
                if queued is not None and queued.store_key == variant:
                    return queued.entry
        guard = self.read_guard
        if guard.state is not CLOSED and not guard.allow():
            self._storage_skipped("read", guard)
            return None
        if budget is None:
            budget = self.new_budget()
        if budget.left is None and guard.state is CLOSED:  # the untimed hit path, inline
            try:
                data = await self.responses.read_parts(key, self.codec.head_size)
                found = (
                    (key, data) if data is not None else await self._follow(key, request_headers)
                )
            except Exception as exc:
                guard.failed()
                self._storage_failed("read", exc)
                return None
            if guard.failures:
                guard.succeeded()
            if self._in_outage:
                self._storage_ok()
        else:
            lookup = self._lookup(key, request_headers)
            probe = guard.state is not CLOSED
            _ok, found = await self._guarded("read", lookup, budget, guard, probe)
        if found is None:
            return None
        key, data = found
        memo = self._decoded
        entry = None
        if type(data) is tuple:  # anything else is a hostile value: the decode says so
            for part in data:
                if type(part) is bytes:
                    self.stats.bytes_read += len(part)
            entry = memo.get(key, data)
        if entry is None:
            try:
                entry = self.codec.decode_parts(data, key=key)
                problem = unservable(entry)
                if problem is not None:
                    raise DecodeError(f"it cannot be served: {problem}")
                if not self.settings.store_cookies and carries_cookies(entry):
                    entry = without_cookies(entry)  # written by a store_cookies=True cache
            except Exception as exc:  # whatever storage holds, never an error to the caller
                self.stats.errors += 1
                logger.warning("acc: discarding unreadable entry %s: %s", key, exc)
                if self.events.listeners:
                    self.events.emit(CacheEvent("error", "unreadable entry", str(exc), key=key))
                await self._delete_quietly(key, budget)
                return None
            memo.put(key, data, entry)
        return entry

    async def _lookup(
        self, key: str, request_headers: HeaderPairs
    ) -> tuple[str, tuple[bytes, ...]] | None:
        """The key an entry is stored under and its parts, following an alias or vary record.

        The parts are read cut where the body begins (see ``BaseCache.read_parts``), so a
        store able to do it hands a large body over as an object of its own, uncopied.
        """
        data = await self.responses.read_parts(key, self.codec.head_size)
        if data is None:
            return await self._follow(key, request_headers)
        return key, data

    async def _follow(
        self, key: str, request_headers: HeaderPairs
    ) -> tuple[str, tuple[bytes, ...]] | None:
        """After a miss on ``key``: the entry its alias or vary record leads to, if any."""
        target = await self.redirects.read(key)
        if target is None:
            return None
        lead = self._lead(key, target)
        if lead is None:  # corrupt, moved or forged: a miss, and it goes
            await self._discard(self.redirects, key, "redirect record")
            return None
        if isinstance(lead, VaryRecord):
            key = variant_key(key, lead.names, request_headers)
        else:
            key = lead
        data = await self.responses.read_parts(key, self.codec.head_size)
        return None if data is None else (key, data)

    async def write_entry(
        self,
        key: str,
        entry: CachedResponse,
        *,
        aliases: Iterable[str] = (),
        request_headers: HeaderPairs = (),
        keep_until: datetime | _Unset | None = UNSET,
        budget: Budget | None = None,
    ) -> bool:
        """Store ``entry`` under ``key`` as it is, and point ``aliases`` at it.

        A raw entry operation, not the cache: ``expire_after``, ``allowed_codes``,
        ``filter_fn`` and the other settings that decide *whether* to store are the
        flow's (:meth:`fetch`); this writes what it is given, with ``entry.expires`` as
        its freshness.

        With ``cache_control=True``, an entry whose response has ``Vary`` is stored under
        the variant key that ``request_headers`` select, and ``key`` gets a vary record
        (see :mod:`acc.core.http.vary`).

        Args:
            key: The request's key.
            entry: What to store.
            aliases: Other keys that should find it (the URLs of a redirect chain).
            request_headers: The headers of the request the entry answers.
            keep_until: Until when storage keeps it (the store's native expiry), as the
                policy's :attr:`~acc.core.http.policy.StoreDecision.storage_expires` says;
                by default worked out from the entry by the same rules.
            budget: The storage waiting left to the request (by default a new
                :meth:`new_budget`); the write is cancelled when it runs out.

        Returns:
            Whether the entry was stored (a storage failure, the budget running out, the
            circuit breaker being open, or a store refusing a value too large for it,
            may prevent it).
        """
        self._check_open()
        return await self._write_entry(key, entry, aliases, request_headers, keep_until, budget)

    async def store_entry(
        self,
        key: str,
        entry: CachedResponse,
        *,
        aliases: Iterable[str] = (),
        request_headers: HeaderPairs = (),
        keep_until: datetime | _Unset | None = UNSET,
        budget: Budget | None = None,
        on_written: Callable[[bool], None] | None = None,
    ) -> bool:
        """Store ``entry`` as :meth:`write_entry` does, behind the response when it may.

        With ``write_behind`` on (and ``strict`` off) and a store outside this process
        (in-process stores such as :class:`MemoryCache` write as fast as they would
        queue, so they always write inline), the entry goes to the write-behind queue
        and is written by its worker with a budget of its own; with it off, with
        ``strict``, or when the queue is full, it is written now within ``budget``.

        Args:
            key: As for :meth:`write_entry`.
            entry: As for :meth:`write_entry`.
            aliases: As for :meth:`write_entry`.
            request_headers: As for :meth:`write_entry`.
            keep_until: As for :meth:`write_entry`.
            budget: The request's storage budget, for a write made inline.
            on_written: Called once with whether the entry was written: before this
                returns when written inline, when the queued write ends otherwise.

        Returns:
            Whether the entry was written or queued to be written.
        """
        self._check_open()
        settings = self.settings
        if settings.write_behind and self._timed and not settings.strict:
            if isinstance(keep_until, _Unset):
                keep_until = entry_storage_expiry(entry, settings)
            names = varying_headers(entry.headers) if settings.cache_control else ()
            queued = QueuedWrite(
                key,
                entry,
                variant_key(key, names, request_headers) if names else key,
                names,
                tuple(aliases),
                request_headers,
                keep_until,
                on_written,
            )
            if self._writes.offer(queued, settings.write_behind):
                return True
            await self._writes.discard((key,))  # no older queued entry lands after this one
        written = await self._write_entry(key, entry, aliases, request_headers, keep_until, budget)
        if on_written is not None:
            on_written(written)
        return written

    async def _write_queued(self, queued: QueuedWrite) -> bool:
        """The write-behind queue's write: one entry, with a budget of its own."""
        return await self._write_entry(
            queued.key,
            queued.entry,
            queued.aliases,
            queued.request_headers,
            queued.keep_until,
            None,
        )

    async def flush(self) -> None:
        """Wait until every entry queued to be written behind its response is written.

        Queued entries are served to this process's requests meanwhile; other processes
        (and other backends on the same storage) see them once written. Maintenance
        (:meth:`delete`, :meth:`clear`, ...) and :meth:`close` flush first.
        """
        await self._writes.flush()

    async def _write_entry(
        self,
        key: str,
        entry: CachedResponse,
        aliases: Iterable[str],
        request_headers: HeaderPairs,
        keep_until: datetime | _Unset | None,
        budget: Budget | None,
    ) -> bool:
        guard = self.write_guard
        if guard.state is not CLOSED and not guard.allow():
            self._storage_skipped("write", guard)
            return False
        if budget is None:
            budget = self.new_budget()
        if isinstance(keep_until, _Unset):
            keep_until = entry_storage_expiry(entry, self.settings)
        expires_at = None if keep_until is None else keep_until.timestamp()
        names = varying_headers(entry.headers) if self.settings.cache_control else ()
        store_key = variant_key(key, names, request_headers) if names else key
        parts = self.codec.encode_parts(entry, key=store_key)
        write = self._write(key, store_key, parts, names, aliases, expires_at)
        try:
            ok, _ = await self._guarded("write", write, budget, guard, guard.state is not CLOSED)
        except EntryTooLarge as exc:
            self._storage_ok()  # the store answered: it is working
            logger.debug("acc: not storing %s: %s", key, exc)  # the store logged why
            return False
        if ok:
            stats = self.stats
            stats.writes += 1
            stats.bytes_written += len(parts[0]) + len(parts[1])
            evicted = self.responses.evictions
            if evicted is not None and evicted != self._evictions_seen:
                stats.evictions += evicted - self._evictions_seen
                self._evictions_seen = evicted
        return ok

    async def _write(
        self,
        key: str,
        store_key: str,
        parts: tuple[bytes, bytes],
        names: tuple[str, ...],
        aliases: Iterable[str],
        expires_at: float | None,
    ) -> None:
        head, body = parts
        if len(body) < _PARTS_FROM:
            await self.responses.write(store_key, head + body, expires_at=expires_at)
        else:  # a large body: no contiguous copy of it (see BaseCache.write_parts)
            await self.responses.write_parts(store_key, parts, expires_at=expires_at)
        if store_key != key:
            await self._record_variant(key, names, store_key, expires_at)
        for alias in aliases:
            if alias != key:
                record = self.codec.encode_record(key.encode(), key=alias)
                await self.redirects.write(alias, record, expires_at=expires_at)

    async def _record_variant(
        self, key: str, names: tuple[str, ...], store_key: str, expires_at: float | None
    ) -> None:
        """Point ``key`` at its variants: drop a plain entry there, update the vary record."""
        await self.responses.delete(key)
        previous = await self.redirects.read(key)
        lead = self._lead(key, previous) if previous is not None else None
        variants: tuple[str, ...] = ()
        if isinstance(lead, VaryRecord) and lead.names == names:
            variants = tuple(v for v in lead.variants if v != store_key)
        record = VaryRecord(names=names, variants=(*variants, store_key))
        data = self.codec.encode_record(encode_vary_record(record), key=key)
        await self.redirects.write(key, data, expires_at=expires_at)

    def _lead(self, key: str, data: bytes) -> str | VaryRecord | None:
        """Where the ``redirects`` record found under ``key`` leads.

        The key of the entry an alias stands for, a vary record, or ``None`` when the
        record does not verify under ``key`` (corrupt, moved, forged, or unsigned when a
        ``secret_key`` is set): see :meth:`Codec.encode_record`.
        """
        try:
            payload = self.codec.decode_record(data, key=key)
        except DecodeError:
            return None
        record = decode_vary_record(payload)
        return record if record is not None else payload.decode("utf-8", "replace")

    async def invalidate(self, keys: Iterable[str], *, budget: Budget | None = None) -> None:
        """Delete the entries under ``keys``, their variants and what their aliases name.

        Used when an unsafe request changed the resource (RFC 9111 §4.4). Fails open
        like every storage call: a failure (the budget running out included) is counted
        and logged, never raised (unless ``strict``); while the circuit breaker is open
        it is skipped.
        """
        self._check_open()
        keys = list(dict.fromkeys(keys))
        await self._writes.discard(keys)  # no write queued before puts one back after
        guard = self.write_guard
        if guard.state is not CLOSED and not guard.allow():
            self._storage_skipped("delete", guard)
            return
        if budget is None:
            budget = self.new_budget()
        work = self._invalidate(keys)
        await self._guarded("delete", work, budget, guard, guard.state is not CLOSED)

    async def _invalidate(self, keys: list[str]) -> None:
        doomed = set(keys)
        for key, found in zip(keys, await self.redirects.read_many(keys), strict=True):
            lead = self._lead(key, found) if found is not None else None
            if isinstance(lead, VaryRecord):
                doomed.update(lead.variants)
            elif lead is not None:
                doomed.add(lead)
        await self.responses.bulk_delete(doomed)
        await self.redirects.bulk_delete(keys)

    async def get_response(
        self, key: str, *, request_headers: HeaderPairs = ()
    ) -> CachedResponse | None:
        """Deprecated: the raw read is :meth:`read_entry`; the cache is :meth:`fetch`."""
        warnings.warn(
            "CacheBackend.get_response() is deprecated: it is the raw read_entry(), which "
            "applies no freshness or filter; use fetch() (or a client binding) for the cache",
            DeprecationWarning,
            stacklevel=2,
        )
        return await self.read_entry(key, request_headers=request_headers)

    async def save_response(
        self,
        key: str,
        entry: CachedResponse,
        *,
        aliases: Iterable[str] = (),
        request_headers: HeaderPairs = (),
    ) -> bool:
        """Deprecated: the raw write is :meth:`write_entry`; the cache is :meth:`fetch`."""
        warnings.warn(
            "CacheBackend.save_response() is deprecated: it is the raw write_entry(), which "
            "applies no expire_after, allowed_codes or filter; use fetch() (or a client "
            "binding) for the cache",
            DeprecationWarning,
            stacklevel=2,
        )
        return await self.write_entry(key, entry, aliases=aliases, request_headers=request_headers)

    async def _delete_quietly(self, key: str, budget: Budget) -> None:
        guard = self.write_guard
        if guard.state is CLOSED:  # a clean-up: never a probe
            await self._guarded("delete", self.responses.delete(key), budget, guard, probe=False)

    async def _discard(self, store: BaseCache, key: str, what: str) -> None:
        """Delete an unreadable value found in ``store``: counted, logged once, never raised."""
        self.stats.errors += 1
        logger.warning("acc: discarding unreadable %s %s", what, key)
        try:
            await store.delete(key)
        except Exception as exc:
            self._storage_failed("delete", exc)

    # -- the façade's management methods (acc.core.maintenance does the work) ----------------

    async def clear(self) -> None:
        """Remove every entry and alias of this cache."""
        await maintenance.clear(self)

    async def delete(
        self,
        *keys: str,
        expired: bool = False,
        older_than: timedelta | float | None = None,
        urls: Iterable[str] | None = None,
    ) -> int:
        """Delete entries, and the aliases that point at them.

        What it costs follows what it is asked (see :mod:`acc.core.maintenance`): keys
        touch only those keys, their variants and their own aliases; ``expired=True`` on
        a store that expires entries by itself (memory, SQLite, Redis, MongoDB, DynamoDB)
        asks both stores to drop what expired, aliases and vary records included (they
        expire with their entries), and reads nothing. ``older_than`` and ``urls`` (and
        ``expired`` on a store that cannot tell what expired) read every entry once, then
        delete the aliases left leading nowhere in one streaming pass.

        Args:
            keys: Cache keys to delete.
            expired: Also delete every entry storage need not keep any more: past its
                expiration and, if it has a validator or a stale window, past the time
                it is kept for revalidation or stale use (the same moment the store's
                native expiry was set to; see :func:`acc.core.http.freshness.keep_until`).
            older_than: Also delete entries created longer ago than this
                (a ``timedelta`` or seconds).
            urls: Also delete every entry whose URL is one of these (any method, any
                variant), matched after normalisation.

        Returns:
            The number of entries deleted.
        """
        return await maintenance.delete(
            self, keys, expired=expired, older_than=older_than, urls=urls
        )

    async def sweep_aliases(self) -> None:
        """Delete the redirect aliases and vary records that lead to no entry any more.

        An alias whose entry was deleted by key reads as a miss, and goes by itself when
        its expiry (its entry's) comes; this walks the whole ``redirects`` store once to
        remove such aliases now (entries that never expire leave aliases that never do).
        Tools that delete entries by key in batches (``acc prune``) call it at the end.
        """
        await maintenance.sweep_aliases(self)

    def entries(self) -> AsyncIterator[StoredEntry]:
        """Iterate over the stored entries, with their keys and sizes, skipping unreadable ones.

        A raw listing for tools (the ``acc`` command's ``stats``, ``urls``, ``prune``,
        ``export``): it applies no freshness and counts nothing in ``stats``.
        """
        return maintenance.entries(self)

    async def compact(self) -> bool:
        """Give the space of deleted entries back where storage can (SQLite: ``VACUUM``).

        Returns:
            Whether storage compacted; ``False`` when it cannot (memory, servers).
        """
        return await maintenance.compact(self)

    async def explain(
        self,
        request: CacheRequest,
        *,
        expire_after: ExpirationTime | _Unset = UNSET,
        refresh: bool = False,
        force_refresh: bool = False,
        only_if_cached: bool = False,
        probe: ProbeCallable | None = None,
    ) -> Explanation:
        """Tell what :meth:`fetch` would do for ``request`` now, and why, step by step.

        It reads storage and changes nothing: no entry is written or deleted, nothing is
        counted in ``stats``, no event is sent.

        Args:
            request: The request to explain.
            expire_after: As for :meth:`fetch`.
            refresh: As for :meth:`fetch`.
            force_refresh: As for :meth:`fetch`.
            only_if_cached: As for :meth:`fetch`.
            probe: ``async def probe(request) -> CachedResponse``: when the flow would go to
                the network, it is called once (without conditional headers) so the
                explanation can tell whether the response would be stored, and why not.
                Without it, that step says what the request alone decides.

        Returns:
            The :class:`~acc.core.http.explain.Explanation`: the decision, its reason code
            and the steps that led to it.
        """
        self._check_open()
        options = RequestOptions.build(
            expire_after=expire_after,
            refresh=refresh,
            force_refresh=force_refresh,
            only_if_cached=only_if_cached,
        )
        return await explain_request(self, request, options, probe=probe)

    def url_key(self, url: str, method: str = "GET") -> str:
        """The key a plain request (no body, no extra headers) for ``url`` has."""
        return self.create_key(CacheRequest(method=method, url=url))

    async def delete_url(self, url: str, method: str = "GET") -> None:
        """Delete the entry of a plain ``method`` request for ``url``.

        It touches only that key, its variants and its own alias; aliases of other URLs
        that pointed at it read as misses, and go when they expire (with the entry they
        were written for) or with :meth:`sweep_aliases`.
        """
        await maintenance.delete_url(self, url, method)

    async def has_url(self, url: str, method: str = "GET") -> bool:
        """Whether a plain ``method`` request for ``url`` has an entry."""
        return await maintenance.has_url(self, url, method)

    def urls(self) -> AsyncIterator[str]:
        """Iterate over the distinct URLs of the stored entries, skipping unreadable ones.

        It streams: memory grows with the entries that are not a plain GET of their URL
        (variants, other methods, requests with a body), not with the cache (see
        :func:`acc.core.maintenance.urls`).
        """
        return maintenance.urls(self)

    async def close(self) -> None:
        """Close both stores. Idempotent; later use raises :class:`BackendError`.

        Background refreshes end first (waited for ``refresh_close_timeout`` seconds),
        then queued writes are written (waited for ``write_close_timeout`` seconds;
        what is left is dropped, counted in ``stats.errors`` and logged).
        """
        if self._closed:
            return
        self._closed = True
        try:
            try:
                await self.refreshes.close(self.refresh_close_timeout)
            finally:
                dropped = await self._writes.close(self.write_close_timeout)
                self.stats.errors += dropped
        finally:
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


def _add_missing_settings() -> None:
    """Give every setting an attribute, those added to ``CacheSettings`` later included."""
    for name in _SETTING_NAMES:
        if name not in vars(CacheBackend):
            setting: _Setting[Any] = _Setting()
            setting.__set_name__(CacheBackend, name)
            setattr(CacheBackend, name, setting)


_add_missing_settings()
