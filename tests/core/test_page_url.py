"""URL normalisation for page threads (SPEC §10.1): the vectors, and properties over many URLs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import unicodedata
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pcomments.core.page_url import (
    MAX_URL_BYTES,
    TRACKING_PARAMETERS,
    TRACKING_PREFIXES,
    normalise_page_url,
    page_site,
)
from p2pcomments.errors import P2PCommentsError, PageUrlError

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "protocol" / "vectors"


@cache
def load(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_gen_page_vectors_check_passes() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_page_vectors.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "vector", load("page_urls.json")["normalise"], ids=lambda v: str(v["label"])
)
def test_normalise_vector(vector: dict[str, str]) -> None:
    assert normalise_page_url(vector["input"]) == vector["normal"]
    assert normalise_page_url(vector["normal"]) == vector["normal"]
    assert page_site(vector["normal"]) == vector["site"]
    assert vector["normal"].isascii()


def _expand(pattern: str) -> str:
    return re.sub(r"\[(.)\*(\d+)\]", lambda m: m.group(1) * int(m.group(2)), pattern)


@pytest.mark.parametrize("vector", load("page_urls.json")["invalid"], ids=lambda v: str(v["label"]))
def test_invalid_vector(vector: dict[str, str]) -> None:
    url = vector["input"] if "input" in vector else _expand(vector["input_pattern"])
    with pytest.raises(PageUrlError) as caught:
        normalise_page_url(url)
    assert caught.value.reason == vector["reason"]
    assert caught.value.http_status == 400
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, P2PCommentsError)


def test_the_french_post_normalises_alike_with_an_encoded_or_a_raw_ellipsis() -> None:
    vectors = {v["label"]: v for v in load("page_urls.json")["normalise"]}
    encoded = vectors["French blog post, slug with accents and an encoded …"]
    raw = vectors["the same post with a raw …"]
    assert encoded["normal"] == raw["normal"]
    assert encoded["normal"].endswith("-%E2%80%A6")
    assert "%C3%A9t%C3%A9" in encoded["normal"]


def test_the_vector_file_lists_the_tracking_parameters() -> None:
    document = load("page_urls.json")
    assert document["tracking_parameters"] == sorted(TRACKING_PARAMETERS)
    assert document["tracking_prefixes"] == list(TRACKING_PREFIXES)


def test_not_text_is_refused() -> None:
    with pytest.raises(PageUrlError) as caught:
        normalise_page_url(b"https://blog.example/")  # type: ignore[arg-type]
    assert caught.value.reason == "not-a-url"


def test_an_error_message_names_what_is_wrong() -> None:
    with pytest.raises(PageUrlError, match="http or https, not ftp"):
        normalise_page_url("ftp://blog.example/a")
    with pytest.raises(PageUrlError, match="'nope' is not a port number"):
        normalise_page_url("https://blog.example:nope/a")


# -- properties --------------------------------------------------------------------------------

_label = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
_tld = st.text("abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=6)
_hosts = st.builds(lambda labels, tld: ".".join([*labels, tld]), st.lists(_label, max_size=3), _tld)
# Path and query text: anything but controls, surrogates and the delimiters of their component.
# Written raw, text is brought to NFC; written as escapes, it is not: so NFC text only. (ASCII
# white space at the very end of a URL is removed, as a browser does: none here.)
_text = st.text(
    st.characters(
        blacklist_categories=("Cc", "Cs"), blacklist_characters="/?#&=% ", max_codepoint=0x2FFFF
    ),
    max_size=12,
).filter(lambda s: unicodedata.is_normalized("NFC", s))
_segments = st.lists(_text.filter(lambda s: s not in (".", "..")), max_size=4)
_params = st.lists(
    st.tuples(_text.filter(lambda s: bool(s) and not _is_tracking(s)), _text),
    max_size=4,
)
_schemes = st.sampled_from(["http", "https"])


def _is_tracking(name: str) -> bool:
    folded = name.lower()
    return folded in TRACKING_PARAMETERS or folded.startswith(TRACKING_PREFIXES)


def _url(scheme: str, host: str, segments: list[str], params: list[tuple[str, str]]) -> str:
    path = "/" + "/".join(segments)
    query = "&".join(f"{name}={value}" for name, value in params)
    return f"{scheme}://{host}{path}" + (f"?{query}" if query else "")


_urls = st.builds(_url, _schemes, _hosts, _segments, _params)


@given(st.text(max_size=60))
def test_any_text_normalises_or_raises_a_page_url_error(text: str) -> None:
    try:
        normal = normalise_page_url(text)
    except PageUrlError:
        return
    assert normalise_page_url(normal) == normal


@given(_urls)
def test_normalising_is_idempotent(url: str) -> None:
    normal = normalise_page_url(url)
    assert normalise_page_url(normal) == normal
    assert normal.isascii()
    assert len(normal) <= MAX_URL_BYTES
    assert "#" not in normal


@given(_schemes, _hosts, _segments, _params, st.data())
def test_normal_form_is_stable_under_the_listed_variations(
    scheme: str,
    host: str,
    segments: list[str],
    params: list[tuple[str, str]],
    data: st.DataObject,
) -> None:
    normal = normalise_page_url(_url(scheme, host, segments, params))
    # Case of scheme and host; the default port; user information; a fragment.
    port = ":443" if scheme == "https" else ":80"
    variant_host = data.draw(st.sampled_from([host, host.upper(), host + "."]))
    authority = data.draw(st.sampled_from(["", "user@", "user:pw@"])) + variant_host
    authority += data.draw(st.sampled_from(["", port, ":"]))
    # Tracking parameters anywhere, empty parameters; a trailing slash; "." segments.
    tracking = data.draw(
        st.lists(st.sampled_from(["utm_source=x", "fbclid=1", "gclid=2", "mc_eid=3", ""]))
    )
    mixed = [f"{n}={v}" for n, v in params]
    for item in tracking:
        mixed.insert(data.draw(st.integers(0, len(mixed))), item)
    variant_segments = list(segments)
    if data.draw(st.booleans()):
        variant_segments.insert(data.draw(st.integers(0, len(segments))), ".")
    path = "/" + "/".join(variant_segments) + data.draw(st.sampled_from(["", "/"]))
    # Characters written raw or as percent escapes (lowercase hex), unreserved ones escaped.
    if data.draw(st.booleans()):
        path = _escape(path, lower=data.draw(st.booleans()))
    query = "&".join(mixed)
    variant = f"{scheme.upper() if data.draw(st.booleans()) else scheme}://{authority}{path}"
    variant += f"?{query}" if query or data.draw(st.booleans()) else ""
    variant += data.draw(st.sampled_from(["", "#", "#comments", "#a?b/c"]))
    assert normalise_page_url(variant) == normal


def _escape(path: str, *, lower: bool) -> str:
    out = []
    for char in path:
        if char in "/!$&'()*+,;=:@":  # reserved: an escape of one would mean something else
            out.append(char)
            continue
        escaped = "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))
        out.append(escaped.lower() if lower else escaped)
    return "".join(out)


@given(_urls)
def test_http_and_https_stay_distinct_and_so_does_www(url: str) -> None:
    normal = normalise_page_url(url)
    other_scheme = (
        normal.replace("https://", "http://", 1)
        if normal.startswith("https:")
        else (normal.replace("http://", "https://", 1))
    )
    assert normalise_page_url(other_scheme) != normal
    www = normal.replace("://", "://www.", 1)
    assert normalise_page_url(www) != normal
    assert page_site(normalise_page_url(www)) == "www." + page_site(normal)
