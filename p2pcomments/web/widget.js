// The blog widget: <div data-p2pc-url="…" data-p2pc-owner="key_…"> becomes the page's thread.
// The reader's key lives in this browser (keys.js); every operation is signed here and posted to
// a gateway, which can relay it but not alter it.

import { parseId, hex, formatId } from "./crypto.js";
import { makeOperation, normaliseText } from "./ops.js";
import { pageThread } from "./pageurl.js";
import { readerKey, exportKey, importKey, saveKey, KeyFileError } from "./keys.js";
import { pickLanguage, translator } from "./i18n.js";
import { Gateways, Outbox, Unreachable } from "./client.js";
import { ThreadView, injectStyle, h } from "./thread-ui.js";

const MOD_ACTIONS = { hide: 1, unhide: 2, add_moderator: 3, close: 5, reopen: 6, report: 16 };

export async function mountAll(scriptUrl, doc = document) {
  const widgets = [];
  for (const div of doc.querySelectorAll("[data-p2pc-url],[data-p2pc-owner]")) {
    if (div.p2pc) continue;
    div.p2pc = mount(div, scriptUrl);
    widgets.push(div.p2pc);
  }
  return Promise.all(widgets);
}

export async function mount(div, scriptUrl) {
  injectStyle(div.ownerDocument);
  const lang = pickLanguage(div.dataset.p2pcLang, div.ownerDocument);
  const t = translator(lang);
  const status = h("div", { class: "p2pc-status", role: "status", "aria-live": "polite" });
  const body = h("div", {}, h("p", { class: "p2pc-note", text: t("loading") }));
  const panel = h("div");
  div.replaceChildren(body, status, panel);
  div.classList.add("p2pc");
  div.lang = lang;
  const say = (text) => (status.textContent = text);
  try {
    const list = (div.dataset.p2pcGateways || new URL(scriptUrl).origin).split(",").map((s) => s.trim()).filter(Boolean);
    const owner = await parseId(div.dataset.p2pcOwner || "", ["key"]);
    const page = await pageThread(owner, div.dataset.p2pcUrl || div.ownerDocument.location.href);
    const aliases = (div.dataset.p2pcAliases || "").split(",").map((s) => s.trim()).filter(Boolean);
    const ownerText = await formatId("key", owner);
    const widget = new Widget({ div, body, status, panel, t, lang, list, owner, ownerText, page, aliases, say });
    await widget.start();
    return widget;
  } catch (error) {
    body.replaceChildren(h("p", { class: "p2pc-note", text: t("failed") }));
    say(t("error", { message: error.message }));
    throw error;
  }
}

class Widget {
  constructor(o) {
    Object.assign(this, o);
    this.gateways = new Gateways(o.list, { onState: () => this.showState() });
    this.outbox = new Outbox(this.gateways);
    this.view = null;
    this.reloading = null;
    this.reloadAgain = null;
  }

  async start() {
    this.key = await readerKey();
    this.ui = new ThreadView(this.body, {
      me: this.key.keyText, t: this.t, lang: this.lang,
      write: (action, args) => this.write(action, args),
      report: (error) => this.report(error),
    });
    this.renderPanel();
    await this.reload().catch((error) => {
      // No gateway answers: show the page's thread empty, so that what the reader writes waits
      // in the outbox.
      if (!this.view) this.ui.render((this.view = this.emptyView()));
      this.report(error);
    });
    this.stopWatching = this.gateways.watch(`/api/page/events?${this.query()}`, () => this.onChange());
    addEventListener("online", () => this.flush());
    this.flushTimer = setInterval(() => this.outbox.entries().length && this.flush(), 5000);
    this.flush();
  }

  emptyView() {
    return { id: this.page.idText, owner: this.ownerText, moderators: [], closed: false, comments: [], deps: [], exists: false };
  }

  query() {
    const query = new URLSearchParams({ url: this.page.url, owner: hex(this.owner) });
    for (const alias of this.aliases) query.append("alias", alias);
    return query;
  }

  // The page's thread (and its aliases' comments) from a gateway; it answers for a page no one
  // has written under yet too (`exists` false).
  load() {
    return this.gateways.get(`/api/page?${this.query()}`);
  }

  // One load at a time; asked during one, it loads once more after it (which may predate a write).
  reload() {
    if (this.reloading) {
      if (!this.reloadAgain) this.reloadAgain = this.reloading.catch(() => {}).then(() => ((this.reloadAgain = null), this.reload()));
      return this.reloadAgain;
    }
    this.reloading = this.load().then((view) => {
      this.view = view;
      this.ui.render(this.view);
      this.showState();
      // The replies to the reader's own comments (issue 12), computed here: loaded when they have some.
      if (view.comments.some((c) => c.author === this.key.keyText)) import("./replies.js").then((m) => m.showReplies(this));
    }).finally(() => (this.reloading = null));
    return this.reloading;
  }

  onChange() {
    clearTimeout(this.changeTimer);
    this.changeTimer = setTimeout(() => {
      this.reload().catch((error) => this.report(error));
      this.flush();
    }, 100);
  }

  async flush() {
    const sent = await this.outbox.flush((entry, error) => this.report(error));
    if (sent) await this.reload().catch(() => {});
    this.showState();
  }

