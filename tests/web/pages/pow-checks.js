// What tests/web/test_rules_web.py runs in the page: web/pow.js against rules.json's vectors.

import { hex, signer } from "/web/crypto.js";
import { sha256Sync, leadingZeroBits, mine, makePaidOperation } from "/web/pow.js";

// Mine and sign each proof_of_work vector with its signer's seed; what came out, as hex.
export async function proofOfWork({ vectors, seeds }) {
  const results = [];
  for (const v of vectors) {
    const u = v.operation.unsigned;
    const s = await signer(hex(seeds[u.author]));
    const reports = [];
    const found = await mine(hex(v.prefix_hex), Number(v.difficulty));
    const op = await makePaidOperation(s, {
      kind: Number(u.kind),
      thread: hex(u.thread),
      refs: u.refs.map(hex),
      deps: u.deps.map(hex),
      timestampMs: BigInt(u.timestamp_ms),
      payload: { body: u.payload.body },
    }, Number(v.difficulty), (n) => reports.push(n));
    results.push({
      mined_nonce: hex(found.nonce),
      mined_id: hex(found.id),
      attempts: found.attempts,
      nonce: hex(op.nonce),
      unsigned_hex: hex(op.unsigned),
      id: hex(op.id),
      id_text: op.idText,
      signature: hex(op.signature),
      encoded: hex(op.encoded),
      zero_bits: leadingZeroBits(op.id),
      progress_last: reports[reports.length - 1],
    });
  }
  return results;
}

// The synchronous SHA-256 against WebCrypto's, on lengths around the block boundaries.
export async function sha256Agrees() {
  const bad = [];
  for (let n = 0; n < 300; n++) {
    const data = new Uint8Array(n).map((_, i) => (i * 31 + n) & 255);
    const want = hex(new Uint8Array(await crypto.subtle.digest("SHA-256", data)));
    if (hex(sha256Sync(data)) !== want) bad.push(n);
  }
  return bad;
}
