"""Explanations: what the cache would do for a request, and why, step by step.

Theory of operation: :mod:`acc.core.flow.explain` gathers the facts (the key, what
storage holds under it, what ``filter_fn`` says, optionally a probe response) and hands
them to :func:`explain_facts`, which asks the policy's own decide functions
(:func:`~acc.core.http.policy.decide_lookup`, :func:`~acc.core.http.policy.decide_store`)
what they decide and words each step: the request, the key and what went into it, the
entry found or not, its freshness and where that came from, the lookup decision and
whether a response from the network would be stored.

Rules this module keeps:

1. Decisions come from the policy, never from a copy of it: an explanation says what
   :func:`decide_lookup` and :func:`decide_store` return for these facts. What this
   module adds is *where* a value came from (which header or setting), recomputed by the
   same helpers the policy uses (:mod:`acc.core.http.freshness`, ``expires_at``).
2. Every step and the explanation carry stable machine codes (``reason``,
   ``store_reason``, :attr:`Step.code`) besides their words, so tools and tests match
   codes, not sentences. :data:`LOOKUP_REASONS` and :data:`STORE_REASONS` list them.
3. Pure: no I/O, no clock (``now`` is an argument), no storage.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Final

import attrs

from acc.core.expiration import DO_NOT_CACHE, NEVER_EXPIRE, ExpirationTime, expires_at
from acc.core.http.cachecontrol import header_values, parse_cache_control
from acc.core.http.decisions import (
    Fetch,
    GatewayTimeout,
    RequestOptions,
    Revalidate,
    StaleWhileRevalidate,
    UseCached,
    _Unset,
)
from acc.core.http.freshness import explicit_lifetime, heuristic_lifetime
from acc.core.http.policy import decide_lookup, decide_store, request_directives
from acc.core.models import CachedResponse, HeaderPairs
from acc.core.settings import CacheSettings

__all__ = [
    "LOOKUP_REASONS",
    "STORE_REASONS",
    "EntryFacts",
    "Explanation",
    "Step",
    "explain_facts",
    "freshness_source",
]

LOOKUP_REASONS: Final = {
    "method_not_allowed": "the method is not in allowed_methods: the cache leaves it alone",
    "no_entry": "nothing is stored for this key",
    "vary_mismatch": "stored responses vary on request headers, and this request's select none",
    "filter_refused": "an entry is stored, but filter_fn refuses it",
    "fresh": "the stored entry is fresh",
    "stale_with_validators": "the entry is stale and has validators: it is revalidated",
    "stale_without_validators": "the entry is stale and has no validator: it is fetched again",
    "stale_while_revalidate": "the entry is stale, inside its stale-while-revalidate window",
    "max_stale": "the entry is stale, and the request's max-stale accepts it",
    "request_directive": "the request's Cache-Control (max-age, min-fresh) rejects the entry",
    "refresh": "refresh was asked",
    "force_refresh": "force_refresh was asked: the stored entry is ignored",
    "only_if_cached": "only_if_cached: no usable entry, so a 504 without the network",
}
"""Every ``Explanation.reason`` code, with what it means."""

STORE_REASONS: Final = {
    "would_store": "a response like this one would be stored",
    "method_not_allowed": "the method is not in allowed_methods",
    "status_not_allowed": "the status is not in allowed_codes",
    "request_no_store": "the request says Cache-Control: no-store",
    "no_store": "the response says Cache-Control: no-store",
    "vary_star": "the response says Vary: *",
    "expires_immediately": "its expiration (the settings') is zero or in the past",
    "stale_on_arrival": "it is stale on arrival, with no validator or stale window",
    "filter_refused": "filter_fn refuses it",
    "not_stored": "the policy refuses it (see the step's words)",
    "depends_on_response": "it depends on the response (no probe was sent)",
    "not_needed": "the cache would not go to the network",
}
"""Every ``Explanation.store_reason`` code, with what it means."""

# decide_store's reasons, by what they start with, and the code each stands for.
_STORE_REASON_CODES: Final = (
    ("method ", "method_not_allowed"),
    ("status ", "status_not_allowed"),
    ("the request says no-store", "request_no_store"),
    ("the response says no-store", "no_store"),
    ("the response says vary", "vary_star"),
    ("expires immediately", "expires_immediately"),
    ("stale on arrival", "stale_on_arrival"),
)


@attrs.frozen(slots=True)
class Step:
    """One step of an explanation.

    Attributes:
        name: ``"request"``, ``"key"``, ``"entry"``, ``"freshness"``, ``"lookup"`` or
            ``"store"``.
        code: What the step found, as a stable code.
        text: The same, in words.
        source: The setting or header that decides, when one does.
    """

    name: str
    code: str
    text: str
    source: str = ""


@attrs.frozen(slots=True)
class Explanation:
    """What the cache would do for one request now, and why.

    Attributes:
        method: The request method.
        url: The request URL.
        key: Its cache key (``None`` when the cache would leave it alone).
        key_inputs: What went into the key, as ``(field, value)`` pairs.
        decision: ``"use"``, ``"stale-while-revalidate"``, ``"revalidate"``, ``"fetch"``,
            ``"504"`` or ``"bypass"``.
        reason: Why, as a code of :data:`LOOKUP_REASONS`.
        would_store: Whether a response from the network would be stored (``None`` when
            that depends on a response not seen).
        store_reason: Why (not), as a code of :data:`STORE_REASONS`.
        steps: The steps, in order.
        entry: The entry found (``None`` for none).
        probe_status: The status of the probe response, when one was sent.
    """

    method: str
    url: str
    key: str | None
    key_inputs: tuple[tuple[str, str], ...]
    decision: str
    reason: str
    would_store: bool | None
    store_reason: str
    steps: tuple[Step, ...]
    entry: CachedResponse | None = None
    probe_status: int | None = None

    def step(self, name: str) -> Step | None:
        """The step called ``name``, or ``None``."""
        for step in self.steps:
            if step.name == name:
                return step
        return None

    @property
    def summary(self) -> str:
        """One sentence: the decision and its reason, and the store verdict."""
        words = {
            "use": "serve the stored entry",
            "stale-while-revalidate": "serve the stale entry and refresh it in the background",
            "revalidate": "revalidate the stored entry with a conditional request",
            "fetch": "fetch from the network",
            "504": "answer 504 without the network",
            "bypass": "leave the request to the network, uncached",
        }[self.decision]
        lookup = self.step("lookup")
        text = f"{words}: {lookup.text}" if lookup is not None else words
        if self.decision in ("revalidate", "fetch", "stale-while-revalidate"):
            store = self.step("store")
            if store is not None:
                text += f"; {store.text}"
        return text

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the explanation (the entry as a summary, without its body)."""
        entry = self.entry
        return {
            "method": self.method,
            "url": self.url,
            "key": self.key,
            "key_inputs": [list(pair) for pair in self.key_inputs],
            "decision": self.decision,
            "reason": self.reason,
            "would_store": self.would_store,
            "store_reason": self.store_reason,
            "summary": self.summary,
            "probe_status": self.probe_status,
            "entry": None
            if entry is None
            else {
                "status": entry.status,
                "url": entry.url,
                "created_at": entry.created_at.isoformat(),
                "expires": None if entry.expires is None else entry.expires.isoformat(),
                "size": len(entry.body),
            },
            "steps": [attrs.asdict(step) for step in self.steps],
        }


