"""The dry run of the flow: gather what an explanation needs, change nothing.

:func:`explain_request` is what :meth:`acc.core.CacheBackend.explain` runs. It takes the
steps the flow would take up to its first decision (key, read with aliases and Vary,
``filter_fn``) and hands the facts to :func:`acc.core.http.explain.explain_facts`,
which words what the policy decides.

Rules this module keeps:

1. It reads storage and never writes, deletes or counts: an unreadable entry is
   reported, not deleted; no ``stats`` counter moves and no event is sent.
2. It reads the stores the way :meth:`~acc.core.CacheBackend.read_entry` does (the key,
   then an alias or a vary record in ``redirects``), so what it finds is what the flow
   would find.
3. The network is used only through the ``probe`` the caller gives, once, and only when
   the flow would go to the network; what it answers is never stored.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

from acc.core.codec import Codec, DecodeError
from acc.core.http.decisions import RequestOptions
from acc.core.http.explain import EntryFacts, Explanation, explain_facts
from acc.core.http.vary import decode_vary_record, variant_key
from acc.core.keys import CacheRequest, key_inputs
from acc.core.models import CachedResponse
from acc.core.settings import CacheSettings
from acc.core.storage.base import BaseCache

__all__ = ["ExplainableCache", "ProbeCallable", "explain_request"]

ProbeCallable = Callable[[CacheRequest], Awaitable[CachedResponse]]
"""``async def probe(request) -> CachedResponse``: sends the request, body read."""


class ExplainableCache(Protocol):
    """What a dry run needs of the cache (:class:`~acc.core.CacheBackend`)."""

    settings: CacheSettings
    codec: Codec
    responses: BaseCache
    redirects: BaseCache

    def now(self) -> datetime:
        """The current time (the cache's clock)."""
        ...

    def create_key(self, request: CacheRequest) -> str:
        """The key of ``request``."""
        ...


async def _passes(settings: CacheSettings, entry: CachedResponse) -> bool | None:
    filter_fn = settings.filter_fn
    if filter_fn is None:
        return None
    result = filter_fn(entry)
    if inspect.isawaitable(result):
        result = await result
    return bool(result)


async def _find(cache: ExplainableCache, key: str, request: CacheRequest) -> EntryFacts:
    """What storage holds for ``key`` (rule 2), without changing it (rule 1)."""
    data = await cache.responses.read(key)
    found_key, via = key, "key"
    names: tuple[str, ...] = ()
    variants = 0
    if data is None:
        target = await cache.redirects.read(key)
        if target is None:
            return EntryFacts()
        try:  # aliases and vary records are codec records, bound to the key they answer
            lead = cache.codec.decode_record(target, key=key)
        except DecodeError:
            return EntryFacts(unreadable=True)
        record = decode_vary_record(lead)
        if record is None:
            found_key, via = lead.decode("utf-8", "replace"), "alias"
        else:
            names, variants = record.names, len(record.variants)
            found_key, via = variant_key(key, record.names, request.headers), "variant"
        data = await cache.responses.read(found_key)
        if data is None:
            return EntryFacts(vary_names=names, variants=variants)
    try:
        entry = cache.codec.decode(data, key=found_key)
    except DecodeError:
        return EntryFacts(vary_names=names, variants=variants, unreadable=True)
    return EntryFacts(
        entry=entry,
        via=via,
        vary_names=names,
        variants=variants,
        filter_passed=await _passes(cache.settings, entry),
    )


async def explain_request(
    cache: ExplainableCache,
    request: CacheRequest,
    options: RequestOptions,
    *,
    probe: ProbeCallable | None = None,
) -> Explanation:
    """Explain what the flow would do for ``request`` now (see the module docstring)."""
    settings = cache.settings
    method = request.method.upper()
    if method not in settings.allowed_methods:
        return explain_facts(
            method=method,
            url=request.url,
            request_headers=request.headers,
            key=None,
            key_inputs=(),
            key_by="default",
            facts=EntryFacts(),
            options=options,
            settings=settings,
            now=cache.now(),
        )
    key = cache.create_key(request)
    key_by = "key_fn" if settings.key_fn is not None else "default"
    inputs = key_inputs(request, settings.key_settings) if key_by == "default" else []
    facts = EntryFacts() if options.force_refresh else await _find(cache, key, request)
    now = cache.now()
    first = explain_facts(
        method=method,
        url=request.url,
        request_headers=request.headers,
        key=key,
        key_inputs=inputs,
        key_by=key_by,
        facts=facts,
        options=options,
        settings=settings,
        now=now,
    )
    if probe is None or first.decision not in ("fetch", "revalidate", "stale-while-revalidate"):
        return first
    answer = await probe(request)
    return explain_facts(
        method=method,
        url=request.url,
        request_headers=request.headers,
        key=key,
        key_inputs=inputs,
        key_by=key_by,
        facts=facts,
        options=options,
        settings=settings,
        now=now,
        probe=answer,
        probe_filter_passed=await _passes(settings, answer),
    )