  showState() {
    const waiting = this.outbox.entries();
    const parts = [];
    if (this.gateways.down) parts.push(this.t("offline"));
    if (waiting.length) parts.push(this.t("queued", { n: waiting.length }));
    this.say(parts.join(" "));
    // What waits is shown as text, so the reader sees it was kept.
    const previews = waiting.filter((e) => e.thread === this.page.idText && e.preview);
    if (previews.length) this.status.append(h("ul", {}, ...previews.map((e) => h("li", { dir: "auto", text: e.preview }))));
  }

  report(error) {
    if (error instanceof KeyFileError)
      this.say(error.reason === "encrypted" ? this.t("encrypted") : `${this.t("badKey")} (${error.message})`);
    else if (error instanceof Unreachable) this.showState();
    else this.say(this.t("error", { message: error.message }));
  }

  async sign(fields) {
    return makeOperation(this.key.signer, { timestampMs: Date.now(), ...fields });
  }

  async write(action, args) {
    // A reply to a comment of an alias thread goes to that thread (SPEC §10.4).
    const comment = args.id && this.view.comments.find((c) => c.id === args.id);
    const threadText = (comment && comment.thread) || this.page.idText;
    const canonical = threadText === this.page.idText;
    const info = canonical ? this.view : await this.gateways.get(`/api/threads/${threadText}`);
    const depsText = info.deps || [];
    const thread = canonical ? this.page.id : await parseId(threadText, ["thr"]);
    const deps = await Promise.all(depsText.map((d) => parseId(d)));
    const target = args.id ? await parseId(args.id, ["cmt"]) : thread;
    const common = { thread, refs: [action === "report" ? thread : target], deps };
    const body = () => ({ body: normaliseText(args.body) });
    let fields;
    if (action === "comment" || action === "reply") fields = { ...common, kind: "comment", payload: body() };
    else if (action === "edit") fields = { ...common, kind: "edit", payload: body() };
    else if (action === "retract") fields = { ...common, kind: "retract", payload: {} };
    else if (action === "react") fields = { ...common, kind: "react", payload: { reaction: args.reaction } };
    else if (action in MOD_ACTIONS) {
      const subject = action === "add_moderator" ? await parseId(args.key, ["key"]) : action === "report" ? target : null;
      fields = { ...common, kind: "moderate", payload: { action: MOD_ACTIONS[action], subject, reason: args.reason || "" } };
    } else throw new Error(`unknown action ${action}`);
    // Proof of work where the thread's rules ask for it (SPEC §11.6): mined in pow.js, loaded then.
    const d = info.rules?.difficulty || 0;
    const op = d && !/^(ret|hide|unh|add|clo|reo)/.test(action)
      ? await import("./pow.js").then((m) => m.makePaidOperation(this.key.signer, { timestampMs: Date.now(), ...fields }, d, (n) => this.say(m.progressText(this.lang, n, d))))
      : await this.sign(fields);
    // The first operation under a page carries the page thread with it.
    const ops = canonical && !this.view.exists ? [this.page.encoded, op.encoded] : [op.encoded];
    let result;
    try {
      result = await this.outbox.send(threadText, ops, args.body ? normaliseText(args.body) : null);
    } catch (error) {
      // The rules changed since the page was read: read them again, pay, send once more.
      if (error.code !== "unpaid" || args.paid) throw error;
      await this.reload();
      return this.write(action, { ...args, paid: 1 });
    }
    if (result.queued) this.showState();
    else await this.reload();
  }

  renderPanel(open = false) {
    const t = this.t;
    const nameId = `p2pc-name-${Math.random().toString(36).slice(2)}`;
    const keyId = `${nameId}-key`;
    const name = h("input", { type: "text", id: nameId, maxlength: 64, autocomplete: "nickname" });
    name.value = localStorage.getItem("p2pc.name") || "";
    const nameForm = h("form", {}, h("label", { for: nameId, text: t("name") }), name, h("button", { type: "submit", text: t("setName") }));
    nameForm.addEventListener("submit", async (e) => {
      e.preventDefault();
      const text = normaliseText(name.value).trim();
      if (!text) return;
      try {
        const op = await this.sign({ kind: "profile", payload: { name: text } });
        localStorage.setItem("p2pc.name", text);
        const result = await this.outbox.send(null, [op.encoded]);
        if (!result.queued) await this.reload();
      } catch (error) {
        this.report(error);
      }
    });
    const area = h("textarea", { id: keyId, spellcheck: "false", rows: 7 });
    const exportButton = h("button", { type: "button", text: t("export"), onclick: async () => {
      area.value = await exportKey(this.key);
      area.select();
    } });
    const importButton = h("button", { type: "button", text: t("import"), onclick: async () => {
      try {
        const key = await importKey(area.value);
        saveKey(key.seed);
        this.key = key;
        this.ui.host.me = key.keyText;
        this.renderPanel(true);
        if (this.view) this.ui.render(this.view);
        this.say(key.keyText);
      } catch (error) {
        this.report(error);
      }
    } });
    this.panel.replaceChildren(h("details", { class: "p2pc-key", open },
      h("summary", { text: t("key") }),
      h("p", { class: "p2pc-note", text: t("keyHelp") }),
      h("p", {}, h("code", { text: this.key.keyText })),
      nameForm,
      h("label", { for: keyId, text: t("pasteKey") }), area,
      h("div", { class: "p2pc-actions" }, exportButton, importButton)));
  }
}
