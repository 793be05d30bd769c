"""HTTP caching semantics (RFC 9111, RFC 5861, RFC 8246), sans-IO.

Rules this layer keeps:

1. No I/O, no asyncio, no storage, no clock: every function takes the facts it needs
   (headers, the entry, the settings, ``now``) and returns a value or a decision.
2. Each module opens with the rules it keeps, citing the RFC section of each.
3. :mod:`.policy` is the one entry point the flow (:mod:`acc.core.flow`) calls; the
   other modules are its parts: :mod:`.cachecontrol` (directives, dates, entity tags),
   :mod:`.freshness`, :mod:`.vary`, :mod:`.invalidation`, :mod:`.ranges` and
   :mod:`.decisions`.
"""
