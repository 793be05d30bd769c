"""Security regressions of issue 12 in the core (pure: no sockets, no files).

Each test names the item of issue 12 it guards, and fails if that protection is removed.
"""

from __future__ import annotations

from datetime import datetime, timezone

from acc.core.flow.entries import entry_from_head
from acc.core.flow.exchange import ResponseHead
from acc.core.keys import CREDENTIAL_HEADERS, REDACTED
from acc.core.models import RedirectHop

NOW = datetime(2024, 5, 17, 12, 0, tzinfo=timezone.utc)


# -- item 5: redaction reaches every stored URL and URL-bearing header -------------------------


def test_entries_redact_urls_in_hops_and_url_bearing_headers() -> None:
    secret = "s3cr3t-value"
    head = ResponseHead(
        status=200,
        reason="OK",
        url=f"https://api.example/items?api_key={secret}&page=2",
        method="GET",
        headers=(
            ("Content-Location", f"/items?page=2&api_key={secret}"),
            ("Link", f'<https://api.example/items?page=3&api_key={secret}>; rel="next"'),
            ("Location", f"http://[bad?api_key={secret}"),  # unparseable: dropped whole
            ("X-Other", "kept"),
        ),
        request_headers=(("X-Api-Key", secret), ("Accept", "*/*")),
        history=(
            RedirectHop(
                302,
                "Found",
                f"https://user:pw@api.example/start?api_key={secret}",
                "GET",
                (("Location", f"https://user:pw@api.example/items?api_key={secret}&page=2"),),
            ),
        ),
    )
    entry = entry_from_head(
        head,
        b"body",
        created_at=NOW,
        expires=None,
        redacted_params=frozenset({"api_key"}),
        redacted_headers=CREDENTIAL_HEADERS,
    )
    assert secret not in repr(entry)
    assert "pw" not in repr(entry)
    headers = dict(entry.headers)
    assert headers["Content-Location"] == f"/items?page=2&api_key={REDACTED}"
    assert f"api_key={REDACTED}" in headers["Link"] and headers["Link"].endswith('rel="next"')
    assert headers["Location"] == REDACTED
    assert headers["X-Other"] == "kept"
    [hop] = entry.history
    assert hop.url == f"https://api.example/start?api_key={REDACTED}"
    assert dict(hop.headers)["Location"] == f"https://api.example/items?api_key={REDACTED}&page=2"
