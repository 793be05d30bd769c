"""What a client binding's ``cache`` argument means, and where its settings live.

Every binding (the aiohttp session, the httpx transport and client) accepts the same
``cache`` argument, so they share one reading of it here rather than each keeping a copy
that could drift: ``None`` is a new in-memory cache, a string is a backend URL resolved by
scheme (:meth:`~acc.core.CacheBackend.from_url`), and a backend is used as it is.

Settings belong to the backend, which several sessions or clients may share, never to a
session or client. :func:`refuse_settings` gives a binding's class an attribute for each
setting name that raises an ``AttributeError`` saying where the setting is, so that
``session.expire_after = 60`` (which aiohttp-client-cache's guides show) is never an
assignment that silently changes nothing.
"""

from __future__ import annotations

import attrs

from acc.core.backend import CacheBackend
from acc.core.errors import ConfigError
from acc.core.settings import CacheSettings

__all__ = ["SETTING_NAMES", "refuse_settings", "resolve_cache"]

SETTING_NAMES: tuple[str, ...] = tuple(
    field.name
    for field in attrs.fields(CacheSettings)
    # Derived from the others, not options a user gives.
    if field.name not in {"key_settings", "expire_after_set", "allowed_codes_set"}
)
"""The names of a backend's settings (``cache_name``, ``expire_after``, ...)."""


class _OnTheBackend:
    """An attribute of a session or client that says the setting is the backend's."""

    def __init__(self, name: str) -> None:
        self.name = name

    def _error(self, owner: object) -> AttributeError:
        kind = type(owner).__name__
        return AttributeError(
            f"{kind} has no setting {self.name!r}: settings belong to its cache backend "
            f"(which other sessions or clients may share); read or assign "
            f"`.cache.{self.name}` instead, e.g. `session.cache.{self.name} = ...`"
        )

    def __get__(self, owner: object, owner_type: type | None = None) -> object:
        if owner is None:
            return self
        raise self._error(owner)

    def __set__(self, owner: object, value: object) -> None:
        raise self._error(owner)


def refuse_settings(cls: type) -> None:
    """Make every setting name an attribute of ``cls`` that points to ``.cache.<name>``.

    Reading ``instance.expire_after`` or assigning it raises ``AttributeError`` with the
    place of the setting. Names ``cls`` already defines are left as they are.
    """
    for name in SETTING_NAMES:
        if not hasattr(cls, name):
            setattr(cls, name, _OnTheBackend(name))


def resolve_cache(cache: CacheBackend | str | None) -> CacheBackend:
    """Return the backend a binding should use for its ``cache`` argument.

    Raises:
        ConfigError: ``cache`` is none of the three accepted kinds, or a URL whose
            scheme no installed backend handles.
    """
    if cache is None:
        return CacheBackend()
    if isinstance(cache, CacheBackend):
        return cache
    if isinstance(cache, str):
        return CacheBackend.from_url(cache)
    raise ConfigError("cache", f"expected a CacheBackend, a URL string or None, not {cache!r}")
