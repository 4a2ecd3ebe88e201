// What the browser tests run in the page (tests/web/test_*.py call these through page.evaluate).

import { hex, signer, formatId, parseId, useFallback, backend } from "/web/crypto.js";
import { makeOperation, decodeOperation, normaliseText } from "/web/ops.js";
import { encode } from "/web/msgpack.js";
import { normalisePageUrl, pageSite, pageThread } from "/web/pageurl.js";
import { ThreadView, injectStyle } from "/web/thread-ui.js";
import { renderMarkdown } from "/web/markdown.js";
import { translator, pickLanguage } from "/web/i18n.js";

// Sign each vector's fields with its signer's seed; what came out, as hex.
export async function reproduce({ vectors, fallback }) {
  if (fallback) useFallback();
  const results = [];
  for (const v of vectors) {
    const u = v.unsigned;
    const s = await signer(hex(v.signer.seed));
    const payload = { ...u.payload };
    if (payload.subject) payload.subject = hex(payload.subject);
    if (payload.action !== undefined) payload.action = Number(payload.action);
    const op = await makeOperation(s, {
      kind: Number(u.kind),
      thread: u.thread && hex(u.thread),
      refs: u.refs.map(hex),
      deps: u.deps.map(hex),
      timestampMs: BigInt(u.timestamp_ms),
      payload,
    });
    const decoded = decodeOperation(hex(v.encoded));
    results.push({
      name: v.name,
      public_key: hex(s.publicKey),
      key_text: await formatId("key", s.publicKey),
      unsigned_hex: hex(op.unsigned),
      id: hex(op.id),
      id_text: op.idText,
      signing_message_hex: hex(op.signingMessage),
      signature: hex(op.signature),
      encoded: hex(op.encoded),
      reencoded: hex(encode(Object.values(decoded))),
      decoded_kind: String(decoded.kind),
      decoded_ts: String(decoded.timestampMs),
    });
  }
  return { backend: await backend(), results };
}

export async function textForms(doc) {
  const made = [], parsed = [], refused = [];
  for (const v of doc.valid)
    for (const [prefix, text] of Object.entries(v.forms)) {
      made.push([await formatId(prefix, hex(v.bytes)), text]);
      parsed.push([hex(await parseId(text)), v.bytes]);
    }
  for (const v of doc.hex_accepted) parsed.push([hex(await parseId(v.text)), v.bytes]);
  for (const v of doc.invalid) refused.push(await parseId(v.text).then(() => v.label, () => null));
  return { made, parsed, refused };
}

// The names of the encodings `decodeOperation` accepted (none should be).
export function accepted(items) {
  return items.filter((v) => {
    try {
      decodeOperation(hex(v.encoded));
      return true;
    } catch {
      return false;
    }
  }).map((v) => v.name);
}

export async function textRules() {
  const s = await signer(new Uint8Array(32));
  const thread = new Uint8Array(32).fill(7);
  const reason = (body) =>
    makeOperation(s, { kind: "comment", thread, refs: [thread], timestampMs: 1, payload: { body } })
      .then(() => "ok", (e) => e.reason);
  return {
    crlf: normaliseText("a\r\nb\rc"),
    nfc: normaliseText("e\u0301") === "\u00e9",
    control: await reason("bell \u0007"),
    notNfc: await reason("e\u0301"),
    blank: await reason("  \n "),
    tab: await reason("a\tb\nc"),
    lone: await reason("x\ud800y"),
    emoji: await reason("👍🏽"),
    big: await reason("x".repeat(32769)),
  };
}

export function pageUrls(cases) {
  const run = (url) => {
    try {
      return normalisePageUrl(url);
    } catch (e) {
      return { reason: e.reason };
    }
  };
  return {
    normalise: cases.normalise.map(([input]) => {
      const normal = run(input);
      return typeof normal === "string" ? [normal, pageSite(normal), run(normal)] : [normal];
    }),
    invalid: cases.invalid.map(([input]) => run(input)),
  };
}

export async function pageThreads(threads) {
  const made = [];
  for (const v of threads) {
    const p = await pageThread(hex(v.owner.public_key), v.input_url);
    made.push({ id: hex(p.id), id_text: p.idText, encoded: hex(p.encoded), url: p.url, site: p.site });
  }
  return made;
}

// Render `bodies` (and a reply chain `depth` deep) as a thread; what the DOM then holds.
export async function renderHostile({ bodies, depth }) {
  injectStyle();
  const key = (n) => "key_" + String(n).padStart(56, "a").slice(0, 56);
  const base = {
    parent: "thr_x", edited: false, edits: [], original: null, retracted: false, hidden: false,
    reactions: [], parent_edited_after: false, after_close: false,
  };
  const comments = bodies.map((body, i) => ({
    ...base, id: "cmt_" + String(i).padStart(56, "b"), author: key(i),
    author_name: i % 2 ? body.slice(0, 80) : null, depth: 0, timestamp_ms: 1767225600000 + i, body,
  }));
  for (let d = 0; d < depth; d++) comments.push({ ...comments[0], id: "cmt_d" + d, depth: d, body: "level " + d });
  const root = document.createElement("div");
  document.body.replaceChildren(root);
  const host = { me: null, t: translator("en"), lang: "en", write: async () => {}, report: () => {} };
  new ThreadView(root, host).render({ id: "thr_x", owner: key(0), moderators: [], closed: false, comments });
  await new Promise((r) => setTimeout(r, 50));
  const all = [...root.querySelectorAll("*")];
  const nesting = (e) => {
    let n = 0;
    for (let p = e; p; p = p.parentElement) if (p.tagName === "OL") n++;
    return n;
  };
  return {
    pwned: window.__pwned ?? null,
    onAttributes: all.flatMap((e) => [...e.attributes].filter((a) => /^on/i.test(a.name)).map((a) => `${e.tagName} ${a.name}`)),
    badHrefs: [...root.querySelectorAll("[href],[src]")]
      .map((e) => e.getAttribute("href") || e.getAttribute("src"))
      .filter((h) => !/^(https?:|mailto:)/.test(h)),
    rels: [...root.querySelectorAll("a[href]")].map((a) => a.rel),
    tags: [...new Set(all.map((e) => e.tagName.toLowerCase()))].sort(),
    texts: [...root.querySelectorAll(".p2pc-body")].map((b) => b.textContent),
    bodyDirs: [...root.querySelectorAll(".p2pc-body")].map((b) => `${b.dir} ${getComputedStyle(b).unicodeBidi}`),
    authorsIsolated: [...root.querySelectorAll(".p2pc-author")].every((a) => a.tagName === "BDI"),
    maxNesting: Math.max(...all.map(nesting)),
  };
}

export function markdown(text) {
  return renderMarkdown(text).innerHTML;
}

export function languages() {
  const fr = translator("fr"), en = translator("en");
  document.documentElement.lang = "fr-FR";
  const fromPage = pickLanguage(undefined);
  document.documentElement.lang = "";
  return {
    closed: fr("closed"), one: fr("comments", { n: 1 }), many: fr("comments", { n: 3 }),
    enOne: en("comments", { n: 1 }), enMany: en("comments", { n: 2 }), fromPage,
    explicit: pickLanguage("en-GB"), unknown: pickLanguage("xx"),
  };
}