@attrs.frozen(slots=True)
class EntryFacts:
    """What storage holds for a key, as :mod:`acc.core.flow.explain` found it.

    Attributes:
        entry: The decoded entry the request selects, or ``None``.
        via: How it was found: ``"key"``, ``"alias"`` (a redirect alias) or
            ``"variant"`` (a Vary variant); ``""`` when not found.
        vary_names: The request headers stored responses vary on (from a vary record).
        variants: How many variants of the key are stored.
        unreadable: Whether bytes were stored but could not be decoded (corrupt,
            tampered, another secret key).
        filter_passed: What ``filter_fn`` said of ``entry`` (``None``: no filter, or no
            entry).
    """

    entry: CachedResponse | None = None
    via: str = ""
    vary_names: tuple[str, ...] = ()
    variants: int = 0
    unreadable: bool = False
    filter_passed: bool | None = None


def _duration(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _expiration_words(value: ExpirationTime) -> str:
    if value is None or (type(value) is int and value == NEVER_EXPIRE):
        return "NEVER_EXPIRE"
    if type(value) is int and value == DO_NOT_CACHE:
        return "DO_NOT_CACHE"
    if isinstance(value, timedelta):
        return _duration(value.total_seconds())
    if isinstance(value, datetime):
        return value.isoformat()
    return f"{value} s"


def _settings_rule(
    url: str, options: RequestOptions, settings: CacheSettings
) -> tuple[str, str, ExpirationTime]:
    """The setting that gives a response for ``url`` its expiration: code, words, value."""
    if not isinstance(options.expire_after, _Unset):
        value = options.expire_after
        return (
            "request_expire_after",
            f"the request's expire_after ({_expiration_words(value)})",
            value,
        )
    matched, value = settings.urls_expire_after.match(url)
    if matched:
        target = url.partition("://")[2] or url
        pattern = next(
            p for regex, p, _v in settings.urls_expire_after.rules if regex.match(target)
        )
        return (
            "urls_expire_after",
            f"urls_expire_after[{pattern!r}] ({_expiration_words(value)})",
            value,
        )
    value = settings.expire_after
    return "expire_after", f"expire_after ({_expiration_words(value)})", value


def freshness_source(
    entry: CachedResponse, options: RequestOptions, settings: CacheSettings
) -> tuple[str, str, bool]:
    """Where ``entry``'s expiry came from: a code, words, and whether it matches.

    The rules of the policy's precedence (its rule 2) are applied to the entry as it was
    stored (its headers, its ``created_at``). The flag is false when the expiry these
    rules give differs from the stored one: the entry was stored with a per-request
    ``expire_after`` or under other settings.
    """
    received = entry.created_at
    if settings.cache_control:
        directives = parse_cache_control(header_values(entry.headers, "cache-control"))
        if directives.no_cache:
            return "no_cache", "the response's Cache-Control: no-cache (stored stale)", True
        lifetime = explicit_lifetime(entry.headers, directives, received)
        if lifetime is not None:
            if directives.max_age is not None:
                code, words = (
                    "cache_control",
                    f"the response's Cache-Control: max-age={directives.max_age}",
                )
            else:
                expires = header_values(entry.headers, "expires")
                code, words = "expires_header", f"the response's Expires: {expires[0]}"
            return code, words, True
        if heuristic_lifetime(entry.headers, entry.status, received) is not None:
            return (
                "heuristic",
                "heuristic freshness: 10% of the time since Last-Modified (at most a day)",
                True,
            )
    code, words, value = _settings_rule(entry.url, options, settings)
    expected = expires_at(value, received)
    matches = (expected is None) == (entry.expires is None) and (
        expected is None
        or entry.expires is None
        or abs((expected - entry.expires).total_seconds()) < 1.0
    )
    return code, words, matches


def _store_code(reason: str) -> str:
    lowered = reason.lower()
    for prefix, code in _STORE_REASON_CODES:
        if lowered.startswith(prefix):
            return code
    return "not_stored"


def _lookup_code(
    decision: object, entry: CachedResponse | None, options: RequestOptions, now: datetime
) -> str:
    if isinstance(decision, GatewayTimeout):
        return "only_if_cached"
    if isinstance(decision, Fetch):
        return {
            "miss": "no_entry",
            "force_refresh": "force_refresh",
            "refresh": "refresh",
        }.get(decision.reason, "stale_without_validators")
    if entry is None:
        return "no_entry"
    stale = entry.is_expired(now)
    if isinstance(decision, UseCached):
        return "max_stale" if stale else "fresh"
    if isinstance(decision, StaleWhileRevalidate):
        return "stale_while_revalidate"
    if isinstance(decision, Revalidate):
        if options.refresh:
            return "refresh"
        return "stale_with_validators" if stale else "request_directive"
    return "fresh"


_DECISIONS: Final = {
    UseCached: "use",
    StaleWhileRevalidate: "stale-while-revalidate",
    Revalidate: "revalidate",
    Fetch: "fetch",
    GatewayTimeout: "504",
}


def explain_facts(
    *,
    method: str,
    url: str,
    request_headers: HeaderPairs,
    key: str | None,
    key_inputs: Iterable[tuple[str, str]],
    key_by: str,
    facts: EntryFacts,
    options: RequestOptions,
    settings: CacheSettings,
    now: datetime,
    probe: CachedResponse | None = None,
    probe_filter_passed: bool | None = None,
) -> Explanation:
    """Word what the policy decides for these facts (see the module docstring).

    Args:
        method: The request method.
        url: The request URL.
        request_headers: The request headers.
        key: The request's key; ``None`` when the method is not cached.
        key_inputs: What went into the key.
        key_by: ``"default"`` or ``"key_fn"``.
        facts: What storage holds for the key.
        options: The request's options.
        settings: The cache's settings.
        now: The current time.
        probe: A response from the network for the request, when one was fetched;
            ``None`` for none.
        probe_filter_passed: What ``filter_fn`` said of ``probe`` (``None``: no filter).
    """
    inputs = tuple(key_inputs)
    steps: list[Step] = []
    upper = method.upper()
    if upper not in settings.allowed_methods:
        allowed = ", ".join(sorted(settings.allowed_methods))
        steps.append(
            Step(
                "request",
                "method_not_allowed",
                f"{upper} is not in allowed_methods ({allowed}): the cache neither looks "
                "up nor stores it",
                "allowed_methods",
            )
        )
        steps.append(
            Step(
                "store",
                "method_not_allowed",
                "not stored: the method is not cached",
                "allowed_methods",
            )
        )
        return Explanation(
            method=upper,
            url=url,
            key=None,
            key_inputs=(),
            decision="bypass",
            reason="method_not_allowed",
            would_store=False,
            store_reason="method_not_allowed",
            steps=tuple(steps),
        )
    steps.append(Step("request", "cacheable", f"{upper} is in allowed_methods", "allowed_methods"))
    described = ", ".join(f"{name}={value}" for name, value in inputs)
    steps.append(
        Step(
            "key",
            key_by,
            f"key {key} from {described}" if key_by == "default" else f"key {key} from key_fn",
            "key_fn" if key_by == "key_fn" else "",
        )
    )
    entry = facts.entry
    vary_source = f"Vary: {', '.join(facts.vary_names)}" if facts.vary_names else ""
    usable = entry
    if entry is None:
        if facts.vary_names and facts.variants:
            values = ", ".join(
                f"{name}={', '.join(header_values(request_headers, name)) or '(absent)'}"
                for name in facts.vary_names
            )
            steps.append(
                Step(
                    "entry",
                    "vary_mismatch",
                    f"the stored responses vary on {', '.join(facts.vary_names)}; this "
                    f"request's {values} selects none of the {facts.variants} stored variant(s)",
                    vary_source,
                )
            )
        elif facts.unreadable:
            steps.append(
                Step(
                    "entry",
                    "no_entry",
                    "bytes are stored but cannot be read (corrupt, or signed with another "
                    "secret_key): a miss, and the flow deletes them",
                    "secret_key" if settings.secret_key else "",
                )
            )
        else:
            steps.append(Step("entry", "no_entry", "no entry is stored under this key"))
    else:
        how = {
            "alias": " through a redirect alias",
            "variant": f" (the variant for {vary_source})",
        }.get(facts.via, "")
        age = _duration((now - entry.created_at).total_seconds())
        steps.append(
            Step(
                "entry",
                "found",
                f"found{how}: {entry.status} {entry.reason}, stored {age} ago, "
                f"{len(entry.body)} bytes of body",
                vary_source if facts.via == "variant" else "",
            )
        )
        if facts.filter_passed is False:
            usable = None
            steps.append(
                Step(
                    "entry",
                    "filter_refused",
                    "filter_fn refuses the stored entry: a miss",
                    "filter_fn",
                )
            )
        code, words, matches = freshness_source(entry, options, settings)
        if entry.expires is None:
            state = "fresh forever (no expiry)"
        elif entry.is_expired(now):
            state = (
                f"stale for {_duration((now - entry.expires).total_seconds())} "
                f"(expired {entry.expires.isoformat(timespec='seconds')})"
            )
        else:
            state = (
                f"fresh for {_duration((entry.expires - now).total_seconds())} more "
                f"(expires {entry.expires.isoformat(timespec='seconds')})"
            )
        note = (
            ""
            if matches
            else " would give another expiry: the entry was stored with a per-request "
            "expire_after or other settings than this cache's"
        )
        validators = (
            "it has validators (ETag/Last-Modified)"
            if entry.has_validators
            else "it has no validator"
        )
        told = f"the current settings' {words}{note}" if note else f"set by {words}"
        steps.append(Step("freshness", code, f"{state}, {told}; {validators}", words))
    decision = decide_lookup(
        usable, options, now, settings=settings, request_headers=request_headers
    )
    reason = _lookup_code(decision, usable, options, now)
    if (
        usable is None
        and entry is not None
        and facts.filter_passed is False
        and reason == "no_entry"
    ):
        reason = "filter_refused"
    if reason == "no_entry" and steps[-1].code == "vary_mismatch":
        reason = "vary_mismatch"
    name = _DECISIONS[type(decision)]
    steps.append(
        Step(
            "lookup",
            reason,
            LOOKUP_REASONS[reason],
            _lookup_source(reason, request_headers, settings),
        )
    )
    would_store, store_reason, store_step = _store_step(
        name, upper, url, request_headers, options, settings, now, probe
    )
    if would_store and probe_filter_passed is False:
        would_store, store_reason = False, "filter_refused"
        store_step = Step(
            "store",
            "filter_refused",
            f"the network answered {probe.status if probe else '?'}: not stored, filter_fn "
            "refuses it",
            "filter_fn",
        )
    steps.append(store_step)
    return Explanation(
        method=upper,
        url=url,
        key=key,
        key_inputs=inputs,
        decision=name,
        reason=reason,
        would_store=would_store,
        store_reason=store_reason,
        steps=tuple(steps),
        entry=entry,
        probe_status=None if probe is None else probe.status,
    )


def _lookup_source(reason: str, request_headers: HeaderPairs, settings: CacheSettings) -> str:
    if reason in ("refresh", "force_refresh", "only_if_cached"):
        return reason
    if reason == "request_directive" or (
        reason == "max_stale"
        and request_directives(request_headers, settings).max_stale is not None
    ):
        return "the request's Cache-Control"
    if reason == "stale_while_revalidate":
        return "stale_while_revalidate"
    if reason == "filter_refused":
        return "filter_fn"
    return ""


def _store_step(
    decision: str,
    method: str,
    url: str,
    request_headers: HeaderPairs,
    options: RequestOptions,
    settings: CacheSettings,
    now: datetime,
    probe: CachedResponse | None,
) -> tuple[bool | None, str, Step]:
    if decision in ("use", "504"):
        return None, "not_needed", Step("store", "not_needed", "no request goes to the network")
    if probe is not None:
        verdict = decide_store(
            method=method,
            url=probe.url,
            status=probe.status,
            options=options,
            settings=settings,
            now=now,
            headers=probe.headers,
            request_headers=request_headers,
        )
        if not verdict.store:
            code = _store_code(verdict.reason)
            source = {
                "status_not_allowed": "allowed_codes",
                "method_not_allowed": "allowed_methods",
                "no_store": "the response's Cache-Control",
                "request_no_store": "the request's Cache-Control",
                "vary_star": "the response's Vary",
            }.get(code, "")
            return (
                False,
                code,
                Step(
                    "store",
                    code,
                    f"the network answered {probe.status}: not stored, {verdict.reason}",
                    source,
                ),
            )
        until = (
            "never expires"
            if verdict.expires is None
            else f"fresh until {verdict.expires.isoformat(timespec='seconds')}"
        )
        return (
            True,
            "would_store",
            Step(
                "store",
                "would_store",
                f"the network answered {probe.status}: it would be stored, {until}",
            ),
        )
    # No response seen: what the request and the settings alone decide.
    verdict = decide_store(
        method=method,
        url=url,
        status=min(settings.allowed_codes, default=200),
        options=options,
        settings=settings,
        now=now,
        request_headers=request_headers,
    )
    if not verdict.store:
        code = _store_code(verdict.reason)
        source = {"request_no_store": "the request's Cache-Control"}.get(code, "")
        if code == "expires_immediately":
            source = _settings_rule(url, options, settings)[1]
        return (
            False,
            code,
            Step("store", code, f"not stored whatever the answer: {verdict.reason}", source),
        )
    codes = ", ".join(str(c) for c in sorted(settings.allowed_codes))
    needs = f"its status is in allowed_codes ({codes})"
    if settings.cache_control:
        needs += ", it does not say no-store or Vary: *"
    if settings.filter_fn is not None:
        needs += ", filter_fn accepts it"
    return (
        None,
        "depends_on_response",
        Step("store", "depends_on_response", f"a response is stored if {needs}", "allowed_codes"),
    )
