"""Cache keys (acc.core.keys): which requests share an entry, and what never leaks."""

from __future__ import annotations

import hashlib
import re
import string
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acc.core.keys import (
    CREDENTIAL_HEADERS,
    KEY_VERSION,
    REDACTED,
    CacheRequest,
    KeySettings,
    create_key,
    normalize_url,
    redact_headers,
    redact_url,
)

URL = "https://example.com/items"
HEX32 = re.compile(r"[0-9a-f]{32}")


def key(
    method: str = "GET",
    url: str = URL,
    *,
    headers: tuple[tuple[str, str], ...] = (),
    body_kind: str = "none",
    body: Any = None,
    credentials: tuple[str, ...] = (),
    settings: KeySettings | None = None,
) -> str:
    request = CacheRequest(
        method=method,
        url=url,
        headers=headers,
        body_kind=body_kind,
        body=body,
        credentials=credentials,
    )
    return create_key(request) if settings is None else create_key(request, settings)


# -- pinned sample keys ----------------------------------------------------------------------
#
# These hex strings were computed once with the default KeySettings and are pinned ON
# PURPOSE. Keys are stable across releases: every entry stored by an earlier version is
# found by the next one only if its key is unchanged. If this test fails, a change altered
# the keys of existing caches (every user's cache would silently go cold). That is a
# breaking change: do not update these values without bumping acc.core.keys.KEY_VERSION and
# announcing it in the changelog. (KEY_VERSION acc-key-2: repeated query parameters and
# form fields keep their order.)

PINNED_KEYS = [
    ("get_root", CacheRequest("GET", "https://example.com/"), "160f4efb8a5451957b3ead7c4d10861f"),
    (
        "get_query",
        CacheRequest("GET", "https://api.example.com/v1/items?page=2&q=caf%C3%A9&sort=name"),
        "1600763eff6a3450b314802ecd1180ee",
    ),
    (
        "head_port",
        CacheRequest("HEAD", "http://example.com:8080/status"),
        "a4ce5896843590979f0687dd1d1bc739",
    ),
    (
        "post_form",
        CacheRequest(
            "POST",
            "https://example.com/login",
            body_kind="form",
            body=(("user", "alice"), ("remember", "1")),
        ),
        "a0f85e99bdd4d00d6be250d69b6e8752",
    ),
    (
        "post_json",
        CacheRequest(
            "POST",
            "https://example.com/api/search",
            body_kind="json",
            body={"query": "cats", "limit": 10, "filters": {"colour": ["black", "white"]}},
        ),
        "ba4006abb8171ea72b83f738ddd6b9e7",
    ),
    (
        "put_bytes",
        CacheRequest(
            "PUT", "https://example.com/blob/1", body_kind="bytes", body=b"\x00\x01binary\xff"
        ),
        "58e89b7707ae06df2af32e82c1d182df",
    ),
    (
        "get_auth",
        CacheRequest(
            "GET",
            "https://example.com/me",
            headers=(("Authorization", "Bearer abc123"), ("Accept", "application/json")),
        ),
        "f5544546547f2913366e86ecdbdf9dd3",
    ),
    (
        "get_repeated_params",
        CacheRequest("GET", "https://example.com/search?tag=b&q=x&tag=a"),
        "f3d3f1b98e28c6d68506f2175abeb698",
    ),
    (
        "post_repeated_form_field",
        CacheRequest(
            "POST",
            "https://example.com/filter",
            body_kind="form",
            body=(("tag", "b"), ("q", "x"), ("tag", "a")),
        ),
        "77a355691418595976ba76ce9e64b7bb",
    ),
]


@pytest.mark.parametrize(
    ("request_", "expected"),
    [(request, expected) for _name, request, expected in PINNED_KEYS],
    ids=[name for name, _request, _expected in PINNED_KEYS],
)
def test_pinned_sample_keys(request_: CacheRequest, expected: str) -> None:
    assert create_key(request_) == expected
    assert create_key(request_, KeySettings()) == expected


def test_pinned_keys_are_distinct() -> None:
    assert len({expected for _name, _request, expected in PINNED_KEYS}) == len(PINNED_KEYS)


