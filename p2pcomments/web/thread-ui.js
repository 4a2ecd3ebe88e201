// A thread as a nested tree of comments, with the forms to write in it; shared by the widget and
// the reader UI. Everything from a comment is put in the DOM as text or through the safe Markdown
// renderer; author names are isolated in <bdi>. `host` supplies the data and the writes:
//   host.me -> key text or null; host.t(key, values); host.lang
//   host.write(action, args) -> Promise   (comment, reply, edit, retract, react, hide, unhide,
//                                          close, reopen, add_moderator)

import { renderMarkdown, safeUrl } from "./markdown.js";

const MAX_NESTING = 8; // deeper replies are drawn at this depth, in order
const REACTIONS = ["👍", "❤️", "😂", "🎉"];
const STYLE = `
.p2pc{font:inherit;line-height:1.45;max-width:48rem;overflow-wrap:anywhere;color:inherit}
.p2pc *{box-sizing:border-box}
.p2pc ol{list-style:none;margin:0;padding:0}
.p2pc ol ol{margin-left:min(1.25rem,4vw);padding-left:.6rem;border-left:2px solid #8884}
.p2pc article{margin:.6rem 0}
.p2pc-meta{font-size:.85em;opacity:.8;display:flex;flex-wrap:wrap;gap:.2rem .6rem;align-items:baseline}
.p2pc-author{font-weight:600}
.p2pc-body{unicode-bidi:isolate}
.p2pc-body p{margin:.3rem 0}
.p2pc-body pre{overflow-x:auto;background:#8881;padding:.4rem;margin:.3rem 0}
.p2pc-body blockquote{margin:.3rem 0;padding-left:.6rem;border-left:3px solid #8886}
.p2pc-note{font-style:italic;opacity:.75}
.p2pc-actions{display:flex;flex-wrap:wrap;gap:.3rem;margin-top:.2rem}
.p2pc button{font:inherit;font-size:.85em;padding:.25rem .55rem;min-height:2rem;cursor:pointer}
.p2pc button[aria-pressed=true]{font-weight:700;outline:2px solid #4a90e2}
.p2pc textarea,.p2pc input[type=text]{font:inherit;width:100%;max-width:100%}
.p2pc textarea{min-height:5rem}
.p2pc form{margin:.5rem 0}
.p2pc label{display:block;font-size:.9em;margin-bottom:.2rem}
.p2pc-closed{font-weight:600;margin:1rem 0}
.p2pc-status:empty{display:none}
.p2pc-status{margin:.5rem 0;padding:.3rem .5rem;border:1px solid #c908}
`;

let counter = 0;
const uid = (name) => `p2pc-${name}-${++counter}`;

export function injectStyle(doc = document) {
  if (doc.querySelector("style[data-p2pc]")) return;
  const style = doc.createElement("style");
  style.dataset.p2pc = "";
  style.textContent = STYLE;
  doc.head.append(style);
}

function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) node.append(c);
  return node;
}

export { h };

const shortKey = (key) => key.slice(0, 12);

// A render replaces (or moves) the focused element; the function keepFocus returns gives the focus
// and caret back to it or its replacement (same data-focus-key), so text typed over a selection
// just before a live update replaces the selection.
export function keepFocus(root) {
  const active = document.activeElement;
  if (!active || active === document.body) return () => {};
  const key = active.dataset?.focusKey;
  const caret = typeof active.selectionStart === "number" ? [active.selectionStart, active.selectionEnd, active.selectionDirection] : null;
  return () => {
    const target = active.isConnected ? active : key ? root.querySelector(`[data-focus-key="${CSS.escape(key)}"]`) : null;
    if (!target || target === document.activeElement) return;
    target.focus({ preventScroll: true });
    try {
      if (caret) target.setSelectionRange(...caret);
    } catch {} // number inputs have no caret
  };
}

export function visibleCount(view) {
  return view.comments.filter((c) => !c.retracted && !c.after_close && !c.hidden && !c.withheld?.length).length;
}

export class ThreadView {
  constructor(root, host) {
    this.root = root;
    this.host = host;
    this.view = null;
    this.open = null; // {type: "reply"|"edit", id}
    this.drafts = new Map();
    this.revealed = new Set();
    this.histories = new Set(); // comments whose edit history is open
    root.classList.add("p2pc");
  }

  canModerate() {
    const v = this.view, me = this.host.me;
    return !!(v && me && (v.owner === me || v.moderators.includes(me)));
  }

