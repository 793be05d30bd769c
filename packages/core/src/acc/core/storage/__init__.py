"""Storage: the port every backend implements, and the stores acc-core ships.

Rules this layer keeps:

1. Storage is bytes in, bytes out. Nothing here knows HTTP, the codec's format or the
   request flow: it stores what the façade hands it under the key it is given.
2. :class:`BaseCache` (in :mod:`acc.core.storage.base`) is the port; :mod:`.memory`,
   :mod:`.near` (a bounded local copy in front of a remote store), :mod:`.sharing` (one
   connection shared by a backend's stores) and :mod:`.memo` (decoded entries reused
   while a store returns the same bytes) are built on it, and :mod:`.lru` is the one
   bounded LRU they share.
"""

from acc.core.storage.base import SPLIT_PROBE, BaseCache, Splitter, join_parts

__all__ = ["SPLIT_PROBE", "BaseCache", "Splitter", "join_parts"]