# -- what does not change a key --------------------------------------------------------------


def test_key_shape() -> None:
    assert HEX32.fullmatch(key())


def test_param_order_does_not_matter() -> None:
    assert key(url=f"{URL}?a=1&b=2&c=3") == key(url=f"{URL}?c=3&a=1&b=2")
    # Names are sorted, a repeated name's values keep their order among themselves.
    assert key(url=f"{URL}?a=1&b=2&a=3") == key(url=f"{URL}?b=2&a=1&a=3")


def test_repeated_params_keep_their_order() -> None:
    # Issue 12, item 7: most servers read the first value, so these are two requests.
    assert key(url=f"{URL}?a=1&a=2") != key(url=f"{URL}?a=2&a=1")
    assert normalize_url(f"{URL}?b=x&a=2&a=1") == f"{URL}?a=2&a=1&b=x"
    assert key("POST", body_kind="form", body=(("a", "1"), ("a", "2"))) != key(
        "POST", body_kind="form", body=(("a", "2"), ("a", "1"))
    )
    assert key("POST", body_kind="form", body=(("b", "x"), ("a", "1"), ("a", "2"))) == key(
        "POST", body_kind="form", body=(("a", "1"), ("b", "x"), ("a", "2"))
    )


def test_key_version_is_acc_key_2() -> None:
    # Bumped with the order of repeated parameters; the pins above depend on it.
    assert KEY_VERSION == b"acc-key-2"


def test_url_spelling_does_not_matter() -> None:
    base = key(url="https://example.com/items")
    assert key(url="HTTPS://EXAMPLE.com/items") == base  # scheme and host case
    assert key(url="https://example.com:443/items") == base  # default port
    assert key(url="https://example.com/items#section-2") == base  # fragment
    assert key(url="http://example.com:80/x") == key(url="http://example.com/x")
    assert key(url="https://example.com") == key(url="https://example.com/")
    assert key(url=f"{URL}?q=a+b") == key(url=f"{URL}?q=a%20b")


def test_method_case_does_not_matter() -> None:
    assert key("get") == key("GET")


# -- what does change a key ------------------------------------------------------------------


def test_different_requests_differ() -> None:
    assert key("GET") != key("HEAD")
    assert key(url="https://example.com/a") != key(url="https://example.com/b")
    assert key(url="https://example.com/a") != key(url="http://example.com/a")
    assert key(url="https://example.com:8443/a") != key(url="https://example.com/a")
    assert key(url="https://example.com/A") != key(url="https://example.com/a")  # path case
    assert key(url=f"{URL}?a=1") != key(url=f"{URL}?a=2")
    assert key(url=f"{URL}?a=1") != key(url=URL)


def test_form_and_json_with_the_same_content_differ() -> None:
    form = key("POST", body_kind="form", body=(("a", "1"),))
    json_ = key("POST", body_kind="json", body={"a": "1"})
    assert form != json_


def test_bodies() -> None:
    none = key("POST")
    assert key("POST", body_kind="bytes", body=b"payload") != none
    assert key("POST", body_kind="bytes", body=b"payload") != key(
        "POST", body_kind="bytes", body=b"other"
    )
    # Length-prefixed fields: moving bytes between fields cannot collide.
    assert key("POST", body_kind="form", body=(("ab", "c"),)) != key(
        "POST", body_kind="form", body=(("a", "bc"),)
    )


def test_json_and_form_bodies_are_canonical() -> None:
    assert key("POST", body_kind="json", body={"a": 1, "b": [1, 2]}) == key(
        "POST", body_kind="json", body={"b": [1, 2], "a": 1}
    )
    assert key("POST", body_kind="form", body=(("a", "1"), ("b", "2"))) == key(
        "POST", body_kind="form", body=(("b", "2"), ("a", "1"))
    )
    assert key("POST", body_kind="json", body={"a": 1}) != key(
        "POST", body_kind="json", body={"a": 2}
    )