  render(view) {
    this.view = view;
    const t = this.host.t;
    const focusBack = keepFocus(this.root);
    const closed = view.closed;
    const list = h("ol", { class: "p2pc-thread" });
    const stack = [list];
    for (const c of view.comments) {
      if (c.after_close) continue;
      const depth = Math.min(c.depth, MAX_NESTING);
      while (stack.length > depth + 1) stack.pop();
      const parent = stack[stack.length - 1];
      const item = h("li", {}, this.comment(c, closed));
      parent.append(item);
      if (depth < MAX_NESTING) {
        const replies = h("ol");
        item.append(replies);
        stack.push(replies);
      }
    }
    for (const ol of list.querySelectorAll("ol")) if (!ol.children.length) ol.remove();
    const parts = [
      h("h2", { class: "p2pc-count", text: t("comments", { n: visibleCount(view) }) }),
      this.host.header ? this.host.header(view) : null,
      closed ? null : this.form("comment", null, t("write"), t("send")),
      list,
      this.canModerate() ? this.moderation() : null,
      closed ? h("p", { class: "p2pc-closed", role: "status", text: t("closed") }) : null,
    ];
    this.root.replaceChildren(...parts.filter(Boolean));
    focusBack();
  }

  comment(c, closed) {
    const t = this.host.t, me = this.host.me;
    const mine = me !== null && c.author === me;
    // An imported comment: its author there, and where and when it was written.
    const origin = c.provenance || null;
    const name = origin ? origin.author_name || "—" : c.author_name || shortKey(c.author);
    const when = new Date(c.timestamp_ms);
    const site = origin && origin.author_url ? safeUrl(origin.author_url) : null;
    const author = h("bdi", { class: "p2pc-author", title: c.author, text: name });
    const meta = h("div", { class: "p2pc-meta" },
      site ? h("a", { href: site, rel: "nofollow ugc noopener" }, author) : author,
      origin ? h("span", { class: "p2pc-provenance", text: [
        origin.entry_kind === "comment" ? null : t(origin.entry_kind),
        t("imported", {
          source: origin.source_name,
          date: new Date(origin.original_timestamp_ms).toLocaleDateString(this.host.lang, {
            day: "numeric", month: "short", year: "numeric", timeZone: "UTC" }),
        }),
        c.claimed_by ? t("claimedBy", { name: c.claimed_by_name || shortKey(c.claimed_by) }) : null,
      ].filter(Boolean).join(" · ") }) : null,
      mine ? h("span", { text: `(${t("you")})` }) : null,
      h("time", { datetime: when.toISOString(), text: when.toLocaleString(this.host.lang) }),
      c.edited && !c.retracted ? h("span", { text: t("edited") }) : null,
      c.parent_edited_after ? h("span", { class: "p2pc-note", text: t("parentEdited") }) : null,
    );
    const article = h("article", { id: `c-${c.id}`, "data-comment": c.id, "aria-label": name }, meta);
    if (c.retracted) {
      article.append(h("p", { class: "p2pc-note", text: t("deleted") }));
      return article;
    }
    // What the thread's rules withhold is shown like what a moderator hid; to its author, a
    // pre-moderated comment waits for moderation.
    const held = c.withheld?.length;
    if (held && mine && c.withheld.includes("pre-moderated")) article.append(h("p", { class: "p2pc-note p2pc-waiting", text: t("waiting") }), renderMarkdown(c.body));
    else if ((c.hidden || held) && !this.revealed.has(c.id)) {
      article.append(h("p", { class: "p2pc-note" }, t(c.hidden ? "hidden" : "withheld"), " ",
        h("button", { type: "button", onclick: () => (this.revealed.add(c.id), this.render(this.view)), text: t("show") })));
    } else article.append(renderMarkdown(c.body));
    if (c.edits && c.edits.length) {
      // Every version, newest first: the edits, then the original text.
      const versions = [...c.edits].reverse();
      if (c.original) versions.push(c.original);
      // Open stays open across the re-renders live updates cause.
      const history = h("details", { open: this.histories.has(c.id) }, h("summary", { text: `${this.host.t("history")} (${versions.length})` }));
      history.addEventListener("toggle", () => (history.open ? this.histories.add(c.id) : this.histories.delete(c.id)));
      for (const v of versions)
        history.append(h("div", { class: "p2pc-meta" }, h("time", { text: new Date(v.timestamp_ms).toLocaleString(this.host.lang) })), renderMarkdown(v.body));
      article.append(history);
    }
    article.append(this.reactions(c, closed));
    const actions = h("div", { class: "p2pc-actions" });
    const act = (label, key, fn) => actions.append(h("button", { type: "button", "data-focus-key": `${key}:${c.id}`, onclick: fn, text: label }));
    if (!closed && me !== null) act(t("reply"), "reply", () => this.toggle("reply", c.id));
    if (mine && !closed) act(t("edit"), "edit", () => this.toggle("edit", c.id, c.body));
    if (mine) act(t("delete"), "delete", () => confirm(t("confirmDelete")) && this.write("retract", { id: c.id }));
    if (me !== null && !mine) act(t("report"), "report", () => {
      const reason = prompt(t("reportWhy"));
      if (reason && reason.trim()) this.write("report", { id: c.id, reason: reason.trim() });
    });
    if (this.canModerate())
      act(c.hidden ? t("unhide") : t("hide"), "hide", () => this.write(c.hidden ? "unhide" : "hide", { id: c.id }));
    article.append(actions);
    if (this.open && this.open.id === c.id)
      article.append(this.form(this.open.type, c.id, this.open.type === "reply" ? t("reply") : t("edit"), this.open.type === "reply" ? t("send") : t("save")));
    return article;
  }

