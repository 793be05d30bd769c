"""Every private or semi-private part of aiohttp that acc.sessions.aiohttp relies on.

aiohttp does not promise these, so each is listed here with the shape acc expects; a
new aiohttp release that changes one fails here, by name, instead of deep in a session
test. ``tests/sessions/test_aiohttp_min_version.py`` runs this module (and the response
tests) on the lowest aiohttp version the package declares.
"""

from __future__ import annotations

import asyncio
import inspect

import aiohttp
from aiohttp import ClientResponse, ClientSession, FormData
from multidict import CIMultiDict
from yarl import URL


def test_session_request_is_the_one_method_every_verb_goes_through() -> None:
    # CacheMixin overrides _request and calls super()._request(method, str_or_url, **kw).
    parameters = list(inspect.signature(ClientSession._request).parameters)
    assert parameters[:3] == ["self", "method", "str_or_url"]
    assert inspect.iscoroutinefunction(ClientSession._request)


async def test_session_build_url_and_base_url() -> None:
    async with ClientSession(base_url="http://example.com/api/") as session:
        assert getattr(session, "_base_url", None) == URL("http://example.com/api/")
        assert session._build_url("items") == URL("http://example.com/api/items")


def test_session_attrs_lists_allowed_attributes() -> None:
    # CacheMixin adds its attributes to ATTRS, or aiohttp warns in debug mode.
    assert isinstance(ClientSession.ATTRS, frozenset)
    assert "_base_url" in ClientSession.ATTRS


def test_formdata_fields_are_options_headers_value_triples() -> None:
    data = FormData()
    data.add_field("name", "value")
    data.add_field("upload", b"bytes", filename="f.txt")
    (plain, upload) = data._fields
    type_options, _headers, value = plain
    assert type_options["name"] == "name"
    assert value == "value"
    assert "filename" in upload[0]


async def test_a_stream_reader_can_be_fed_whole() -> None:
    from aiohttp.base_protocol import BaseProtocol
    from aiohttp.streams import StreamReader

    loop = asyncio.get_running_loop()
    stream = StreamReader(BaseProtocol(loop), 2**16, loop=loop)
    stream.feed_data(b"abc")
    stream.feed_eof()
    assert await stream.read() == b"abc"


def test_headers_mixin_reads_underscore_headers() -> None:
    from aiohttp.helpers import HeadersMixin

    class Holder(HeadersMixin):
        _headers = CIMultiDict({"Content-Type": "text/plain; charset=latin-1"})

    holder = Holder()
    assert holder.content_type == "text/plain"
    assert holder.charset == "latin-1"


def test_response_reified_properties_expose_wrapped() -> None:
    # The cached response reuses aiohttp's own parsing of Link and Content-Disposition.
    for name in ("links", "content_disposition"):
        descriptor = ClientResponse.__dict__[name]
        assert callable(descriptor.wrapped)


def test_content_disposition_class_is_importable() -> None:
    from aiohttp.client_reqrep import ContentDisposition

    assert {"type", "parameters", "filename"} <= set(dir(ContentDisposition))


async def test_live_responses_take_attributes_and_a_new_content_stream(origin) -> None:
    # mark_live_response sets the cache attributes on a live response (through its
    # __dict__) and, when acc read the body to store it, replaces its content stream.
    from acc.sessions.aiohttp.response import body_stream

    async with ClientSession() as session, session.get(origin("/json")) as response:
        body = await response.read()
        vars(response)["from_cache"] = False
        response.content = body_stream(body)
        assert response.from_cache is False  # type: ignore[attr-defined]
        assert await response.content.read() == body


def test_the_declared_version_range_holds() -> None:
    major, minor = (int(part) for part in aiohttp.__version__.split(".")[:2])
    assert major == 3
    assert minor >= 11


async def test_which_codings_aiohttp_decodes() -> None:
    # AiohttpExchange.head reports body_decoded from the session's (or the request's)
    # auto_decompress and the codings aiohttp's parser decodes; zstd joined that set in
    # the releases whose compression_utils defines HAS_ZSTD.
    from aiohttp import compression_utils

    from acc.sessions.aiohttp.exchange import DECODED_CODINGS

    assert {"gzip", "deflate", "br"} <= DECODED_CODINGS
    assert ("zstd" in DECODED_CODINGS) == hasattr(compression_utils, "HAS_ZSTD")
    async with ClientSession(auto_decompress=False) as session:
        assert session.auto_decompress is False
    assert "auto_decompress" in inspect.signature(ClientSession._request).parameters