def test_json_body_with_mixed_key_types_is_keyed() -> None:
    # The client serialises {1: ..., "b": ...} fine; keying it must not crash the request.
    mixed = key("POST", body_kind="json", body={1: "a", "b": 2})
    assert HEX32.fullmatch(mixed)
    assert mixed == key("POST", body_kind="json", body={"b": 2, 1: "a"})
    assert mixed != key("POST", body_kind="json", body={1: "a", "b": 3})
    # json sends {1: "a"} as {"1": "a"}: the same request on the wire, the same key.
    assert mixed == key("POST", body_kind="json", body={"1": "a", "b": 2})


def test_unknown_body_kind_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown body kind"):
        key("POST", body_kind="multipart", body=b"x")


# -- ignored_params --------------------------------------------------------------------------


IGNORED = KeySettings(ignored_params=frozenset({"token", "X-Api-Key"}))


def test_ignored_params_leave_the_query() -> None:
    plain = key(url=f"{URL}?a=1", settings=IGNORED)
    assert key(url=f"{URL}?a=1&token=secret1", settings=IGNORED) == plain
    assert key(url=f"{URL}?token=secret2&a=1", settings=IGNORED) == plain
    assert key(url=f"{URL}?a=2&token=secret1", settings=IGNORED) != plain
    # Without the setting the token counts.
    assert key(url=f"{URL}?a=1&token=secret1") != key(url=f"{URL}?a=1")


def test_ignored_params_leave_form_fields() -> None:
    plain = key("POST", body_kind="form", body=(("a", "1"),), settings=IGNORED)
    assert (
        key("POST", body_kind="form", body=(("a", "1"), ("token", "x")), settings=IGNORED) == plain
    )
    assert (
        key("POST", body_kind="form", body=(("token", "y"), ("a", "1")), settings=IGNORED) == plain
    )


def test_ignored_params_leave_top_level_json_keys() -> None:
    plain = key("POST", body_kind="json", body={"a": 1}, settings=IGNORED)
    assert key("POST", body_kind="json", body={"a": 1, "token": "x"}, settings=IGNORED) == plain
    # Only top-level keys: a nested "token" still counts.
    nested_1 = key("POST", body_kind="json", body={"a": {"token": "x"}}, settings=IGNORED)
    nested_2 = key("POST", body_kind="json", body={"a": {"token": "y"}}, settings=IGNORED)
    assert nested_1 != nested_2


@pytest.mark.parametrize(
    "settings",
    [
        KeySettings(ignored_params=frozenset({"X-Api-Key"}), include_headers=True),
        KeySettings(ignored_params=frozenset({"x-api-key"}), include_headers=True),
        KeySettings(ignored_params=frozenset({"X-Api-Key"}), match_headers=("X-Api-Key", "Accept")),
    ],
)
def test_ignored_params_leave_header_names(settings: KeySettings) -> None:
    one = key(headers=(("X-API-KEY", "k1"), ("Accept", "text/html")), settings=settings)
    two = key(headers=(("x-api-key", "k2"), ("Accept", "text/html")), settings=settings)
    none = key(headers=(("Accept", "text/html"),), settings=settings)
    other_accept = key(
        headers=(("X-Api-Key", "k1"), ("Accept", "application/json")), settings=settings
    )
    assert one == two == none
    assert other_accept != one


# -- credential headers and parameters (issue 12, item 6) -------------------------------------


@pytest.mark.parametrize("name", ["X-Api-Key", "Api-Key", "X-Auth-Token", "X-Access-Token"])
def test_api_key_headers_are_credentials_by_default(name: str) -> None:
    alice = key(headers=((name, "alice-key"),))
    bob = key(headers=((name.lower(), "bob-key"),))
    anonymous = key()
    assert len({alice, bob, anonymous}) == 3
    assert key(headers=((name.upper(), "alice-key"),)) == alice
    # include_headers and match_headers never key a credential by its clear value.
    for settings in (
        KeySettings(include_headers=True),
        KeySettings(match_headers=(name,)),
    ):
        assert key(headers=((name, "alice-key"),), settings=settings) == key(
            headers=((name, "alice-key"),)
        )