  reactions(c, closed) {
    const me = this.host.me;
    const row = h("div", { class: "p2pc-actions", role: "group", "aria-label": this.host.t("react") });
    const counts = new Map(REACTIONS.map((r) => [r, []]));
    for (const r of c.reactions || []) counts.set(r.reaction, r.authors || []);
    for (const [reaction, authors] of counts) {
      const chosen = me !== null && authors.includes(me);
      const label = authors.length ? `${reaction} ${authors.length}` : reaction;
      row.append(h("button", {
        type: "button", "aria-pressed": String(chosen), "data-focus-key": `react:${reaction}:${c.id}`,
        disabled: closed || me === null,
        onclick: () => this.write("react", { id: c.id, reaction: chosen ? "" : reaction }), text: label,
      }));
    }
    return row;
  }

  toggle(type, id, body) {
    const same = this.open && this.open.type === type && this.open.id === id;
    this.open = same ? null : { type, id };
    if (!same && body !== undefined && !this.drafts.has(`${type}:${id}`)) this.drafts.set(`${type}:${id}`, body);
    this.render(this.view);
    const area = this.root.querySelector(`[data-focus-key="${type}-text:${id}"]`);
    if (area) area.focus();
  }

  form(type, id, label, submit) {
    const key = `${type}:${id}`;
    const areaId = uid("text");
    const area = h("textarea", { id: areaId, name: "body", required: true, maxlength: 32768, "data-focus-key": `${type}-text:${id}`, dir: "auto" });
    area.value = this.drafts.get(key) || "";
    area.addEventListener("input", () => this.drafts.set(key, area.value));
    const buttons = h("div", { class: "p2pc-actions" }, h("button", { type: "submit", "data-focus-key": `${type}-send:${id}`, text: submit }));
    if (id !== null) buttons.append(h("button", { type: "button", text: this.host.t("cancel"), onclick: () => this.toggle(type, id) }));
    const form = h("form", { class: `p2pc-form-${type}` }, h("label", { for: areaId, text: label }), area, buttons);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!area.value.trim()) return;
      const done = await this.write(type, { id, body: area.value });
      if (done) {
        this.drafts.delete(key);
        if (id !== null) this.open = null;
        area.value = "";
        if (this.view) this.render(this.view);
      }
    });
    return form;
  }

  moderation() {
    const t = this.host.t, v = this.view;
    const box = h("div", { class: "p2pc-actions p2pc-moderation" },
      h("button", { type: "button", "data-focus-key": "close", onclick: () => this.write(v.closed ? "reopen" : "close", {}), text: v.closed ? t("reopen") : t("close") }));
    if (v.owner === this.host.me) {
      const inputId = uid("mod");
      const input = h("input", { type: "text", id: inputId, name: "key", autocomplete: "off", "data-focus-key": "mod-key" });
      input.value = this.drafts.get("mod") || "";
      input.addEventListener("input", () => this.drafts.set("mod", input.value));
      const form = h("form", {}, h("label", { for: inputId, text: t("modKey") }), input, h("button", { type: "submit", text: t("addMod") }));
      form.addEventListener("submit", (e) => {
        e.preventDefault();
        if (input.value.trim()) this.write("add_moderator", { key: input.value.trim() }).then((done) => done && this.drafts.delete("mod"));
      });
      box.append(form);
    }
    return box;
  }

  async write(action, args) {
    try {
      await this.host.write(action, args);
      return true;
    } catch (error) {
      this.host.report(error);
      return false;
    }
  }
}
