"""The JavaScript encoder, ids, signatures, text forms, URL normalisation and page threads
reproduce protocol/vectors/ byte for byte, run in Chromium: with WebCrypto's Ed25519 and with
the vendored noble-ed25519. The code run in the page is in pages/checks.js."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import PAGES, VECTORS, WAIT_MS, static_server


@pytest.fixture(scope="module")
def page(browser: Any) -> Iterator[Any]:
    with static_server(PAGES) as server:
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{server.url}/blank.html")
        yield page
        context.close()


def check(page: Any, name: str, argument: object = None) -> Any:
    """Run ``checks.js``'s ``name`` in the page; its result."""
    return page.evaluate(
        "async ([name, argument]) => (await import('/checks.js'))[name](argument)", [name, argument]
    )


def _vectors(name: str) -> Any:
    # Timestamps may exceed 2^53: hand them to the browser as decimal strings.
    return json.loads((VECTORS / name).read_text(), parse_int=str)


@pytest.mark.parametrize("fallback", [False, True], ids=["webcrypto", "noble"])
def test_operations_reproduced_byte_for_byte(page: Any, fallback: bool) -> None:
    document = _vectors("operations.json")
    out = check(page, "reproduce", {"vectors": document["vectors"], "fallback": fallback})
    assert out["backend"] == ("noble-ed25519" if fallback else "webcrypto")
    assert len(out["results"]) == len(document["vectors"]) > 20
    for vector, got in zip(document["vectors"], out["results"], strict=True):
        assert got["public_key"] == vector["signer"]["public_key"], vector["name"]
        assert got["key_text"] == vector["signer"]["public_key_text"], vector["name"]
        for field in ("unsigned_hex", "id", "id_text", "signing_message_hex", "signature"):
            assert got[field] == vector[field], (vector["name"], field)
        assert got["encoded"] == vector["encoded"], vector["name"]
        assert got["reencoded"] == vector["encoded"], vector["name"]
        assert got["decoded_kind"] == vector["unsigned"]["kind"]
        assert got["decoded_ts"] == vector["unsigned"]["timestamp_ms"]


def test_text_forms(page: Any) -> None:
    document = _vectors("text_forms.json")
    out = check(page, "textForms", document)
    assert out["made"]
    assert all(a == b for a, b in out["made"])
    assert out["parsed"]
    assert all(a == b for a, b in out["parsed"])
    assert out["refused"] == [None] * len(document["invalid"])


def test_invalid_encodings_refused_by_the_canonical_decoder(page: Any) -> None:
    """Every invalid vector whose fault is in the encoding itself is refused."""
    document = _vectors("invalid_operations.json")
    faults = [v for v in document["vectors"] if v["reason"] in ("malformed", "non-canonical")]
    assert len(faults) > 5
    assert check(page, "accepted", faults) == []


def test_text_rules(page: Any) -> None:
    assert check(page, "textRules") == {
        "crlf": "a\nb\nc",
        "nfc": True,
        "control": "bad-text",
        "notNfc": "bad-text",
        "blank": "bad-field",
        "tab": "ok",
        "lone": "bad-text",
        "emoji": "ok",
        "big": "oversize",
    }


def _expand(entry: dict[str, Any]) -> str:
    if "input" in entry:
        return str(entry["input"])
    pattern = str(entry["input_pattern"])
    return re.sub(r"\[(.)\*(\d+)\]", lambda m: m.group(1) * int(m.group(2)), pattern)


def test_page_urls_normalised_as_the_vectors_say(page: Any) -> None:
    document = json.loads((VECTORS / "page_urls.json").read_text())
    cases = {
        "normalise": [[_expand(v), v["normal"], v["site"]] for v in document["normalise"]],
        "invalid": [[_expand(v), v["reason"]] for v in document["invalid"]],
    }
    out = check(page, "pageUrls", cases)
    for (url, normal, site), got in zip(cases["normalise"], out["normalise"], strict=True):
        assert got == [normal, site, normal], url
    for (url, reason), got in zip(cases["invalid"], out["invalid"], strict=True):
        assert got == {"reason": reason}, url[:100]


def test_page_threads_derived_as_the_vectors_say(page: Any) -> None:
    threads = json.loads((VECTORS / "page_threads.json").read_text())["page_threads"]
    out = check(page, "pageThreads", threads)
    assert len(out) == len(threads) > 0
    for vector, got in zip(threads, out, strict=True):
        assert got["id"] == vector["id"], vector["name"]
        assert got["id_text"] == vector["id_text"], vector["name"]
        assert got["encoded"] == vector["encoded"], vector["name"]
        assert got["url"] == vector["unsigned"]["payload"]["url"], vector["name"]
        assert got["site"] == vector["unsigned"]["payload"]["site"], vector["name"]


def test_retitle_operations_signed_as_the_vectors_say(page: Any) -> None:
    document = _vectors("page_threads.json")
    seeds = {s["public_key"]: s["seed"] for s in document["signers"]}
    vectors = []
    for entry in document["retitle_operations"]:
        operation = entry["operation"]
        author = operation["unsigned"]["author"]
        signer = {"seed": seeds[author], "public_key": author}
        vectors.append({**operation, "name": entry["label"], "signer": signer})
    out = check(page, "reproduce", {"vectors": vectors, "fallback": False})
    assert len(out["results"]) == len(vectors) > 0
    for vector, got in zip(vectors, out["results"], strict=True):
        for field in ("unsigned_hex", "id", "id_text", "signature", "encoded"):
            assert got[field] == vector[field], (vector["name"], field)