def test_credential_headers_extend_the_defaults() -> None:
    extended = CREDENTIAL_HEADERS | {"x-tenant-secret"}
    settings = KeySettings(credential_headers=extended)
    alice = key(headers=(("X-Tenant-Secret", "a"),), settings=settings)
    bob = key(headers=(("X-Tenant-Secret", "b"),), settings=settings)
    assert alice != bob
    assert key(settings=settings) not in (alice, bob)
    # Without the setting the header does not count at all (entries are shared).
    assert key(headers=(("X-Tenant-Secret", "a"),)) == key(headers=(("X-Tenant-Secret", "b"),))
    # Authorization stays a credential.
    assert key(headers=(("Authorization", "x"),), settings=settings) != key(settings=settings)


def test_credential_params_are_keyed_by_hash_and_leave_the_url() -> None:
    settings = KeySettings(credential_params=frozenset({"api_key"}))
    alice = key(url=f"{URL}?q=1&api_key=alice", settings=settings)
    bob = key(url=f"{URL}?api_key=bob&q=1", settings=settings)
    anonymous = key(url=f"{URL}?q=1", settings=settings)
    assert len({alice, bob, anonymous}) == 3
    assert key(url=f"{URL}?api_key=alice&q=1", settings=settings) == alice
    assert key(url=f"{URL}?q=2&api_key=alice", settings=settings) != alice
    # The key material never holds the value in clear: the URL part drops it ...
    assert "alice" not in normalize_url(f"{URL}?q=1&api_key=alice", frozenset({"api_key"}))
    # ... and ignoring the name wins over keying it (as for Authorization).
    both = KeySettings(
        ignored_params=frozenset({"api_key"}), credential_params=frozenset({"api_key"})
    )
    assert key(url=f"{URL}?q=1&api_key=a", settings=both) == key(
        url=f"{URL}?q=1&api_key=b", settings=both
    )


# -- headers ---------------------------------------------------------------------------------


def test_headers_are_ignored_by_default() -> None:
    assert key(headers=(("Accept", "text/html"),)) == key(headers=(("Accept", "application/json"),))
    assert key(headers=(("Accept", "text/html"),)) == key()


def test_include_headers() -> None:
    on = KeySettings(include_headers=True)
    html = key(headers=(("Accept", "text/html"),), settings=on)
    assert html != key(headers=(("Accept", "application/json"),), settings=on)
    assert html != key(settings=on)
    assert html != key(headers=(("Accept", "text/html"),))  # include_headers=False
    # Header name case and order do not matter.
    assert key(headers=(("A", "1"), ("B", "2")), settings=on) == key(
        headers=(("b", "2"), ("a", "1")), settings=on
    )


def test_match_headers_selects_only_named_headers() -> None:
    settings = KeySettings(match_headers=("Accept",))
    base = key(headers=(("Accept", "text/html"), ("User-Agent", "a")), settings=settings)
    assert key(headers=(("accept", "text/html"), ("User-Agent", "b")), settings=settings) == base
    assert key(headers=(("Accept", "text/html"),), settings=settings) == base
    assert (
        key(headers=(("Accept", "application/json"), ("User-Agent", "a")), settings=settings)
        != base
    )


def test_match_headers_absent_and_empty_differ() -> None:
    settings = KeySettings(match_headers=("Accept-Language",))
    absent = key(settings=settings)
    empty = key(headers=(("Accept-Language", ""),), settings=settings)
    filled = key(headers=(("Accept-Language", "de"),), settings=settings)
    assert len({absent, empty, filled}) == 3


# -- credentials -----------------------------------------------------------------------------


def test_different_authorization_values_give_different_keys() -> None:
    alice = key(headers=(("Authorization", "Bearer alice"),))
    bob = key(headers=(("Authorization", "Bearer bob"),))
    anonymous = key()
    assert len({alice, bob, anonymous}) == 3
    assert key(headers=(("authorization", "Bearer alice"),)) == alice
    assert key(headers=(("Authorization", "Bearer alice"),)) == alice


@pytest.mark.parametrize(
    "settings",
    [
        KeySettings(),
        KeySettings(include_headers=True),
        KeySettings(match_headers=("Accept",)),
        KeySettings(match_headers=("Authorization", "Cookie", "Proxy-Authorization")),
    ],
)
@pytest.mark.parametrize("header", ["Authorization", "Cookie", "Proxy-Authorization"])
def test_credential_headers_always_separate_keys(settings: KeySettings, header: str) -> None:
    one = key(headers=((header, "secret-1"),), settings=settings)
    two = key(headers=((header, "secret-2"),), settings=settings)
    none = key(settings=settings)
    assert len({one, two, none}) == 3
    assert key(headers=((header, "secret-1"),), settings=settings) == one


