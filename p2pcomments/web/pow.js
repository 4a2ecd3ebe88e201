// Proof of work (protocol/SPEC.md §11.6), loaded only where a thread's rules ask for it: the nonce
// is the payload's last element, a bin 8 (a big-endian counter from 0), so the unsigned form ends
// in `c4 08` + the nonce; the miner hashes P ‖ n until the id has `difficulty` leading zero bits.
// A synchronous SHA-256 (WebCrypto's digest is one promise per call) in chunks of attempts, with a
// pause between chunks, keeps the page responsive.

import { encode } from "./msgpack.js";
import { concat, formatId } from "./crypto.js";
import { unsignedFields, SIGNING_DOMAIN, KIND } from "./ops.js";

const K = new Uint32Array(64);
{
  // The first 32 bits of the fractional parts of the cube roots of the first 64 primes.
  let n = 0;
  for (let p = 2; n < 64; p++) {
    let prime = true;
    for (let q = 2; q * q <= p; q++) if (p % q === 0) prime = false;
    if (prime) K[n++] = ((Math.cbrt(p) % 1) * 2 ** 32) >>> 0;
  }
}
const INIT = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
const W = new Uint32Array(64);

// SHA-256's compression of the 64-byte blocks of `view` from `from` on, into the state H.
function compress(H, view, from = 0) {
  for (let off = from; off < view.byteLength; off += 64) {
    for (let i = 0; i < 16; i++) W[i] = view.getUint32(off + i * 4);
    for (let i = 16; i < 64; i++) {
      const a = W[i - 15], b = W[i - 2];
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
      W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
    }
    let [a, b, c, d, e, f, g, h] = H;
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (h + S1 + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    H[0] += a; H[1] += b; H[2] += c; H[3] += d; H[4] += e; H[5] += f; H[6] += g; H[7] += h;
  }
  return H;
}

// The padded tail of a message of `total` bytes whose last `tail.length` bytes are `tail`
// (whole blocks before it already compressed).
function padded(tail, total) {
  const out = new Uint8Array(((tail.length + 72) >> 6) << 6);
  out.set(tail);
  out[tail.length] = 0x80;
  const view = new DataView(out.buffer);
  view.setUint32(out.length - 8, Math.floor((total * 8) / 2 ** 32));
  view.setUint32(out.length - 4, (total * 8) >>> 0);
  return out;
}

function digest(H) {
  const out = new Uint8Array(32);
  const view = new DataView(out.buffer);
  H.forEach((x, i) => view.setUint32(i * 4, x >>> 0));
  return out;
}

export function sha256Sync(data) {
  const block = padded(data, data.length);
  return digest(compress(Uint32Array.from(INIT), new DataView(block.buffer)));
}

export function leadingZeroBits(id) {
  let n = 0;
  for (const byte of id) {
    if (byte) return n + Math.clz32(byte) - 24;
    n += 8;
  }
  return n;
}

// The first counter n from 0 at which SHA-256(prefix ‖ n) has `difficulty` leading zero bits.
// `progress(attempts)` is called between chunks.
export async function mine(prefix, difficulty, progress = () => {}) {
  if (!(difficulty >= 0 && difficulty <= 64)) throw new RangeError(`difficulty ${difficulty} is not 0-64`);
  // The whole blocks of the prefix are hashed once (their midstate); per attempt, only the tail
  // that holds the nonce.
  const whole = prefix.length - (prefix.length % 64);
  const mid = compress(Uint32Array.from(INIT), new DataView(prefix.buffer, prefix.byteOffset, whole));
  const tail = padded(concat(prefix.subarray(whole), new Uint8Array(8)), prefix.length + 8);
  const view = new DataView(tail.buffer);
  const at = prefix.length - whole;
  const H = new Uint32Array(8);
  for (let n = 0n; ; ) {
    for (let i = 0; i < 4096; i++, n++) {
      view.setBigUint64(at, n);
      H.set(mid);
      compress(H, view);
      // Leading zero bits straight from the state's words (big-endian, as the id's bytes).
      let zeros = 0;
      for (let w = 0; w < 8 && zeros === 32 * w; w++) zeros += Math.clz32(H[w]);
      if (zeros >= difficulty) {
        const id = digest(H);
        progress(Number(n + 1n));
        return { nonce: tail.slice(at, at + 8), id, attempts: Number(n + 1n), prefix };
      }
    }
    progress(Number(n));
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

// Build, pay for and sign an operation (makeOperation's fields): the nonce is appended to its
// payload. Returns makeOperation's result plus `attempts`.
export async function makePaidOperation(signer, fields, difficulty, progress) {
  const kind = typeof fields.kind === "string" ? KIND[fields.kind] : fields.kind;
  const array = unsignedFields({ ...fields, kind, author: signer.publicKey });
  array[7] = [...array[7], new Uint8Array(8)];
  const blank = encode(array);
  const found = await mine(blank.subarray(0, blank.length - 8), difficulty, progress);
  array[7][array[7].length - 1] = found.nonce;
  const unsigned = concat(found.prefix, found.nonce);
  const signingMessage = concat(SIGNING_DOMAIN, found.id);
  const signature = await signer.sign(signingMessage);
  const encoded = encode([...array, signature]);
  const prefix = kind === KIND.comment ? "cmt" : "op";
  return { id: found.id, idText: await formatId(prefix, found.id), encoded, unsigned, signature, signingMessage, nonce: found.nonce, attempts: found.attempts };
}

const WORDS = {
  en: (a, e) => `Proof of work the thread asks for: ${a.toLocaleString("en")} attempts of about ${e.toLocaleString("en")}…`,
  fr: (a, e) => `Preuve de travail demandée par la discussion : ${a.toLocaleString("fr")} essais sur environ ${e.toLocaleString("fr")}…`,
};

// What the widget shows while mining: attempts / 2^d.
export function progressText(lang, attempts, difficulty) {
  return (WORDS[lang] || WORDS.en)(attempts, 2 ** difficulty);
}
