"""The request flow: every step of a cached request, in one place, for every client.

Theory of operation: :meth:`RequestFlow.run` takes a :class:`~acc.core.CacheRequest` (what
the request is), an :class:`~acc.core.flow.exchange.Exchange` (how the binding's client
sends it) and the request's options, and returns an
:class:`~acc.core.flow.outcome.Outcome`. In between it performs this sequence::

    key -> read (with Vary and aliases) -> decide_lookup
        UseCached              -> serve the entry
        GatewayTimeout         -> serve a made-up 504
        StaleWhileRevalidate   -> serve the entry, refresh it in the background
        Revalidate | Fetch     -> coalesce -> fetch lock -> look again if another fetch
                                  finished -> send (conditionally) -> decide_error on
                                  failure -> 304: merge and store; else decide_store ->
                                  store with redirect aliases
    -> invalidate after an unsafe method -> count in ``stats`` -> one DEBUG log line

Rules this module keeps:

1. It is the only caller of the policy's decide functions (:mod:`acc.core.http.policy`)
   and of the coalescer; bindings call :meth:`RequestFlow.run` and nothing else.
2. Dispatch over decisions is exhaustive (:func:`assert_never`): a new decision type
   fails type-checking until this driver handles it.
3. Concurrent identical cacheable misses in one process make one network request: the
   first becomes the leader, the others wait and then read what it stored. A request the
   cache does not handle (method not allowed, body that cannot be keyed, cache disabled,
   ``force_refresh``, ``refresh``) never waits behind another.
4. Every decision is counted in :class:`~acc.core.CacheStats` and logged once at DEBUG
   under the ``acc`` logger, with ``extra`` fields ``acc_decision``, ``acc_reason``,
   ``acc_key`` and ``acc_url`` for structured handlers; the same facts go to the cache's
   listeners as a :class:`~acc.core.events.CacheEvent` (with the status, the body size
   and the seconds since the request arrived), and only when there are listeners is
   the event built or the time read.
5. Time comes from the cache's clock (``now()``), never read deep inside: tests move it.
6. A response goes back to the caller as soon as the network answered: its entry is
   handed to the cache's write-behind queue (:mod:`acc.core.flow.writes`), which the
   cache reads before storage, so followers of rule 3 and later requests of this process
   are served it at once. The miss is logged (and its event sent) when the write ended,
   with what became of it. A leader holding a cross-process fetch lock waits for the
   write before it lets the lock go, as other processes then read storage.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from datetime import datetime
from time import perf_counter
from typing import Generic, NoReturn, Protocol

import attrs

from acc.core.events import CacheEvent, EventHub, EventKind
from acc.core.flow.coalesce import SingleFlight
from acc.core.flow.entries import entry_from_head, gateway_timeout, unservable, without_cookies
from acc.core.flow.exchange import BodyCollector, Exchange, LiveT, ResponseHead
from acc.core.flow.outcome import Outcome
from acc.core.flow.refresh import BackgroundRefreshes
from acc.core.http.policy import (
    Fetch,
    GatewayTimeout,
    RequestOptions,
    Revalidate,
    StaleWhileRevalidate,
    StoreDecision,
    UseCached,
    decide_error,
    decide_lookup,
    decide_store,
    invalidated_urls,
    is_cacheable_method,
    is_unsafe_method,
    not_modified_selects,
    refresh_not_modified,
    served_entry,
)
from acc.core.keys import CacheRequest, redact_url
from acc.core.models import CachedResponse, HeaderPairs
from acc.core.settings import CacheSettings
from acc.core.stats import CacheStats
from acc.core.storage.guard import Budget

__all__ = ["FlowCache", "RequestFlow", "assert_never"]

logger = logging.getLogger("acc")

_FETCH_REASONS = {
    "miss": "miss: no entry",
    "expired": "miss: stale, without validators to revalidate",
    "refresh": "miss: refresh asked, and the entry has no validators",
    "force_refresh": "miss: force_refresh",
}


def assert_never(value: NoReturn) -> NoReturn:
    """Fail type-checking when a dispatch misses a case, and at run time if one slips by."""
    raise AssertionError(f"unhandled decision: {value!r}")


class FlowCache(Protocol):
    """What the flow needs of the cache it runs over (:class:`~acc.core.CacheBackend`)."""

    settings: CacheSettings
    stats: CacheStats
    inflight: SingleFlight
    events: EventHub

    def now(self) -> datetime:
        """The current time, aware UTC (the cache's clock)."""
        ...

    def create_key(self, request: CacheRequest) -> str:
        """The key of ``request``."""
        ...

    def url_key(self, url: str, method: str = "GET") -> str:
        """The key of a plain ``method`` request for ``url``."""
        ...

    def fetch_lock(self, key: str) -> AbstractAsyncContextManager[bool]:
        """The cross-process fetch lock of ``key``."""
        ...

    def new_budget(self) -> Budget:
        """A new budget of storage waiting for one request."""
        ...

    async def read_entry(
        self, key: str, *, request_headers: HeaderPairs = (), budget: Budget | None = None
    ) -> CachedResponse | None:
        """Read and decode the entry under ``key`` (following aliases and Vary)."""
        ...

    async def write_entry(
        self,
        key: str,
        entry: CachedResponse,
        *,
        aliases: Iterable[str] = (),
        request_headers: HeaderPairs = (),
        keep_until: datetime | None = None,
        budget: Budget | None = None,
    ) -> bool:
        """Encode and write ``entry`` under ``key``; whether it was written."""
        ...

    async def store_entry(
        self,
        key: str,
        entry: CachedResponse,
        *,
        aliases: Iterable[str] = (),
        request_headers: HeaderPairs = (),
        keep_until: datetime | None = None,
        budget: Budget | None = None,
        on_written: Callable[[bool], None] | None = None,
    ) -> bool:
        """Write ``entry``, or queue it to be written; whether it was written or queued."""
        ...

    async def flush(self) -> None:
        """Wait for the writes queued so far."""
        ...

    async def invalidate(self, keys: Iterable[str], *, budget: Budget | None = None) -> None:
        """Delete the entries under ``keys``, their variants and aliases."""
        ...


@attrs.frozen(slots=True)
class _Request(Generic[LiveT]):
    """The parameter record of one request on its way through the flow."""

    request: CacheRequest
    exchange: Exchange[LiveT]
    options: RequestOptions
    key: str
    refreshes: BackgroundRefreshes
    budget: Budget
    """The storage waiting left to the request (see :mod:`acc.core.storage.guard`)."""
    started: float = 0.0
    """``perf_counter()`` when the request arrived, when there are listeners (else 0)."""
    drain: bool = False
    """Read a body of unknown length here, so it is stored (a background refresh)."""


def _bodiless(request: CacheRequest, method: str, url: str) -> CacheRequest:
    """The description of a body-less ``method`` request for ``url`` with the same headers."""
    return attrs.evolve(request, method=method, url=url, body_kind="none", body=None)


@asynccontextmanager
async def _no_lock() -> AsyncIterator[bool]:
    yield False


class RequestFlow:
    """The request flow of one cache. See the module docstring for the sequence."""

    __slots__ = ("cache",)

    def __init__(self, cache: FlowCache) -> None:
        self.cache = cache

    # -- logging and counting ------------------------------------------------------------

    def _log(
        self,
        kind: EventKind,
        decision: str,
        reason: str,
        request: CacheRequest,
        key: str | None,
        started: float = 0.0,
        *,
        status: int | None = None,
        stored: bool | None = None,
        body_bytes: int | None = None,
    ) -> None:
        events = self.cache.events
        debug = logger.isEnabledFor(logging.DEBUG)
        if not (events.listeners or debug):
            return
        # Logs and events are not storage, but they are kept and shipped: the same redaction.
        url = redact_url(request.url, self.cache.settings.redacted_params)
        if events.listeners:
            events.emit(
                CacheEvent(
                    kind,
                    decision,
                    reason,
                    request.method,
                    url,
                    key,
                    status=status,
                    stored=stored,
                    body_bytes=body_bytes,
                    elapsed=perf_counter() - started if started else None,
                )
            )
        if debug:
            text = decision if not reason else f"{decision}: {reason}"
            logger.debug(
                "acc: %s %s: %s",
                request.method,
                url,
                text,
                extra={
                    "acc_decision": decision,
                    "acc_reason": reason,
                    "acc_key": key,
                    "acc_url": url,
                },
            )

    def _hit(
        self,
        request: CacheRequest,
        key: str,
        entry: CachedResponse,
        *,
        revalidated: bool = False,
        stale: bool = False,
        why: str = "",
        started: float = 0.0,
        now: datetime | None = None,
    ) -> Outcome[LiveT]:
        stats = self.cache.stats
        stats.hits += 1
        if stale:
            stats.stale += 1
        if self.cache.events.listeners or logger.isEnabledFor(logging.DEBUG):
            decision: EventKind = "revalidated" if revalidated else ("stale" if stale else "hit")
            self._log(
                decision,
                decision,
                why,
                request,
                key,
                started,
                status=entry.status,
                body_bytes=len(entry.body),
            )
        settings = self.cache.settings
        if settings.cache_control:  # served as HTTP says: its current Age, its Range part
            entry = served_entry(
                entry,
                self.cache.now() if now is None else now,
                settings,
                method=request.method,
                request_headers=request.headers,
                validated=revalidated,
            )
        return Outcome(
            entry=entry,
            cache_key=key,
            from_cache=True,
            revalidated=revalidated,
            stale=stale,
        )

    def _gateway_timeout(
        self, request: CacheRequest, key: str | None, why: str, started: float = 0.0
    ) -> Outcome[LiveT]:
        cache = self.cache
        cache.stats.gateway_timeouts += 1
        self._log("gateway_timeout", "504", why, request, key, started, status=504)
        entry = gateway_timeout(
            request.method,
            request.url,
            created_at=cache.now(),
            redacted_params=cache.settings.redacted_params,
        )
        return Outcome(entry=entry, cache_key=key)

    # -- the entry point -------------------------------------------------------------------

    async def run(
        self,
        request: CacheRequest,
        exchange: Exchange[LiveT],
        options: RequestOptions,
        *,
        refreshes: BackgroundRefreshes,
        bypass: str | None = None,
        disabled: bool = False,
    ) -> Outcome[LiveT]:
        """Answer ``request``: from the cache, from the network, or both.

        Args:
            request: What the request is (the key is made from it).
            exchange: How the binding sends it.
            options: The request's cache options.
            refreshes: The owner of background refreshes this request may start.
            bypass: Why the cache must leave this request alone (say, a body that cannot
                be keyed), or ``None``. A bypassed request goes to the network and stores
                nothing; a successful unsafe one still invalidates.
            disabled: The caller turned the cache off for this request (a session's
                ``disabled()`` block): like a bypass, and nothing is invalidated.
        """
        settings = self.cache.settings
        started = perf_counter() if self.cache.events.listeners else 0.0
        if disabled:
            bypass = "the cache is disabled"
        elif bypass is None and not is_cacheable_method(request.method, settings):
            bypass = f"method {request.method.upper()} is not in allowed_methods"
        if bypass is not None:
            return await self._bypass(
                request, exchange, options, bypass, invalidate=not disabled, started=started
            )
        key = self.cache.create_key(request)
        completions_before_lookup = self.cache.inflight.completions
        budget = self.cache.new_budget()
        if options.force_refresh:
            entry = None
        elif settings.filter_fn is None:  # the common case, without a second coroutine
            entry = await self.cache.read_entry(key, request_headers=request.headers, budget=budget)
        else:
            entry = await self._read(request, key, budget)
        now = self.cache.now()
        decision = decide_lookup(
            entry, options, now, settings=settings, request_headers=request.headers
        )
        if isinstance(decision, UseCached):
            served = decision.entry
            return self._hit(
                request, key, served, stale=served.is_expired(now), started=started, now=now
            )
        if isinstance(decision, GatewayTimeout):
            why = "no entry" if entry is None else "the entry may not be used"
            return self._gateway_timeout(request, key, f"only_if_cached, and {why}", started)
        call = _Request(request, exchange, options, key, refreshes, budget, started)
        if isinstance(decision, StaleWhileRevalidate):
            self._refresh_in_background(call, decision)
            return self._hit(
                request,
                key,
                decision.entry,
                stale=True,
                why="stale-while-revalidate",
                started=started,
            )
        if isinstance(decision, (Revalidate, Fetch)):
            return await self._coalesced(call, decision, entry, completions_before_lookup)
        assert_never(decision)

    # -- the decisions' steps ----------------------------------------------------------------

    async def _bypass(
        self,
        request: CacheRequest,
        exchange: Exchange[LiveT],
        options: RequestOptions,
        why: str,
        *,
        invalidate: bool,
        started: float = 0.0,
    ) -> Outcome[LiveT]:
        if options.only_if_cached:  # never the network, even when the cache is out of play
            return self._gateway_timeout(request, None, f"only_if_cached, and {why}", started)
        self.cache.stats.bypassed += 1
        self._log("bypass", "not cached", why, request, None, started)
        live = await exchange.send(())
        if invalidate and is_unsafe_method(request.method):
            budget = self.cache.new_budget()
            await self._invalidate(request, exchange.head(live), budget, started)
        return Outcome(live=live)

    async def _read(self, request: CacheRequest, key: str, budget: Budget) -> CachedResponse | None:
        cache = self.cache
        entry = await cache.read_entry(key, request_headers=request.headers, budget=budget)
        if (
            entry is not None
            and cache.settings.filter_fn is not None
            and not await self._passes_filter(entry)
        ):
            self._log("ignored", "ignored", "filter_fn refused the stored entry", request, key)
            return None
        return entry

    async def _passes_filter(self, entry: CachedResponse) -> bool:
        filter_fn = self.cache.settings.filter_fn
        if filter_fn is None:
            return True
        result = filter_fn(entry)
        if inspect.isawaitable(result):
            result = await result
        return bool(result)

    async def _coalesced(
        self,
        call: _Request[LiveT],
        decision: Revalidate | Fetch,
        entry: CachedResponse | None,
        completions_before_lookup: int,
    ) -> Outcome[LiveT]:
        """Fetch or revalidate, as the one task of this process doing it for the key."""
        cache = self.cache
        look_again = leader = False
        if isinstance(decision, Fetch) and decision.shareable:
            waiter = cache.inflight.join(call.key)
            if waiter is None:
                leader = True
                # A leader that finished during our lookup may have stored the entry.
                look_again = cache.inflight.completions != completions_before_lookup
            else:
                await waiter
                look_again = True
        try:
            # A leader also coordinates with other processes (a no-op on most backends).
            lock = cache.fetch_lock(call.key) if leader else _no_lock()
            # Other processes read storage once the lock is free: the write must be there.
            locked = leader and not isinstance(lock, nullcontext)
            async with lock as waited_elsewhere:
                if look_again or waited_elsewhere:
                    stored = await self._read(call.request, call.key, call.budget)
                    second = decide_lookup(
                        stored,
                        call.options,
                        cache.now(),
                        settings=cache.settings,
                        request_headers=call.request.headers,
                    )
                    if isinstance(second, UseCached):
                        return self._hit(
                            call.request,
                            call.key,
                            second.entry,
                            why="stored by a concurrent fetch",
                            started=call.started,
                        )
                stale = decision.entry if isinstance(decision, Revalidate) else entry
                outcome = await self._exchange(call, decision, stale)
                if locked:
                    await cache.flush()
                return outcome
        finally:
            if leader:
                cache.inflight.done(call.key)

    async def _exchange(
        self,
        call: _Request[LiveT],
        decision: Revalidate | Fetch,
        stale: CachedResponse | None,
    ) -> Outcome[LiveT]:
        """Send the request (conditionally for a revalidation) and act on the answer.

        ``stale`` is the entry that may answer a failure (stale-if-error), or ``None``.
        """
        cache = self.cache
        exchange = call.exchange
        request = call.request
        try:
            if isinstance(decision, Revalidate):
                live = await exchange.send(decision.headers)
                head = exchange.head(live)
                if head.status == 304:
                    await exchange.release(live)
                    refreshed = await self._refreshed(call, decision.entry, head)
                    if refreshed is not None:
                        return refreshed
                    # The 304 is about another representation: ask without conditions.
                    self._log(
                        "ignored",
                        "revalidation",
                        "the 304 selects no stored entry",
                        request,
                        call.key,
                        call.started,
                    )
                    live = await exchange.send(())
            else:
                live = await exchange.send(())
        except exchange.network_errors as exc:
            fallback = decide_error(
                stale,
                status=None,
                settings=cache.settings,
                now=cache.now(),
                request_headers=request.headers,
            )
            if fallback is None:
                raise
            why = f"stale-if-error: the origin could not be reached ({type(exc).__name__})"
            return self._hit(
                call.request, call.key, fallback.entry, stale=True, why=why, started=call.started
            )
        head = exchange.head(live)
        if head.status >= 500 and stale is not None:
            fallback = decide_error(
                stale,
                status=head.status,
                settings=cache.settings,
                now=cache.now(),
                request_headers=request.headers,
            )
            if fallback is not None:
                await exchange.release(live)
                why = f"stale-if-error: the origin answered {head.status}"
                return self._hit(
                    call.request,
                    call.key,
                    fallback.entry,
                    stale=True,
                    why=why,
                    started=call.started,
                )
        if isinstance(decision, Fetch):
            fetched = _FETCH_REASONS.get(decision.reason, decision.reason)
        else:
            fetched = f"revalidation answered {head.status}"
        outcome = await self._store(call, live, head, fetched)
        if is_unsafe_method(request.method):
            await self._invalidate(request, head, call.budget, call.started)
        return outcome

    async def _refreshed(
        self, call: _Request[LiveT], entry: CachedResponse, head: ResponseHead
    ) -> Outcome[LiveT] | None:
        """A 304 answered: merge its headers, store the entry again, serve the body.

        Returns ``None`` when the 304 does not select ``entry`` (RFC 9111 §4.3.4).
        """
        cache = self.cache
        if not not_modified_selects(entry, head.headers):
            return None
        refreshed, decision = refresh_not_modified(
            entry,
            head.headers,
            url=head.url,
            options=call.options,
            settings=cache.settings,
            now=cache.now(),
            request_headers=call.request.headers,
        )
        if decision.store:
            await cache.store_entry(
                call.key,
                refreshed if cache.settings.store_cookies else without_cookies(refreshed),
                request_headers=call.request.headers,
                keep_until=decision.storage_expires,
                budget=call.budget,
            )
        cache.stats.revalidations += 1
        return self._hit(
            call.request,
            call.key,
            refreshed,
            revalidated=True,
            why="304 Not Modified",
            started=call.started,
        )

    async def _store(
        self, call: _Request[LiveT], live: LiveT, head: ResponseHead, fetched: str
    ) -> Outcome[LiveT]:
        """Decide what to keep of a response from the network, and keep it."""
        cache = self.cache
        settings = cache.settings
        cache.stats.misses += 1
        now = cache.now()
        decision = decide_store(
            method=head.method,
            url=head.url,
            status=head.status,
            options=call.options,
            settings=settings,
            now=now,
            headers=head.headers,
            request_headers=call.request.headers,
        )
        if not decision.store:
            cache.stats.not_stored += 1
            self._log(
                "miss",
                fetched,
                f"not stored: {decision.reason}",
                call.request,
                call.key,
                call.started,
                status=head.status,
                stored=False,
            )
            return Outcome(live=live, cache_key=call.key)
        limit = settings.max_body_size
        length = head.content_length
        if limit is not None and length is not None and length > limit:
            why = f"Content-Length {length} is above max_body_size ({limit})"
            return self._too_large(call, live, fetched, why)
        if limit is not None and length is None:
            return await self._store_while_read(call, live, head, decision, now, fetched)
        live, body = await call.exchange.read(live, limit)
        if body is None:
            why = f"the body grew past max_body_size ({limit}) as it was read"
            return self._too_large(call, live, fetched, why)
        entry, stored = await self._keep(call, head, body, decision, now, fetched)
        return Outcome(entry=entry, live=live, body=body, cache_key=call.key, stored=stored)

    async def _keep(
        self,
        call: _Request[LiveT],
        head: ResponseHead,
        body: bytes,
        decision: StoreDecision,
        now: datetime,
        fetched: str,
        *,
        note: str = "",
    ) -> tuple[CachedResponse, bool]:
        """Build the entry of a body read whole, check it, and write it; whether it was."""
        cache = self.cache
        settings = cache.settings
        entry = entry_from_head(
            head,
            body,
            created_at=now,
            expires=decision.expires,
            redacted_params=settings.redacted_params,
            redacted_headers=settings.redacted_headers,
        )
        unfit = unservable(entry)
        if unfit is not None or (
            settings.filter_fn is not None and not await self._passes_filter(entry)
        ):
            cache.stats.not_stored += 1
            why = f"it could not be served back ({unfit})" if unfit else "filter_fn refused it"
            self._log_kept(call, head, fetched, len(body), f"not stored: {why}{note}", False)
            return entry, False
        report: Callable[[bool], None] | None = None
        if cache.events.listeners or logger.isEnabledFor(logging.DEBUG):

            def report(written: bool) -> None:  # once written, maybe after the response
                outcome = "stored" if written else "not stored: storage refused it"
                self._log_kept(call, head, fetched, len(body), outcome + note, written)

        stored = await cache.store_entry(
            call.key,
            entry if settings.store_cookies else without_cookies(entry),
            aliases=self._alias_keys(call.request, head),
            request_headers=call.request.headers,
            keep_until=decision.storage_expires,
            budget=call.budget,
            on_written=report,
        )
        return entry, stored

    def _log_kept(
        self,
        call: _Request[LiveT],
        head: ResponseHead,
        fetched: str,
        body_bytes: int,
        outcome: str,
        stored: bool,
    ) -> None:
        """The one log line (and event) of a miss whose body was read whole."""
        self._log(
            "miss",
            fetched,
            outcome,
            call.request,
            call.key,
            call.started,
            status=head.status,
            stored=stored,
            body_bytes=body_bytes,
        )

    def _too_large(
        self, call: _Request[LiveT], live: LiveT, fetched: str, why: str
    ) -> Outcome[LiveT]:
        """A response not stored for its size: it streams on to the caller, unbuffered."""
        stats = self.cache.stats
        stats.not_stored += 1
        stats.too_large += 1
        self._log("miss", fetched, f"not stored: {why}", call.request, call.key, call.started)
        return Outcome(live=live, cache_key=call.key)

    async def _store_while_read(
        self,
        call: _Request[LiveT],
        live: LiveT,
        head: ResponseHead,
        decision: StoreDecision,
        now: datetime,
        fetched: str,
    ) -> Outcome[LiveT]:
        """A body of unknown length: store it once the caller has read all of it.

        Nothing is read ahead of the caller. The body is kept as the caller reads it,
        given up on past ``max_body_size``, and stored when it ends, within what is left
        of the request's storage budget. Until then the key has no entry: concurrent
        requests for it go to the network.
        """
        cache = self.cache
        settings = cache.settings

        async def complete(body: bytes) -> None:
            await self._keep(call, head, body, decision, now, fetched, note=" (read by the caller)")

        def overflow() -> None:
            stats = cache.stats
            stats.not_stored += 1
            stats.too_large += 1
            why = f"not stored: the body grew past max_body_size ({settings.max_body_size})"
            self._log("miss", fetched, why, call.request, call.key)

        collector = BodyCollector(settings.max_body_size, complete, overflow)
        streamed = await call.exchange.stream(live, collector)
        reading = "storing as the caller reads (length unknown)"
        self._log("miss", fetched, reading, call.request, call.key, call.started)
        if call.drain:  # nobody will read it: read it here, as far as the limit
            streamed, _body = await call.exchange.read(streamed, settings.max_body_size)
            await call.exchange.release(streamed)
        return Outcome(live=streamed, cache_key=call.key)

    def _alias_keys(self, request: CacheRequest, head: ResponseHead) -> set[str]:
        """Keys of the URLs a redirect chain passed through, pointing at the final entry."""
        if not head.history:
            return set()
        urls = [hop.url for hop in head.history[1:]] + [head.url]
        return {self.cache.create_key(_bodiless(request, "GET", u)) for u in urls}

    async def _invalidate(
        self, request: CacheRequest, head: ResponseHead, budget: Budget, started: float = 0.0
    ) -> None:
        """After a successful unsafe request, drop the entries of its target (RFC 9111 §4.4).

        The GET and HEAD entries of each URL go: the plain request's, and the one a
        request with this request's headers and credentials would have (with every
        variant of either).
        """
        if head.status >= 400:
            return
        cache = self.cache
        urls = invalidated_urls(request.url, head.status, head.headers)
        keys = []
        for target in urls:
            for safe in ("GET", "HEAD"):
                keys.append(cache.url_key(target, safe))
                keys.append(cache.create_key(_bodiless(request, safe, target)))
        cache.stats.invalidations += 1
        self._log(
            "invalidation",
            "invalidated",
            ", ".join(urls),
            request,
            None,
            started,
            status=head.status,
        )
        await cache.invalidate(keys, budget=budget)

    def _refresh_in_background(self, call: _Request[LiveT], decision: StaleWhileRevalidate) -> None:
        """Start the refresh of a stale entry just served (at most one per key)."""
        follow_up: Revalidate | Fetch = (
            Revalidate(decision.entry, decision.headers) if decision.headers else Fetch("expired")
        )

        # Its own budget: a refresh waits on storage for no request.
        background = attrs.evolve(call, budget=self.cache.new_budget(), drain=True)

        async def refresh() -> None:
            outcome = await self._exchange(background, follow_up, None)
            if outcome.live is not None and outcome.body is None:
                await background.exchange.release(outcome.live)

        call.refreshes.start(call.key, refresh)