def test_extra_credentials_separate_keys() -> None:
    basic_a = key(credentials=("basic:alice:pw",))
    basic_b = key(credentials=("basic:bob:pw",))
    assert len({basic_a, basic_b, key()}) == 3
    assert key(credentials=("basic:alice:pw",)) == basic_a
    # Order of extra material does not matter; content does.
    assert key(credentials=("a", "b")) == key(credentials=("b", "a"))
    assert key(credentials=("a", "b")) != key(credentials=("a",))


def test_url_userinfo_separates_keys() -> None:
    alice = key(url="https://alice:pw@example.com/items")
    bob = key(url="https://bob:pw@example.com/items")
    anonymous = key(url="https://example.com/items")
    assert len({alice, bob, anonymous}) == 3
    assert key(url="https://alice:pw@example.com/items") == alice


def test_credentials_never_reach_the_key_material(monkeypatch: pytest.MonkeyPatch) -> None:
    # The key is a hash; check also that the material hashed into it only holds a
    # digest of the credential, never the credential itself.
    seen: list[bytes] = []
    real_blake2b = hashlib.blake2b

    def spy(data: bytes = b"", **kwargs: Any) -> Any:
        seen.append(bytes(data))
        return real_blake2b(data, **kwargs)

    monkeypatch.setattr(hashlib, "blake2b", spy)
    secrets = [
        "Bearer TOPSECRET1",
        "session=TOPSECRET2",
        "Basic TOPSECRET3",
        "TOPSECRET4",
        "TOPSECRET5",
    ]
    result = key(
        url="https://user:TOPSECRET5@example.com/items",
        headers=(
            ("Authorization", secrets[0]),
            ("Cookie", secrets[1]),
            ("Proxy-Authorization", secrets[2]),
        ),
        credentials=(secrets[3],),
        settings=KeySettings(include_headers=True),
    )
    assert len(seen) == 1
    material = seen[0]
    assert b"TOPSECRET" not in material
    assert real_blake2b(material, digest_size=16).hexdigest() == result
    assert "TOPSECRET" not in result


# -- redaction -------------------------------------------------------------------------------


def test_redact_headers() -> None:
    headers = (
        ("Authorization", "Bearer x"),
        ("cookie", "sid=1"),
        ("PROXY-AUTHORIZATION", "Basic y"),
        ("X-Api-Key", "k"),
        ("Accept", "text/html"),
        ("User-Agent", "acc"),
    )
    redacted = redact_headers(headers, frozenset({"x-api-key"}))
    assert redacted == (
        ("Authorization", REDACTED),
        ("cookie", REDACTED),
        ("PROXY-AUTHORIZATION", REDACTED),
        ("X-Api-Key", REDACTED),
        ("Accept", "text/html"),
        ("User-Agent", "acc"),
    )
    # X-Api-Key is a credential by default (issue 12, item 6); other names are not.
    assert redact_headers(headers, frozenset())[3] == ("X-Api-Key", REDACTED)
    assert redact_headers((("X-Custom-Key", "c"),), frozenset()) == (("X-Custom-Key", "c"),)
    assert redact_headers(
        (("X-Custom-Key", "c"),), frozenset(), CREDENTIAL_HEADERS | {"x-custom-key"}
    ) == (("X-Custom-Key", REDACTED),)


def test_redact_url() -> None:
    ignored = frozenset({"token"})
    assert (
        redact_url("https://user:pw@example.com/p?token=abc&a=1#frag", ignored)
        == "https://example.com/p?token=REDACTED&a=1#frag"
    )
    assert redact_url("https://example.com/p?a=1&b=2", ignored) == "https://example.com/p?a=1&b=2"
    assert redact_url("https://u:p@example.com/", frozenset()) == "https://example.com/"
    redacted = redact_url("https://example.com/?token=s3cret&token=other", ignored)
    assert "s3cret" not in redacted
    assert "other" not in redacted


