// Operations (protocol/SPEC.md §2-§4): build, check, sign. The id is SHA-256 of the canonical
// unsigned form; the signature covers "p2pcomments/op/v1" 0x00 || id.

import { encode, decodeCanonical } from "./msgpack.js";
import { sha256, concat, formatId } from "./crypto.js";

export const KIND = { thread: 1, comment: 2, edit: 3, retract: 4, react: 5, moderate: 6, profile: 7 };
export const ACTION = { hide: 1, unhide: 2, add_moderator: 3, remove_moderator: 4, close: 5, reopen: 6, retitle: 7, report: 16 };
export const SIGNING_DOMAIN = new TextEncoder().encode("p2pcomments/op/v1\0");
const MAX_OPERATION_BYTES = 40960;
const LIMITS = { body: 32768, title: 512, url: 2048, site: 253, name: 64, reaction: 32, reason: 512 };

export class OperationError extends Error {
  constructor(reason, message) {
    super(message);
    this.reason = reason;
  }
}

// What a client does to text before signing: CRLF (and a lone CR) to LF, then NFC.
export function normaliseText(text) {
  return String(text).replace(/\r\n?/g, "\n").normalize("NFC");
}

const LINE_BAD = /[\u0000-\u001f\u007f-\u009f]|[\ud800-\udfff]/;
const BODY_BAD = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]|[\ud800-\udfff]/;

function checkText(value, field, { multiline = false, empty = false } = {}) {
  if (typeof value !== "string") throw new OperationError("bad-field", `${field} must be text`);
  const size = new TextEncoder().encode(value).length;
  if (size > LIMITS[field]) throw new OperationError("oversize", `${field} is ${size} bytes, the limit is ${LIMITS[field]}`);
  if (!empty && !value.trim()) throw new OperationError("bad-field", `${field} must not be empty`);
  // A lone surrogate can't be matched by the pattern once paired ones are ruled out, so check
  // well-formedness as well.
  const lone = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(value);
  if (lone || (multiline ? BODY_BAD : LINE_BAD).test(value.replace(/[\ud800-\udbff][\udc00-\udfff]/g, "")))
    throw new OperationError("bad-text", `${field} contains control characters`);
  if (value.normalize("NFC") !== value) throw new OperationError("bad-text", `${field} is not in Unicode NFC`);
  return value;
}

function payloadToWire(kind, p) {
  switch (kind) {
    case KIND.thread: {
      const title = checkText(p.title ?? "", "title", { empty: true });
      const url = p.url == null ? null : checkText(p.url, "url");
      const site = p.site == null ? null : checkText(p.site, "site");
      if (!title.trim() && url === null) throw new OperationError("bad-field", "a thread needs a title or a URL");
      return [title, url, site];
    }
    case KIND.comment:
    case KIND.edit:
      return [checkText(p.body, "body", { multiline: true })];
    case KIND.retract:
      return [];
    case KIND.react: {
      const r = checkText(p.reaction, "reaction", { empty: true });
      if (r !== r.trim()) throw new OperationError("bad-text", "a reaction has no surrounding spaces");
      return [r];
    }
    case KIND.moderate: {
      const action = typeof p.action === "string" ? ACTION[p.action] : p.action;
      if (!Object.values(ACTION).includes(action)) throw new OperationError("bad-field", `unknown moderation action ${p.action}`);
      // A report's subject is the comment reported (SPEC §11).
      const needsSubject = action === ACTION.add_moderator || action === ACTION.remove_moderator || action === ACTION.report;
      if (needsSubject !== (p.subject instanceof Uint8Array && p.subject.length === 32))
        throw new OperationError("bad-field", "a subject is given for add/remove moderator and report only");
      // A retitle's reason is the new title (SPEC §10.3): one line.
      const reason = action === ACTION.retitle
        ? checkText(p.reason ?? "", "title", { empty: true })
        : checkText(p.reason ?? "", "reason", { multiline: true, empty: true });
      return [action, needsSubject ? p.subject : null, reason];
    }
    case KIND.profile:
      return [checkText(p.name, "name")];
  }
  throw new OperationError("unknown-kind", `unknown operation kind ${kind}`);
}

function compareBytes(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

// The unsigned form (an 8-element array) of an operation; `deps` are sorted, duplicates dropped.
export function unsignedFields({ kind, author, thread = null, refs = [], deps = [], timestampMs, payload }) {
  kind = typeof kind === "string" ? KIND[kind] : kind;
  const standalone = kind === KIND.thread || kind === KIND.profile;
  const sorted = [...deps].sort(compareBytes).filter((d, i, a) => i === 0 || compareBytes(a[i - 1], d) !== 0);
  if (standalone ? thread !== null || refs.length || deps.length : !(thread instanceof Uint8Array) || refs.length !== 1)
    throw new OperationError("bad-field", "thread and refs do not fit this kind");
  if (sorted.length > 16) throw new OperationError("oversize", "at most 16 dependencies");
  const ts = BigInt(timestampMs);
  if (ts < 0n || ts >= 1n << 63n) throw new OperationError("bad-field", "timestamp_ms out of range");
  return [1, kind, author, thread, refs, sorted, ts, payloadToWire(kind, payload)];
}

// Build and sign: { id, idText, encoded, unsigned, signature, signingMessage }.
export async function makeOperation(signer, fields) {
  const kind = typeof fields.kind === "string" ? KIND[fields.kind] : fields.kind;
  const unsignedArray = unsignedFields({ ...fields, kind, author: signer.publicKey });
  const unsigned = encode(unsignedArray);
  const id = await sha256(unsigned);
  const signingMessage = concat(SIGNING_DOMAIN, id);
  const signature = await signer.sign(signingMessage);
  const encoded = encode([...unsignedArray, signature]);
  if (encoded.length > MAX_OPERATION_BYTES)
    throw new OperationError("oversize", `operation is ${encoded.length} bytes, the limit is ${MAX_OPERATION_BYTES}`);
  const prefix = kind === KIND.thread ? "thr" : kind === KIND.comment ? "cmt" : "op";
  return { id, idText: await formatId(prefix, id), encoded, unsigned, signature, signingMessage };
}

// The fields of canonical signed bytes (structure only; the node checks the rest).
export function decodeOperation(bytes) {
  const v = decodeCanonical(bytes);
  if (!Array.isArray(v) || v.length !== 9) throw new OperationError("malformed", "not a 9-element array");
  const [version, kind, author, thread, refs, deps, timestampMs, payload, signature] = v;
  return { version, kind, author, thread, refs, deps, timestampMs, payload, signature };
}
