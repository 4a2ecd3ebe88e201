// A page's URL in normal form and its page thread (protocol/SPEC.md §10; the reference is
// p2pcomments/core/page_url.py, the conformance suite protocol/vectors/page_urls.json).

import { encode } from "./msgpack.js";
import { sha256, formatId } from "./crypto.js";

export const TRACKING = new Set(["_ga", "_gl", "_hsenc", "_hsmi", "dclid", "fbclid", "gbraid", "gclid", "gclsrc", "igshid", "li_fat_id", "mc_cid", "mc_eid", "mkt_tok", "msclkid", "oly_anon_id", "oly_enc_id", "ttclid", "twclid", "vero_id", "wbraid", "yclid"]);
const DEFAULT_PORT = { http: 80, https: 443 };
const UNRESERVED = /[A-Za-z0-9\-._~]/;
const PATH_SAFE = /[A-Za-z0-9\-._~!$&'()*+,;=:@/]/;
const QUERY_SAFE = /[A-Za-z0-9\-._~!$&'()*+,;=:@/?]/;

export class PageUrlError extends Error {
  constructor(reason, message) {
    super(message);
    this.reason = reason;
  }
}

const fail = (reason, message) => new PageUrlError(reason, message);

export function normalisePageUrl(url) {
  if (typeof url !== "string") throw fail("not-a-url", "a page URL is text");
  if ([...url].length > 8192) throw fail("too-long", "the URL is over 8192 characters");
  let text = url.replace(/^[\t\n\f\r ]+|[\t\n\f\r ]+$/g, "");
  if (/[\u0000-\u001f\u007f-\u009f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(text))
    throw fail("bad-character", "the URL contains a control character");
  text = text.normalize("NFC");
  const m = /^[A-Za-z][A-Za-z0-9+.\-]*:/.exec(text);
  if (!m) throw fail("not-a-url", "the URL has no scheme (https://…)");
  const scheme = m[0].slice(0, -1).toLowerCase();
  if (!(scheme in DEFAULT_PORT)) throw fail("unsupported-scheme", `a page URL is http or https, not ${scheme}`);
  let rest = text.slice(m[0].length);
  if (!rest.startsWith("//")) throw fail("not-a-url", `the URL has no // after ${scheme}:`);
  rest = rest.slice(2).split("#")[0];
  const end = rest.search(/[/?]/);
  const authority = end < 0 ? rest : rest.slice(0, end);
  rest = end < 0 ? "" : rest.slice(end);
  const q = rest.indexOf("?");
  const path = q < 0 ? rest : rest.slice(0, q);
  const query = q < 0 ? "" : rest.slice(q + 1);
  const normal = `${scheme}://${hostPort(authority, scheme)}${normalPath(path)}${normalQuery(query)}`;
  if (normal.length > 2048) throw fail("too-long", `the normal URL is ${normal.length} bytes, the limit is 2048`);
  return normal;
}

// The host of a normal URL: a page thread's site.
export function pageSite(normal) {
  return normal.split("://")[1].split(/[:/?]/)[0];
}

function hostPort(authority, scheme) {
  const hostport = authority.slice(authority.lastIndexOf("@") + 1);
  if (hostport.startsWith("[")) throw fail("bad-host", "IP literals in brackets can't name a page; use a host name");
  const colon = hostport.lastIndexOf(":");
  let host = colon < 0 ? hostport : hostport.slice(0, colon);
  const portText = colon < 0 ? "" : hostport.slice(colon + 1);
  let port = "";
  if (portText) {
    if (!/^[0-9]+$/.test(portText) || Number(portText) > 65535) throw fail("bad-port", `${portText} is not a port number`);
    if (Number(portText) !== DEFAULT_PORT[scheme]) port = `:${Number(portText)}`;
  }
  if (host.endsWith(".")) host = host.slice(0, -1);
  if (!host) throw fail("no-host", "the URL names no host");
  if (host.includes("%")) throw fail("bad-host", "the host holds a percent escape");
  let labels;
  if (/^[\x00-\x7f]*$/.test(host)) labels = host.toLowerCase().split(".");
  else {
    // The browser's URL parser maps the host by UTS #46 (non-transitional) to A-labels.
    let mapped;
    try {
      mapped = new URL(`http://${host}/`).hostname;
    } catch {
      throw fail("bad-host", "the host is not a valid name");
    }
    labels = mapped.split(".");
  }
  if (!labels.every((l) => /^[a-z0-9_\-]{1,63}$/.test(l))) throw fail("bad-host", "the host is not a valid name");
  const last = labels[labels.length - 1];
  const quad = labels.length === 4 && labels.every((l) => /^[0-9]+$/.test(l) && String(Number(l)) === l && Number(l) <= 255);
  if (/^[0-9]+$/.test(last) && !quad) throw fail("bad-host", "the host is not an IPv4 address in dotted form");
  const normal = labels.join(".");
  if (normal.length > 253) throw fail("too-long", `the host is ${normal.length} characters, the limit is 253`);
  return normal + port;
}

function percentNormal(text, safe) {
  let out = "";
  for (let i = 0; i < text.length; ) {
    const c = String.fromCodePoint(text.codePointAt(i));
    if (c === "%") {
      const escape = text.slice(i + 1, i + 3);
      if (/^[0-9a-fA-F]{2}$/.test(escape)) {
        const decoded = String.fromCharCode(parseInt(escape, 16));
        out += UNRESERVED.test(decoded) ? decoded : "%" + escape.toUpperCase();
        i += 3;
        continue;
      }
      out += "%25";
    } else if (safe.test(c)) out += c;
    else for (const b of new TextEncoder().encode(c)) out += "%" + b.toString(16).toUpperCase().padStart(2, "0");
    i += c.length;
  }
  return out;
}

function normalPath(path) {
  let normal = percentNormal(path, PATH_SAFE);
  if (normal.includes(".")) {
    const segments = normal.split("/").slice(1);
    const output = [];
    segments.forEach((segment, position) => {
      const last = position === segments.length - 1;
      if (segment === "..") {
        output.pop();
        if (last) output.push("");
      } else if (segment === ".") {
        if (last) output.push("");
      } else output.push(segment);
    });
    if (segments.length) normal = "/" + output.join("/");
  }
  return normal.replace(/\/+$/, "") || "/";
}

function normalQuery(query) {
  if (!query) return "";
  const kept = percentNormal(query, QUERY_SAFE).split("&").filter((parameter) => {
    const name = parameter.split("=")[0].toLowerCase();
    return parameter && !TRACKING.has(name) && !name.startsWith("utm_");
  });
  return kept.length ? "?" + kept.join("&") : "";
}

// The page thread of (owner key, URL): the unsigned thread operation every node derives alike,
// carrying 64 zero bytes where a signature would be. { id, idText, url, site, encoded }.
export async function pageThread(owner, url) {
  const normal = normalisePageUrl(url);
  const site = pageSite(normal);
  const fields = [1, 1, owner, null, [], [], 0, ["", normal, site]];
  const id = await sha256(encode(fields));
  return { id, idText: await formatId("thr", id), url: normal, site, encoded: encode([...fields, new Uint8Array(64)]) };
}