# -- normalize_url ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://Example.COM:443/a/b?b=2&a=1#frag", "https://example.com/a/b?a=1&b=2"),
        ("http://example.com", "http://example.com/"),
        ("http://example.com:80/x", "http://example.com/x"),
        ("https://example.com:80/x", "https://example.com:80/x"),
        ("http://example.com:8080/", "http://example.com:8080/"),
        ("http://user:pw@example.com/x", "http://example.com/x"),
        ("http://example.com/?q=a+b", "http://example.com/?q=a%20b"),
        ("http://example.com/a b", "http://example.com/a%20b"),
        ("http://[::1]:80/", "http://[::1]/"),
        ("http://[::1]:8080/p", "http://[::1]:8080/p"),
        ("https://example.com/?b=&a", "https://example.com/?a=&b="),
        ("https://example.com/caf%C3%A9?x=%7E", "https://example.com/caf%C3%A9?x=~"),
    ],
)
def test_normalize_url(url: str, expected: str) -> None:
    assert normalize_url(url) == expected
    assert normalize_url(expected) == expected  # idempotent


def test_normalize_url_drops_ignored_params() -> None:
    ignored = frozenset({"token"})
    assert normalize_url("https://example.com/?token=2&a=1", ignored) == "https://example.com/?a=1"
    assert normalize_url("https://example.com/?token=2", ignored) == "https://example.com/"


# -- properties ------------------------------------------------------------------------------

# HTTP cannot carry lone surrogates, so text strategies exclude them.
TEXT = st.text(st.characters(codec="utf-8"), max_size=30)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)
BODIES = st.one_of(
    st.tuples(st.just("none"), st.none()),
    st.tuples(st.just("bytes"), st.binary(max_size=200)),
    st.tuples(st.just("form"), st.lists(st.tuples(TEXT, TEXT), max_size=5).map(tuple)),
    st.tuples(st.just("json"), JSON),
)
HEADERS = st.lists(st.tuples(TEXT.filter(bool), TEXT), max_size=5).map(tuple)
SETTINGS = st.builds(
    KeySettings,
    ignored_params=st.frozensets(TEXT, max_size=3),
    include_headers=st.booleans(),
    match_headers=st.lists(TEXT.filter(bool), max_size=3).map(tuple),
)


@given(
    method=TEXT.filter(bool),
    url=TEXT,
    body=BODIES,
    headers=HEADERS,
    credentials=st.lists(TEXT, max_size=3).map(tuple),
    settings=SETTINGS,
)
def test_key_is_32_lowercase_hex(
    method: str,
    url: str,
    body: tuple[str, Any],
    headers: tuple[tuple[str, str], ...],
    credentials: tuple[str, ...],
    settings: KeySettings,
) -> None:
    request = CacheRequest(method, url, headers, body[0], body[1], credentials)
    try:
        urlsplit(url)
    except ValueError as exc:
        # Only a URL the standard library cannot parse at all is refused, and loudly.
        with pytest.raises(ValueError, match=re.escape(str(exc))):
            create_key(request, settings)
        return
    result = create_key(request, settings)
    assert HEX32.fullmatch(result)
    assert create_key(request, settings) == result


QUERY_TEXT = st.text(string.ascii_letters + string.digits + " -_.~!$&'()*+,;=:@/?%éü", max_size=10)


@given(
    pairs=st.lists(st.tuples(QUERY_TEXT, QUERY_TEXT), min_size=1, max_size=8),
    data=st.data(),
)
def test_query_permutation_gives_the_same_key(
    pairs: list[tuple[str, str]], data: st.DataObject
) -> None:
    # Any reordering that keeps the values of each name in their order (item 7).
    shuffled_names = [name for name, _value in data.draw(st.permutations(pairs))]
    values: dict[str, list[str]] = {}
    for name, value in pairs:
        values.setdefault(name, []).append(value)
    shuffled = [(name, values[name].pop(0)) for name in shuffled_names]
    first = key(url=f"{URL}?{urlencode(pairs)}")
    second = key(url=f"{URL}?{urlencode(shuffled)}")
    assert first == second


