"""The exceptions acc raises.

Every error acc raises on purpose is an :class:`AccError`, so callers can catch the
library's failures without catching their own. Configuration mistakes are also
``ValueError``s, because that is what they are and what generic code expects.
"""

from __future__ import annotations

__all__ = ["AccError", "BackendError", "BackendUnavailable", "ConfigError"]


class AccError(Exception):
    """The base of every exception acc raises on purpose."""


class ConfigError(AccError, ValueError):
    """An argument has an invalid value.

    The message always starts with the argument's name, so the mistake can be found
    without reading acc's source.
    """

    def __init__(self, argument: str, problem: str) -> None:
        self.argument = argument
        self.problem = problem
        super().__init__(f"{argument}: {problem}")


class BackendError(AccError):
    """A storage backend failed, or was used after :meth:`close`."""


class BackendUnavailable(BackendError):
    """The storage backend cannot be reached.

    Raised to the caller only with ``strict=True``; otherwise the cache fails open and the
    request goes to the network.
    """


class EntryTooLarge(BackendError):
    """A store cannot hold a value this large (MongoDB's 16 MiB document limit, say).

    Raised by :meth:`BaseCache.write` after the store has removed any older value under
    the key, so that the key reads as a miss. The façade treats it as "not stored": the
    write is not counted, it is not a storage failure (``stats.errors`` stays as it is and
    ``strict=True`` does not raise), and the response is served from the network as is.
    """
