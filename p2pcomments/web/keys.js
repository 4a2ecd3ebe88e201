// The reader's key: an Ed25519 seed made in this browser and kept in localStorage, exported and
// imported in the ASCII armour of `p2pc key export|import` (p2pcomments/identity.py rules 2 and 5:
// the 16-byte magic "p2pcomments-key\0", version 1, a msgpack map {public, seed}). A
// passphrase-protected export (Argon2id) is refused with a readable message.

import { encode, decode } from "./msgpack.js";
import { b64, unb64, concat, equal, randomSeed, signer, formatId } from "./crypto.js";

const STORAGE_KEY = "p2pc.key";
const MAGIC = new TextEncoder().encode("p2pcomments-key\0");
const BEGIN = "-----BEGIN P2PCOMMENTS AUTHOR KEY-----";
const END = "-----END P2PCOMMENTS AUTHOR KEY-----";

export class KeyFileError extends Error {
  constructor(reason, message) {
    super(message);
    this.reason = reason;
  }
}

async function identity(seed) {
  const s = await signer(seed);
  return { seed, signer: s, publicKey: s.publicKey, keyText: await formatId("key", s.publicKey) };
}

// The key kept in `storage`, made on first use.
export async function readerKey(storage = localStorage) {
  let saved = null;
  try {
    saved = JSON.parse(storage.getItem(STORAGE_KEY) || "null");
  } catch {}
  let seed = saved && typeof saved.seed === "string" ? unb64(saved.seed) : null;
  if (!seed || seed.length !== 32) {
    seed = randomSeed();
    storage.setItem(STORAGE_KEY, JSON.stringify({ seed: b64(seed) }));
  }
  return identity(seed);
}

export function saveKey(seed, storage = localStorage) {
  storage.setItem(STORAGE_KEY, JSON.stringify({ seed: b64(seed) }));
}

export async function exportKey(key) {
  const body = encode(new Map([["public", key.publicKey], ["seed", key.seed]]));
  const text = b64(concat(MAGIC, Uint8Array.of(1), body));
  const lines = [BEGIN, `Key: ${key.keyText}`, "Encrypted: no", ""];
  for (let i = 0; i < text.length; i += 64) lines.push(text.slice(i, i + 64));
  return [...lines, END].join("\n") + "\n";
}

// Parse an export; returns the identity (not yet saved: see `saveKey`).
export async function importKey(armoured) {
  const lines = String(armoured).trim().split(/\r?\n/).map((l) => l.trim());
  const begin = lines.indexOf(BEGIN);
  const end = lines.indexOf(END, begin + 1);
  if (begin < 0 || end < 0) throw new KeyFileError("not-a-key", `expected a block between ${BEGIN} and ${END}`);
  let body = lines.slice(begin + 1, end);
  if (body.includes("")) body = body.slice(body.indexOf("") + 1);
  let raw;
  try {
    raw = unb64(body.join(""));
  } catch {
    throw new KeyFileError("damaged", "the exported key is damaged (bad base64)");
  }
  if (!equal(raw.subarray(0, 16), MAGIC)) throw new KeyFileError("not-a-key", "not a p2pcomments author key file");
  if (raw[16] !== 1) throw new KeyFileError("bad-key-file-version", `key file version ${raw[16]}; this page reads version 1`);
  let map;
  try {
    map = decode(raw.subarray(17));
  } catch {
    map = null;
  }
  if (!(map instanceof Map)) throw new KeyFileError("damaged", "the key file's body does not parse");
  const pub = map.get("public");
  if (!(pub instanceof Uint8Array) || pub.length !== 32) throw new KeyFileError("damaged", "the public key is not 32 bytes");
  if (!map.has("seed")) {
    if (map.get("kdf") === "argon2id") throw new KeyFileError("encrypted", "the key is protected by a passphrase");
    throw new KeyFileError("damaged", "the key file holds no seed");
  }
  const seed = map.get("seed");
  if (!(seed instanceof Uint8Array) || seed.length !== 32) throw new KeyFileError("damaged", "the seed is not 32 bytes");
  const key = await identity(seed);
  if (!equal(key.publicKey, pub)) throw new KeyFileError("damaged", "the seed does not give the public key the file names");
  return key;
}
