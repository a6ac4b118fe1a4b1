"""The verifier rebuilds exactly the canonical request that huaweicloudsdkcore signs."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openarts.core import signing
from tests.support.signing import sign

AK, SK, PROJECT = "AKEXAMPLE0000000000A", "s" * 40, "p" * 32


def _verify(method: str, url: str, headers: dict[str, str], body: bytes) -> bool:
    auth = signing.parse_authorization(headers["Authorization"])
    lower = {k.lower(): v for k, v in headers.items()}
    parts = urlsplit(url)
    canonical = signing.canonical_request(method, parts.path, parts.query, lower, auth.signed_headers, body)
    expected = signing.signature(SK, signing.string_to_sign(lower["x-sdk-date"], canonical))
    return signing.signatures_match(expected, auth.signature)


def _sent_url(url: str) -> str:
    """What the SDK puts on the wire: the path as given and the query in canonical order."""
    parts = urlsplit(url)
    query = signing.canonical_query(parts.query)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" + (f"?{query}" if query else "")


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("GET", "http://127.0.0.1:8000/v1/p/workspaces", b""),
        ("GET", "http://127.0.0.1:8000/v1/p/workspaces?name=a%20b&limit=10&filter_accessible=true", b""),
        (
            "PUT",
            "http://h:1/v1/p/workspaces/0/quotas",
            json.dumps({"quotas": [{"resource": "x", "quota": 1}]}).encode(),
        ),
        ("DELETE", "http://h/v2/p/modelarts-trainJob/j%2Fk/tags/delete", b'{"tags": []}'),
        ("GET", "http://h/v1/p/x?b=2&a=1&a=0&c=%7E~", b""),
    ],
)
def test_sdk_signatures_verify(method: str, url: str, body: bytes) -> None:
    sent = _sent_url(url)
    headers = sign(method, sent, ak=AK, sk=SK, project_id=PROJECT, body=body)
    assert _verify(method, sent, headers, body)


def test_each_canonical_component_is_covered() -> None:
    url = "http://h/v1/p/workspaces?limit=5"
    body = b'{"name": "abcd"}'
    headers = sign("POST", url, ak=AK, sk=SK, project_id=PROJECT, body=body)
    assert _verify("POST", url, headers, body)
    assert not _verify("PUT", url, headers, body)  # method
    assert not _verify("POST", url.replace("workspaces", "workspace"), headers, body)  # path
    assert not _verify("POST", url.replace("limit=5", "limit=6"), headers, body)  # query
    assert not _verify("POST", url, headers, body.replace(b"abcd", b"abce"))  # body
    for name in ("Host", "X-Sdk-Date", "X-Project-Id", "Content-Type"):
        bent = dict(headers)
        bent[name] = bent[name] + "0"
        assert not _verify("POST", url, bent, body), name


def test_trailing_slash_is_canonical() -> None:
    assert signing.canonical_uri("/v1/p/workspaces") == "/v1/p/workspaces/"
    assert signing.canonical_uri("/v1/p/workspaces/") == "/v1/p/workspaces/"
    assert signing.canonical_uri("/v1/p/a%20b") == "/v1/p/a%20b/"


def test_empty_body_hash_is_the_constant() -> None:
    assert signing.payload_hash(b"", {}) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert signing.payload_hash(b"x", {"x-sdk-content-sha256": "UNSIGNED-PAYLOAD"}) == "UNSIGNED-PAYLOAD"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host, Signature=zz",
        "SDK-HMAC-SHA256 Access=AK, SignedHeaders=Host;x-sdk-date, Signature=ab",
        "V11-HMAC-SHA256 Credential=AK/20260101/r/s, SignedHeaders=host, Signature=ab",
    ],
)
def test_malformed_authorization_is_refused(value: str) -> None:
    with pytest.raises(signing.SignatureFormatError):
        signing.parse_authorization(value)


_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)


@settings(max_examples=150, deadline=None)
@given(
    segment=_text.filter(lambda s: "/" not in s and s not in (".", "..")),
    params=st.lists(st.tuples(_text.filter(bool), _text), max_size=4),
)
def test_any_path_and_query_verify(segment: str, params: list[tuple[str, str]]) -> None:
    from urllib.parse import quote, urlencode

    url = f"http://h/v1/p/{quote(segment, safe='')}"
    if params:
        url += "?" + urlencode(params, quote_via=quote)
    sent = _sent_url(url)
    headers = sign("GET", sent, ak=AK, sk=SK, project_id=PROJECT)
    assert _verify("GET", sent, headers, b"")
