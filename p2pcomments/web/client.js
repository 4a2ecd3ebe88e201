// Talking to gateways: reads and signed-operation submission with fallback to the next gateway
// when one is down, live updates by server-sent events, and an outbox in localStorage for what
// was signed while no gateway answered (sent on reconnect, on the next load, or when back online).

import { hex } from "./crypto.js";
import { encode } from "./msgpack.js";

const OUTBOX_KEY = "p2pc.outbox";
const TIMEOUT_MS = 8000;
const RETRY_MS = [1000, 2000, 5000, 10000, 30000];

export class GatewayError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// Every gateway is down (or none answered in time).
export class Unreachable extends Error {}

export class Gateways {
  constructor(urls, { storage = localStorage, onState = () => {} } = {}) {
    this.urls = urls.map((u) => u.replace(/\/+$/, ""));
    if (!this.urls.length) throw new TypeError("no gateway");
    this.current = 0;
    this.storage = storage;
    this.onState = onState;
    this.down = false;
  }

  get url() {
    return this.urls[this.current];
  }

  // One request, tried on each gateway in turn from the current one. A gateway that can't be
  // reached or answers 5xx is skipped; any other answer is the answer.
  async request(path, init = {}) {
    for (let tried = 0; tried < this.urls.length; tried++) {
      const index = (this.current + tried) % this.urls.length;
      let response;
      try {
        response = await fetch(this.urls[index] + path, { ...init, credentials: "omit", signal: AbortSignal.timeout(TIMEOUT_MS) });
      } catch {
        continue;
      }
      if (response.status >= 500 || response.status === 429) continue; // busy or down: the next one
      this.setCurrent(index, false);
      let body = null;
      try {
        body = await response.json();
      } catch {}
      if (!response.ok) {
        const e = (body && body.error) || {};
        throw new GatewayError(response.status, e.code || "http-error", e.message || `HTTP ${response.status}`);
      }
      return body;
    }
    this.setState(true);
    throw new Unreachable("no gateway answers");
  }

  setCurrent(index, down) {
    const moved = index !== this.current;
    this.current = index;
    if (moved) this.onState({ gateway: this.url, down });
    this.setState(down);
  }

  setState(down) {
    if (down !== this.down) {
      this.down = down;
      this.onState({ gateway: this.url, down });
    }
  }

  get(path) {
    return this.request(path, { headers: { Accept: "application/json" } });
  }

  // Submit signed operations (their canonical bytes, sent as they are: one, or a batch as the
  // gossip payload of SPEC §8.4); the gateway checks them like gossip and can't alter them.
  postOps(ops) {
    const one = ops.length === 1;
    return this.request("/api/ops", {
      method: "POST",
      headers: { "Content-Type": one ? "application/vnd.p2pcomments.op" : "application/vnd.p2pcomments.ops" },
      body: one ? ops[0] : encode(ops),
    });
  }

  // Live events for `path` on the current gateway; on an error, the next gateway (after a short,
  // growing delay). `onEvent()` is called for every change and after every (re)connection.
  watch(path, onEvent) {
    let source = null, attempt = 0, timer = null, stopped = false;
    const open = () => {
      if (stopped) return;
      source = new EventSource(this.url + path);
      source.onopen = () => {
        attempt = 0;
        this.setState(false);
        onEvent({ type: "open" });
      };
      const changed = (event) => onEvent({ type: event.type, data: event.data });
      source.addEventListener("operation", changed);
      source.addEventListener("lagged", changed);
      source.onerror = () => {
        source.close();
        this.current = (this.current + 1) % this.urls.length;
        timer = setTimeout(open, attempt === 0 ? 0 : RETRY_MS[Math.min(attempt - 1, RETRY_MS.length - 1)]);
        if (++attempt > this.urls.length) this.setState(true);
      };
    };
    open();
    return () => {
      stopped = true;
      clearTimeout(timer);
      if (source) source.close();
    };
  }
}

// Operations signed while no gateway answered, kept until one takes them.
export class Outbox {
  constructor(gateways, storage = localStorage) {
    this.gateways = gateways;
    this.storage = storage;
    this.flushing = null;
  }

  entries() {
    try {
      const list = JSON.parse(this.storage.getItem(OUTBOX_KEY) || "[]");
      return Array.isArray(list) ? list : [];
    } catch {
      return [];
    }
  }

  save(list) {
    this.storage.setItem(OUTBOX_KEY, JSON.stringify(list));
  }

  // Send now, or keep for later when every gateway is down: { sent } or { queued }.
  // `preview` is the text shown while it waits.
  async send(thread, ops, preview = null) {
    try {
      return { sent: await this.gateways.postOps(ops) };
    } catch (error) {
      if (!(error instanceof Unreachable)) throw error;
      this.save([...this.entries(), { thread, ops: ops.map((op) => hex(op)), preview, at: Date.now() }]);
      return { queued: true };
    }
  }

  // Try to send what waits, in order; stops at the first entry no gateway takes. Entries a
  // gateway refuses (4xx) are dropped and reported to `onRejected`.
  flush(onRejected = () => {}) {
    if (!this.flushing) {
      this.flushing = (async () => {
        let sent = 0;
        for (const entry of this.entries()) {
          try {
            await this.gateways.postOps(entry.ops.map((h) => hex(h)));
            sent++;
          } catch (error) {
            if (error instanceof Unreachable) break;
            onRejected(entry, error);
          }
          this.save(this.entries().filter((e) => e.at !== entry.at || e.ops[0] !== entry.ops[0]));
        }
        return sent;
      })().finally(() => (this.flushing = null));
    }
    return this.flushing;
  }
}
