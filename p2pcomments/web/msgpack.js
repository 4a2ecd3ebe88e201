// Canonical MessagePack (protocol/SPEC.md §3): arrays, unsigned integers, str, bin and nil, plus
// booleans and maps with string keys (the view digest and the key file use them). Every header
// and integer takes its shortest form, so encoding is the canonical check: decode(b) re-encoded
// must give b back (`decodeCanonical`).

const te = new TextEncoder();
const td = new TextDecoder("utf-8", { fatal: true });

export class MsgpackError extends Error {}

export function encode(value) {
  const out = [];
  write(out, value);
  return Uint8Array.from(out);
}

function bytes(out, n, width) {
  for (let i = width - 1; i >= 0; i--) out.push(Number((BigInt(n) >> BigInt(8 * i)) & 0xffn));
}

function header(out, n, small, smallMax, codes) {
  if (small !== null && n <= smallMax) out.push(small | n);
  else if (codes[0] && n < 0x100) out.push(codes[0], n);
  else if (n < 0x10000) (out.push(codes[1]), bytes(out, n, 2));
  else (out.push(codes[2]), bytes(out, n, 4));
}

function write(out, v) {
  if (v === null || v === undefined) out.push(0xc0);
  else if (v === false || v === true) out.push(v ? 0xc3 : 0xc2);
  else if (typeof v === "number" || typeof v === "bigint") {
    const n = BigInt(v);
    if (n < 0n || n >= 1n << 64n || (typeof v === "number" && !Number.isInteger(v)))
      throw new MsgpackError(`not an unsigned integer: ${v}`);
    if (n < 0x80n) out.push(Number(n));
    else if (n < 0x100n) out.push(0xcc, Number(n));
    else if (n < 0x10000n) (out.push(0xcd), bytes(out, n, 2));
    else if (n < 0x100000000n) (out.push(0xce), bytes(out, n, 4));
    else (out.push(0xcf), bytes(out, n, 8));
  } else if (typeof v === "string") {
    const b = te.encode(v);
    header(out, b.length, 0xa0, 31, [0xd9, 0xda, 0xdb]);
    for (const x of b) out.push(x);
  } else if (v instanceof Uint8Array) {
    header(out, v.length, null, 0, [0xc4, 0xc5, 0xc6]);
    for (const x of v) out.push(x);
  } else if (Array.isArray(v)) {
    header(out, v.length, 0x90, 15, [0, 0xdc, 0xdd]);
    for (const x of v) write(out, x);
  } else if (v instanceof Map) {
    header(out, v.size, 0x80, 15, [0, 0xde, 0xdf]);
    for (const [k, x] of v) (write(out, String(k)), write(out, x));
  } else throw new MsgpackError(`cannot encode ${typeof v}`);
}

// Decode one value that fills `data` exactly. Integers above 2^53 come back as BigInt, maps as Map.
export function decode(data) {
  const d = data instanceof Uint8Array ? data : new Uint8Array(data);
  let p = 0;
  const need = (n) => {
    if (p + n > d.length) throw new MsgpackError("truncated");
  };
  const uint = (w) => {
    need(w);
    let n = 0n;
    for (let i = 0; i < w; i++) n = (n << 8n) | BigInt(d[p++]);
    return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
  };
  const take = (n) => (need(n), d.subarray(p, (p += n)));
  const str = (n) => {
    try {
      return td.decode(take(n));
    } catch {
      throw new MsgpackError("invalid UTF-8");
    }
  };
  const list = (n, depth) => {
    const a = [];
    for (let i = 0; i < n; i++) a.push(read(depth));
    return a;
  };
  const map = (n, depth) => {
    const m = new Map();
    for (let i = 0; i < n; i++) {
      const k = read(depth);
      if (typeof k !== "string") throw new MsgpackError("map keys must be text");
      m.set(k, read(depth));
    }
    return m;
  };
  const read = (depth) => {
    if (depth > 64) throw new MsgpackError("nested too deeply");
    need(1);
    const c = d[p++];
    if (c < 0x80) return c;
    if (c >= 0xa0 && c <= 0xbf) return str(c & 31);
    if (c >= 0x90 && c <= 0x9f) return list(c & 15, depth + 1);
    if (c >= 0x80 && c <= 0x8f) return map(c & 15, depth + 1);
    switch (c) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return take(Number(uint(1))).slice();
      case 0xc5: return take(Number(uint(2))).slice();
      case 0xc6: return take(Number(uint(4))).slice();
      case 0xcc: return uint(1);
      case 0xcd: return uint(2);
      case 0xce: return uint(4);
      case 0xcf: return uint(8);
      case 0xd9: return str(Number(uint(1)));
      case 0xda: return str(Number(uint(2)));
      case 0xdb: return str(Number(uint(4)));
      case 0xdc: return list(Number(uint(2)), depth + 1);
      case 0xdd: return list(Number(uint(4)), depth + 1);
      case 0xde: return map(Number(uint(2)), depth + 1);
      case 0xdf: return map(Number(uint(4)), depth + 1);
    }
    throw new MsgpackError(`type 0x${c.toString(16)} is not allowed`);
  };
  const value = read(0);
  if (p !== d.length) throw new MsgpackError("trailing bytes");
  return value;
}

// `decode`, refusing any input that is not the canonical encoding of what it holds.
export function decodeCanonical(data) {
  const value = decode(data);
  const again = encode(value);
  if (again.length !== data.length || again.some((b, i) => b !== data[i]))
    throw new MsgpackError("non-canonical");
  return value;
}