# -- memoised keys are the same keys ------------------------------------------------------------


@given(
    path=st.text(alphabet=string.ascii_letters + "/%-._~ é", max_size=12),
    query=st.lists(
        st.tuples(st.text(string.ascii_lowercase, max_size=3), st.text(max_size=3)), max_size=3
    ),
    method=st.sampled_from(["GET", "get", "HEAD"]),
    ignored=st.frozensets(st.sampled_from(["a", "b", "token"]), max_size=2),
)
def test_memoised_keys_equal_keys_computed_afresh(
    path: str, query: list[tuple[str, str]], method: str, ignored: frozenset[str]
) -> None:
    from acc.core.keys import _key, _normalize

    url = f"https://Example.COM:443/{path}?{urlencode(query)}"
    settings = KeySettings(ignored_params=ignored)
    request = CacheRequest(method, url)
    assert create_key(request, settings) == _key(request, settings)
    assert create_key(request, settings) == create_key(request, settings)  # now memoised
    assert normalize_url(url, ignored) == _normalize(url, ignored)


def test_normalize_url_accepts_any_set_of_ignored_names() -> None:
    url = "https://example.com/?b=2&a=1&token=x"
    expected = "https://example.com/?a=1&b=2"
    assert normalize_url(url, frozenset({"token"})) == expected
    assert normalize_url(url, {"token"}) == expected  # type: ignore[arg-type]


def test_match_headers_requests_are_never_keyed_as_plain_requests() -> None:
    # With match_headers, a request with no headers has "absent" markers in its key: it
    # must not share the memoised key of the same URL under other settings.
    plain = key()
    matched = key(settings=KeySettings(match_headers=("Accept",)))
    assert plain != matched
    assert key(settings=KeySettings(match_headers=("Accept",))) == matched


UNRESERVED = string.ascii_letters + string.digits + "-._~"


@given(
    host=st.sampled_from(["example.com", "api.shop-1.example", "127.0.0.1", "Example.com"]),
    port=st.sampled_from(["", ":80", ":443", ":8080", ":65536"]),
    scheme=st.sampled_from(["http", "https", "HTTP"]),
    path=st.text(alphabet=string.ascii_letters + "/%-._~,;=:@", max_size=12),
    query=st.lists(
        st.tuples(
            st.text(UNRESERVED, min_size=1, max_size=4),
            st.text(UNRESERVED + ",+% ", max_size=4),
        ),
        max_size=5,
    ),
    ignored=st.frozensets(st.sampled_from(["a", "b", "utm_source"]), max_size=2),
    tail=st.sampled_from(["", "#frag", "?", "&"]),
)
def test_urls_normalised_without_parsing_are_normalised_as_parsing_does(
    host: str,
    port: str,
    scheme: str,
    path: str,
    query: list[tuple[str, str]],
    ignored: frozenset[str],
    tail: str,
) -> None:
    # The unparsed path (a lower-case URL whose query is unreserved name=value pairs,
    # sorted or not) gives exactly the form urlsplit/parse_qsl/urlencode give.
    from acc.core.keys import _parsed_normal, _simply_normal

    text = "&".join(f"{name}={value}" for name, value in query)
    url = f"{scheme}://{host}{port}/{path}" + (f"?{text}" if text else "") + tail
    simple = _simply_normal(url, ignored)
    if simple is not None:
        assert simple == _parsed_normal(url, ignored)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h.example:8080/a?q=1&b=2&a=3", "http://h.example:8080/a?a=3&b=2&q=1"),
        ("http://h.example/a?b=2&a=1&b=1", "http://h.example/a?a=1&b=2&b=1"),
        ("http://h.example/a?utm_source=x", "http://h.example/a"),
        ("http://h.example/a?z=1&utm_source=x&c=", "http://h.example/a?c=&z=1"),
    ],
)
def test_unsorted_simple_queries_are_sorted_without_parsing(url: str, expected: str) -> None:
    from acc.core.keys import _parsed_normal, _simply_normal

    assert _simply_normal(url, frozenset({"utm_source"})) == expected
    assert _parsed_normal(url, frozenset({"utm_source"})) == expected
