"""The request flow: one sequence of a cached request, the same for every client.

Rules this layer keeps:

1. :mod:`.driver` runs every step (key, read, decide, use / serve stale and refresh /
   revalidate / fetch / 504, decide on errors, decide what to store, store, invalidate,
   count, log) and is the only caller of the policy's decide functions and of the
   coalescer.
2. A client binding supplies the I/O of its client only, through the
   :class:`~acc.core.flow.exchange.Exchange` protocol; it holds no caching rule.
3. Dispatch over decision types is exhaustive (``assert_never``): a new decision type
   fails type-checking until the driver handles it.
"""
