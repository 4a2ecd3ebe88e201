// SHA-256 and Ed25519 through WebCrypto; where the browser has no Ed25519 in WebCrypto, the
// vendored noble-ed25519 (vendor/noble-ed25519.js, loaded only then). Text forms (SPEC §7).

const subtle = globalThis.crypto.subtle;
const PKCS8_PREFIX = hex("302e020100300506032b657004220420");
let fallback = null; // the noble module, once loaded
let nativeState = null; // Promise<boolean>: does WebCrypto do Ed25519 here?

export function hex(bytes) {
  if (typeof bytes === "string") {
    if (!/^([0-9a-f]{2})*$/i.test(bytes)) throw new TypeError("not hex");
    return Uint8Array.from(bytes.match(/../g) || [], (h) => parseInt(h, 16));
  }
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), (at += p.length));
  return out;
}

export const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

export function b64(bytes) {
  return btoa(String.fromCharCode(...bytes));
}

export function unb64(text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

export async function sha256(data) {
  return new Uint8Array(await subtle.digest("SHA-256", data));
}

export function randomSeed() {
  return globalThis.crypto.getRandomValues(new Uint8Array(32));
}

// Tests call this to take the fallback path in a browser that has native Ed25519.
export function useFallback() {
  nativeState = Promise.resolve(false);
}

async function native() {
  if (!nativeState) {
    nativeState = subtle
      .importKey("pkcs8", concat(PKCS8_PREFIX, new Uint8Array(32)), "Ed25519", false, ["sign"])
      .then(() => true, () => false);
  }
  return nativeState;
}

async function noble() {
  if (!fallback) fallback = await import("./vendor/noble-ed25519.js");
  return fallback;
}

export async function backend() {
  return (await native()) ? "webcrypto" : "noble-ed25519";
}

// A signer for a 32-byte Ed25519 seed: { publicKey, sign(message) -> 64 bytes }.
export async function signer(seed) {
  if (!(seed instanceof Uint8Array) || seed.length !== 32) throw new TypeError("a seed is 32 bytes");
  if (await native()) {
    const key = await subtle.importKey("pkcs8", concat(PKCS8_PREFIX, seed), "Ed25519", true, ["sign"]);
    const jwk = await subtle.exportKey("jwk", key);
    const publicKey = unb64(jwk.x.replace(/-/g, "+").replace(/_/g, "/"));
    return {
      publicKey,
      sign: async (message) => new Uint8Array(await subtle.sign("Ed25519", key, message)),
    };
  }
  const ed = await noble();
  const publicKey = await ed.getPublicKeyAsync(seed);
  return { publicKey, sign: (message) => ed.signAsync(message, seed) };
}

// -- text forms: <prefix>_ + base32(bytes || sha256(bytes)[0:3]), lowercase, no padding

const ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";

function base32(bytes) {
  let bits = 0, value = 0, out = "";
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) out += ALPHABET[(value >>> (bits -= 5)) & 31];
  }
  return bits ? out + ALPHABET[(value << (5 - bits)) & 31] : out;
}

export async function formatId(prefix, bytes) {
  return `${prefix}_${base32(concat(bytes, (await sha256(bytes)).subarray(0, 3)))}`;
}

export class TextFormError extends Error {}

// The 32 bytes of a text id (any of key_, thr_, cmt_, op_ unless `prefixes` narrows it) or 64 hex.
export async function parseId(text, prefixes = ["key", "thr", "cmt", "op"]) {
  text = String(text).trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return hex(text);
  const m = /^([a-z]+)_([a-z2-7]{56})$/.exec(text);
  if (!m || !prefixes.includes(m[1])) throw new TextFormError(`not an id: ${text.slice(0, 80)}`);
  let bits = 0, value = 0;
  const out = [];
  for (const c of m[2]) {
    value = ((value << 5) | ALPHABET.indexOf(c)) & 0xffff;
    bits += 5;
    if (bits >= 8) out.push((value >>> (bits -= 8)) & 0xff);
  }
  const raw = Uint8Array.from(out.slice(0, 32));
  const check = (await sha256(raw)).subarray(0, 3);
  if (out.length !== 35 || !equal(Uint8Array.from(out.slice(32)), check) || (value & ((1 << bits) - 1)))
    throw new TextFormError(`the id ${text.slice(0, 80)} is mistyped (bad checksum)`);
  return raw;
}
