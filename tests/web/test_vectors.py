"""The JavaScript encoder, ids, signatures and text forms reproduce protocol/vectors/ byte for
byte, run in Chromium: both with WebCrypto's Ed25519 and with the vendored noble-ed25519."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import VECTORS, WAIT_MS, static_server

PAGES = VECTORS.parent.parent / "tests" / "web" / "pages"


@pytest.fixture(scope="module")
def page(browser: Any) -> Iterator[Any]:
    with static_server(PAGES) as server:
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{server.url}/blank.html")
        yield page
        context.close()


def _vectors(name: str) -> Any:
    # Timestamps may exceed 2^53: hand them to the browser as decimal strings.
    return json.loads((VECTORS / name).read_text(), parse_int=str)


REPRODUCE = """async ({vectors, fallback}) => {
  const { hex, signer, formatId, useFallback, backend } = await import("/web/crypto.js");
  const { makeOperation, decodeOperation, KIND } = await import("/web/ops.js");
  const { encode } = await import("/web/msgpack.js");
  if (fallback) useFallback();
  const results = [];
  for (const v of vectors) {
    const u = v.unsigned, p = u.payload;
    const s = await signer(hex(v.signer.seed));
    const payload = { ...p };
    if (p.subject) payload.subject = hex(p.subject);
    if (p.action !== undefined) payload.action = Number(p.action);
    const op = await makeOperation(s, {
      kind: Number(u.kind), thread: u.thread && hex(u.thread), refs: u.refs.map(hex),
      deps: u.deps.map(hex), timestampMs: BigInt(u.timestamp_ms), payload,
    });
    const decoded = decodeOperation(hex(v.encoded));
    results.push({
      name: v.name, public_key: hex(s.publicKey), unsigned_hex: hex(op.unsigned), id: hex(op.id),
      id_text: op.idText, signing_message_hex: hex(op.signingMessage), signature: hex(op.signature),
      encoded: hex(op.encoded), reencoded: hex(encode(Object.values(decoded))),
      decoded_kind: decoded.kind, decoded_ts: String(decoded.timestampMs),
      key_text: await formatId("key", s.publicKey),
    });
  }
  return { backend: await backend(), results };
}"""


@pytest.mark.parametrize("fallback", [False, True], ids=["webcrypto", "noble"])
def test_operations_reproduced_byte_for_byte(page: Any, fallback: bool) -> None:
    document = _vectors("operations.json")
    out = page.evaluate(REPRODUCE, {"vectors": document["vectors"], "fallback": fallback})
    assert out["backend"] == ("noble-ed25519" if fallback else "webcrypto")
    assert len(out["results"]) == len(document["vectors"]) > 20
    for vector, got in zip(document["vectors"], out["results"], strict=True):
        assert got["public_key"] == vector["signer"]["public_key"], vector["name"]
        assert got["key_text"] == vector["signer"]["public_key_text"], vector["name"]
        for field in ("unsigned_hex", "id", "id_text", "signing_message_hex", "signature"):
            assert got[field] == vector[field], (vector["name"], field)
        assert got["encoded"] == vector["encoded"], vector["name"]
        assert got["reencoded"] == vector["encoded"], vector["name"]
        assert str(got["decoded_kind"]) == vector["unsigned"]["kind"]
        assert got["decoded_ts"] == vector["unsigned"]["timestamp_ms"]


def test_text_forms(page: Any) -> None:
    document = _vectors("text_forms.json")
    out = page.evaluate(
        """async (doc) => {
          const { hex, formatId, parseId } = await import("/web/crypto.js");
          const made = [], parsed = [], refused = [];
          for (const v of doc.valid) for (const [prefix, text] of Object.entries(v.forms)) {
            made.push([await formatId(prefix, hex(v.bytes)), text]);
            parsed.push([hex(await parseId(text)), v.bytes]);
          }
          for (const v of doc.hex_accepted) parsed.push([hex(await parseId(v.text)), v.bytes]);
          for (const v of doc.invalid)
            refused.push(await parseId(v.text).then(() => v.label, () => null));
          return { made, parsed, refused };
        }""",
        document,
    )
    assert out["made"] and all(a == b for a, b in out["made"])
    assert out["parsed"] and all(a == b for a, b in out["parsed"])
    assert out["refused"] == [None] * len(document["invalid"])


def test_invalid_encodings_refused_by_the_canonical_decoder(page: Any) -> None:
    """Every invalid vector whose fault is in the encoding (not the fields) is refused by
    `decodeCanonical`; the valid ones all decode."""
    document = _vectors("invalid_operations.json")
    encoding_faults = [v for v in document["vectors"] if v["reason"] in ("malformed", "non-canonical")]
    assert encoding_faults
    out = page.evaluate(
        """async (items) => {
          const { hex } = await import("/web/crypto.js");
          const { decodeOperation } = await import("/web/ops.js");
          return items.map((v) => { try { decodeOperation(hex(v.encoded)); return v.name; }
                                    catch (e) { return null; } });
        }""",
        encoding_faults,
    )
    assert out == [None] * len(encoding_faults)


def test_text_rules(page: Any) -> None:
    out = page.evaluate(
        """async () => {
          const { normaliseText, makeOperation } = await import("/web/ops.js");
          const { signer } = await import("/web/crypto.js");
          const s = await signer(new Uint8Array(32));
          const thread = new Uint8Array(32).fill(7);
          const reason = async (body) => makeOperation(s, { kind: "comment", thread, refs: [thread],
              timestampMs: 1, payload: { body } }).then(() => "ok", (e) => e.reason);
          return {
            crlf: normaliseText("a\\r\\nb\\rc"), nfc: normaliseText("e\\u0301") === "\\u00e9",
            control: await reason("bell \\u0007"), notNfc: await reason("e\\u0301"),
            blank: await reason("  \\n "), tab: await reason("a\\tb\\nc"),
            lone: await reason("x\\ud800y"), emoji: await reason("👍🏽"),
            big: await reason("x".repeat(32769)),
          };
        }"""
    )
    assert out == {
        "crlf": "a\nb\nc", "nfc": True, "control": "bad-text", "notNfc": "bad-text",
        "blank": "bad-field", "tab": "ok", "lone": "bad-text", "emoji": "ok", "big": "oversize",
    }
