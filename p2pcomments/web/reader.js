// The reader UI at / of the daemon's local API: the threads held here (those followed marked),
// one thread as a nested tree with everything the node's own identity can do in it. Writes go
// through the token-protected API; the daemon puts the token in the page on 127.0.0.1 only.

import { pickLanguage, translator } from "./i18n.js";
import { ThreadView, injectStyle, h, keepFocus, visibleCount } from "./thread-ui.js";

const root = document.getElementById("p2pc-reader");
const token = document.querySelector('meta[name="p2pc-token"]')?.content || null;
const lang = pickLanguage(null);
// The reader UI's own words; the rest are the widget's.
const WORDS = {
  en: {
    threads: "Threads", follows: "followed", moderator: "moderator", owner: "owner", back: "All threads",
    follow: "Follow", unfollow: "Unfollow", nodeName: "This node's name",
    inbox: "Inbox", unread: "{n} unread", markRead: "Mark read", markAll: "Mark all read", noEntry: "Nothing in the inbox.",
    kind_reply: "replied to", kind_comment: "commented in", kind_reaction: "reacted to", kind_edit: "edited near",
    kind_moderation: "moderated", queue: "Waiting for moderation", approve: "Approve", reports: "Reports",
    rules: "Thread rules", mode: "Who is shown commenting", replies: "Replies allowed from", difficulty: "Proof of work (bits, 0-64)",
    mode_open: "Everyone", "mode_pre-moderated": "Pre-moderated: a moderator approves each comment",
    "mode_members-only": "Members only: approved authors", "mode_read-only": "Read only: nobody new",
    replies_everyone: "Everyone", replies_approved: "Approved authors", "replies_nobody-new": "Nobody new",
    saveRules: "Save rules", bans: "Banned authors", ban: "Ban", unban: "Unban", authorKey: "Author's key (key_…)",
    until: "Until (optional)", reason: "Reason (optional)", forever: "no end", approved: "Approved authors",
    approveAuthor: "Approve author", revoke: "Revoke", lists: "Recommended mute lists", listThread: "Mute list thread (thr_…)",
    recommend: "Recommend", unrecommend: "Stop recommending", saved: "Saved.", ends: "until {date}", more: "More threads",
  },
  fr: {
    threads: "Discussions", follows: "suivie", moderator: "modérateur", owner: "propriétaire",
    back: "Toutes les discussions", follow: "Suivre", unfollow: "Ne plus suivre", nodeName: "Nom de ce nœud",
    inbox: "Boîte de réception", unread: "{n} non lus", markRead: "Marquer lu", markAll: "Tout marquer lu",
    noEntry: "Rien dans la boîte de réception.", kind_reply: "a répondu à", kind_comment: "a commenté dans",
    kind_reaction: "a réagi à", kind_edit: "a modifié près de", kind_moderation: "a modéré",
    queue: "En attente de modération", approve: "Approuver", reports: "Signalements",
    rules: "Règles de la discussion", mode: "Qui est affiché", replies: "Qui peut répondre", difficulty: "Preuve de travail (bits, 0-64)",
    mode_open: "Tout le monde", "mode_pre-moderated": "Prémodérée : un modérateur approuve chaque commentaire",
    "mode_members-only": "Membres seulement : auteurs approuvés", "mode_read-only": "Lecture seule : personne de nouveau",
    replies_everyone: "Tout le monde", replies_approved: "Auteurs approuvés", "replies_nobody-new": "Personne de nouveau",
    saveRules: "Enregistrer les règles", bans: "Auteurs bannis", ban: "Bannir", unban: "Lever le bannissement",
    authorKey: "Clé de l’auteur (key_…)", until: "Jusqu’au (facultatif)", reason: "Raison (facultative)", forever: "sans fin",
    approved: "Auteurs approuvés", approveAuthor: "Approuver l’auteur", revoke: "Révoquer", lists: "Listes de sourdine recommandées",
    listThread: "Discussion de la liste (thr_…)", recommend: "Recommander", unrecommend: "Ne plus recommander", saved: "Enregistré.", ends: "jusqu’au {date}",
    more: "Plus de discussions",
  },
};
const shared = translator(lang);
const t = (key, values) => {
  const word = WORDS[lang]?.[key];
  return word === undefined ? shared(key, values) : word.replace(/\{(\w+)\}/g, (_, k) => values?.[k] ?? "");
};
let me = null;
let stop = () => {};
let generation = 0; // which route is on screen: a late answer for another one is dropped

class ApiError extends Error {}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = `Bearer ${token}`;
  }
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError((data && data.error && data.error.message) || `HTTP ${response.status}`);
  return data;
}

const WRITES = {
  comment: (v, a) => ["POST", `/api/threads/${v.id}/comments`, { body: a.body }],
  reply: (v, a) => ["POST", `/api/comments/${a.id}/replies`, { body: a.body }],
  edit: (v, a) => ["POST", `/api/comments/${a.id}/edits`, { body: a.body }],
  retract: (v, a) => ["POST", `/api/comments/${a.id}/retract`, {}],
  react: (v, a) => ["POST", `/api/comments/${a.id}/reactions`, { reaction: a.reaction }],
  hide: (v, a) => ["POST", `/api/comments/${a.id}/hide`, { reason: "" }],
  unhide: (v, a) => ["POST", `/api/comments/${a.id}/unhide`, { reason: "" }],
  close: (v) => ["POST", `/api/threads/${v.id}/close`, { reason: "" }],
  reopen: (v) => ["POST", `/api/threads/${v.id}/reopen`, { reason: "" }],
  add_moderator: (v, a) => ["POST", `/api/threads/${v.id}/moderators`, { key: a.key }],
  report: (v, a) => ["POST", `/api/comments/${a.id}/reports`, { reason: a.reason }],
};

// The unread count of the node's inbox (issue 12; local listener only), kept live by its events.
const inboxLink = h("a", { href: "#/inbox", class: "p2pc-inbox-link" });
async function countUnread() {
  if (!token) return;
  const { unread } = await api("GET", "/api/inbox?limit=0");
  inboxLink.textContent = `${t("inbox")} (${t("unread", { n: unread })})`;
  inboxLink.dataset.unread = unread;
}
function watchInbox() {
  if (!token) return;
  let timer = null;
  const again = () => (clearTimeout(timer), (timer = setTimeout(() => countUnread().then(() => inboxChanged()).catch(() => {}), 100)));
  const source = new EventSource("/api/inbox/events");
  source.addEventListener("entry", again);
  source.addEventListener("lagged", again);
  source.onopen = again;
}
let inboxChanged = () => {};
const nav = () => (token ? h("nav", { class: "p2pc-meta" }, inboxLink) : null);

async function showInbox(current) {
  const { entries, unread } = await api("GET", "/api/inbox?limit=200");
  if (current !== generation) return;
  const mark = (body) => api("POST", "/api/inbox/read", body).then(() => (countUnread(), showInbox(current)), (e) => say(t("error", { message: e.message })));
  const list = h("ul", { class: "p2pc-inbox" });
  for (const e of entries) {
    const quote = e.text ?? e.action ?? "";
    list.append(h("li", { "data-entry": e.id, class: e.read ? "p2pc-read" : "p2pc-unread" },
      h("div", { class: "p2pc-meta" },
        e.read ? null : h("strong", { text: "●" }),
        h("bdi", { class: "p2pc-author", text: e.actor_name || e.actor.slice(0, 12) }),
        h("span", { text: t(`kind_${e.kind}`) }),
        h("a", { href: `#/t/${e.thread}`, text: e.thread_title || e.thread.slice(0, 16) }),
        h("time", { text: new Date(e.timestamp_ms).toLocaleString(lang) })),
      quote ? h("p", { dir: "auto", text: quote }) : null,
      e.read ? null : h("button", { type: "button", onclick: () => mark({ ids: e.id }), text: t("markRead") })));
  }
  root.replaceChildren(nav(), h("p", {}, h("a", { href: "#/", text: `← ${t("back")}` })), h("h1", { text: t("inbox") }), status,
    unread ? h("button", { type: "button", class: "p2pc-mark-all", onclick: () => mark({ all: "true" }), text: t("markAll") }) : null,
    entries.length ? list : h("p", { text: t("noEntry") }));
  inboxChanged = () => current === generation && showInbox(current).catch(() => {});
}

// What waits for a moderator and what readers reported, for a thread this node's identity
// moderates (issue 11): approve buttons for the queue.
async function moderatorQueues(v) {
  const [{ waiting }, { reported }] = await Promise.all([api("GET", `/api/queue?thread=${v.id}`), api("GET", `/api/reports?thread=${v.id}`)]);
  return { waiting, reported };
}
function moderatorPanel(v, { waiting, reported }, reload) {
  const entry = (c, extra) => h("li", { "data-comment": c.id },
    h("div", { class: "p2pc-meta" }, h("bdi", { class: "p2pc-author", text: c.author_name || c.author.slice(0, 12) }), h("span", { text: (c.withheld || []).join(", ") })),
    h("p", { dir: "auto", text: c.body }), extra);
  const approve = (c) => h("button", { type: "button", onclick: () => api("POST", `/api/comments/${c.id}/approve`, {}).then(reload, (e) => say(t("error", { message: e.message }))), text: t("approve") });
  return h("section", { class: "p2pc-moderator" }, rulesPanel(v, reload),
    waiting.length ? h("h2", { text: `${t("queue")} (${waiting.length})` }) : null,
    waiting.length ? h("ul", { class: "p2pc-queue" }, ...waiting.map((c) => entry(c, approve(c)))) : null,
    reported.length ? h("h2", { text: `${t("reports")} (${reported.length})` }) : null,
    reported.length ? h("ul", { class: "p2pc-reports" }, ...reported.map((c) => entry(c, h("ul", {}, ...c.reports.map((r) => h("li", { dir: "auto", text: `${r.reporter.slice(0, 12)}: ${r.reason}` })))))) : null);
}

// The thread's own rules (issue 11, SPEC §11): its mode, who may reply, the proof of work asked,
// bans (with an optional end), approved authors and recommended mute lists. Each control writes
// one rule operation signed by the node's identity; the panel is rebuilt from the thread read again.
// A live update that leaves the rules as they were keeps the panel, and what is being typed in it.
let fieldSerial = 0;
let rulesShown = { key: null, node: null };
function rulesPanel(v, reload) {
  const own = v.rules?.thread;
  if (!own) return null;
  const key = JSON.stringify(own);
  if (rulesShown.key !== key || !rulesShown.node.isConnected) rulesShown = { key, node: buildRules(v, own, reload) };
  return rulesShown.node;
}
function buildRules(v, own, reload) {
  const fail = (e) => say(t("error", { message: e.message }));
  const send = (path, body) => api("POST", path, { thread: v.id, ...body });
  const labelled = (label, control) => {
    control.id = `p2pc-rule-${++fieldSerial}`;
    return h("div", { class: "p2pc-field" }, h("label", { for: control.id, text: label }), control);
  };
  const choice = (name, values, current) => {
    const select = h("select", { name }, ...values.map((value) => h("option", { value, text: t(`${name}_${value}`) })));
    select.value = current;
    return select;
  };
  const mode = choice("mode", ["open", "pre-moderated", "members-only", "read-only"], own.mode);
  const replies = choice("replies", ["everyone", "approved", "nobody-new"], own.replies);
  const bits = h("input", { type: "number", name: "difficulty", min: 0, max: 64, step: 1, inputmode: "numeric" });
  bits.value = String(own.difficulty);
  const settings = h("form", { class: "p2pc-rule-settings" },
    labelled(t("mode"), mode), labelled(t("replies"), replies), labelled(t("difficulty"), bits),
    h("button", { type: "submit", text: t("saveRules") }));
  settings.addEventListener("submit", async (event) => {
    event.preventDefault();
    try { // only what changed, in order: each is one signed operation
      if (mode.value !== own.mode) await send("/api/rules/mode", { mode: mode.value });
      if (replies.value !== own.replies) await send("/api/rules/replies", { who: replies.value });
      if (bits.value.trim() !== String(own.difficulty)) await send("/api/rules/difficulty", { bits: bits.value.trim() });
      await reload();
      say(t("saved")); // after the panel shows what was saved
    } catch (e) {
      fail(e);
    }
  });
  // A form of text fields and one button; `submit` gets their trimmed values.
  const keyForm = (cls, fields, button, submit) => {
    const inputs = fields.map(([label, props]) => h("input", props));
    const form = h("form", { class: cls }, ...inputs.map((input, i) => labelled(fields[i][0], input)), h("button", { type: "submit", text: button }));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const values = inputs.map((input) => input.value.trim());
      if (values[0]) submit(...values).then(reload, fail);
    });
    return form;
  };
  const short = (key) => h("code", { title: key, text: key.slice(0, 16) });
  const row = (key, detail, label, onclick) => h("li", { "data-key": key }, short(key), detail, h("button", { type: "button", onclick, text: label }));
  const keyInput = { type: "text", name: "key", required: true, pattern: "key_[a-z2-7]+", spellcheck: "false", autocomplete: "off" };
  return h("section", { class: "p2pc-rules" },
    h("h2", { text: t("rules") }), settings,
    h("h3", { text: t("bans") }),
    own.bans.length ? h("ul", { class: "p2pc-bans" }, ...own.bans.map((b) => row(b.key,
      h("span", { dir: "auto", text: [b.until_ms ? t("ends", { date: new Date(b.until_ms).toLocaleString(lang) }) : t("forever"), b.reason].filter(Boolean).join(" · ") }),
      t("unban"), () => send("/api/rules/unbans", { key: b.key }).then(reload, fail)))) : null,
    keyForm("p2pc-ban", [[t("authorKey"), keyInput], [t("until"), { type: "datetime-local", name: "until" }], [t("reason"), { type: "text", name: "reason", maxlength: 200 }]],
      t("ban"), (key, until, reason) => send("/api/rules/bans", { key, reason, until_ms: until ? String(new Date(until).getTime()) : "0" })),
    h("h3", { text: t("approved") }),
    own.approved_authors.length ? h("ul", { class: "p2pc-approved" }, ...own.approved_authors.map((key) =>
      row(key, null, t("revoke"), () => send("/api/rules/revoked", { key }).then(reload, fail)))) : null,
    keyForm("p2pc-approve-author", [[t("authorKey"), keyInput]], t("approveAuthor"), (key) => send("/api/rules/approved", { key })),
    h("h3", { text: t("lists") }),
    own.recommended_lists.length ? h("ul", { class: "p2pc-lists" }, ...own.recommended_lists.map((list) =>
      row(list, null, t("unrecommend"), () => send("/api/rules/lists", { list, recommend: "false" }).then(reload, fail)))) : null,
    keyForm("p2pc-recommend", [[t("listThread"), { ...keyInput, name: "list", pattern: "thr_[a-z2-7]+" }]], t("recommend"), (list) => send("/api/rules/lists", { list })));
}

const status = h("p", { class: "p2pc-status", role: "status", "aria-live": "polite" });
const say = (text) => (status.textContent = text);

function live(path, onChange) {
  stop();
  let timer = null;
  const source = new EventSource(path);
  const changed = () => (clearTimeout(timer), (timer = setTimeout(onChange, 100)));
  source.addEventListener("operation", changed);
  source.addEventListener("lagged", changed);
  source.onopen = changed; // after a reconnection, read again what may have been missed
  stop = () => (source.close(), clearTimeout(timer));
}

// The list shows the newest threads a page at a time ("More threads" shows one more page); a live
// update reads again as many as are shown.
const PAGE = 100;
let listed = PAGE;
let listAsked = 0; // as a thread's reloads: an answer older than one shown is dropped
let listShown = 0;
async function readThreads(count) {
  const threads = [];
  let next = null;
  do {
    const after = next ? `&after=${encodeURIComponent(next)}` : "";
    const page = await api("GET", `/api/threads?limit=${Math.min(count - threads.length, 1000)}${after}`);
    threads.push(...page.threads);
    next = page.next;
  } while (next && threads.length < count);
  return { threads, next };
}

async function showList(current, focusAt = null) {
  const serial = ++listAsked;
  const [{ threads, next }, follows, profile] = await Promise.all([
    readThreads(listed), api("GET", "/api/follows").catch(() => ({})), token ? api("GET", "/api/profile").catch(() => ({})) : null]);
  // Nothing is awaited after this check: the list never covers a thread opened meanwhile.
  if (current !== generation || serial < listShown) return;
  listShown = serial;
  const followed = new Set(follows.threads || []);
  const sites = new Set(follows.sites || []);
  const list = h("ul", { class: "p2pc-threads" });
  for (const thread of threads) {
    const marks = [];
    if (followed.has(thread.id) || sites.has(thread.site)) marks.push(t("follows"));
    if (thread.closed) marks.push(t("closed"));
    list.append(h("li", {},
      h("a", { href: `#/t/${thread.id}`, "data-focus-key": thread.id, text: thread.title || thread.url || thread.id }),
      h("div", { class: "p2pc-meta" },
        h("span", { text: t("comments", { n: thread.comment_count }) }),
        h("bdi", { text: thread.owner_name || thread.owner.slice(0, 12) }),
        h("time", { text: new Date(thread.last_activity_ms).toLocaleString(lang) }),
        marks.length ? h("span", { text: marks.join(" · ") }) : null)));
  }
  const more = next ? h("button", { type: "button", class: "p2pc-more", text: t("more"), onclick: () => {
    const shown = list.children.length;
    listed = shown + PAGE;
    showList(current, shown).catch((e) => say(t("error", { message: e.message })));
  } }) : null;
  const focusBack = keepFocus(root); // a live update leaves the keyboard on the thread it was on
  root.replaceChildren(nav(), h("h1", { text: t("threads") }), status, threads.length ? list : h("p", { text: t("noThread") }), more, token ? nameForm(profile) : null);
  focusBack();
  list.children[focusAt]?.querySelector("a").focus(); // after "More threads": on the first one added
}

// The node's display name (a profile operation signed by its identity).
function nameForm(profile) {
  const input = h("input", { type: "text", id: "p2pc-node-name", maxlength: 64 });
  input.value = profile.name || "";
  const form = h("form", {}, h("label", { for: "p2pc-node-name", text: t("nodeName") }), input, h("button", { type: "submit", text: t("setName") }));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (input.value.trim()) api("PUT", "/api/profile", { name: input.value.trim() }).then(route, (e) => say(t("error", { message: e.message })));
  });
  return form;
}

async function showThread(id, current) {
  const container = h("section", { "aria-live": "off" });
  let view = null;
  const ui = new ThreadView(container, {
    me, t, lang,
    header: (v) => h("p", { class: "p2pc-meta" },
      v.url ? h("a", { href: /^https?:/i.test(v.url) ? v.url : "#", rel: "nofollow noopener", text: v.url }) : null,
      h("bdi", { text: `${t("owner")}: ${v.owner_name || v.owner.slice(0, 12)}` }),
      v.moderators.length ? h("span", { text: `${t("moderator")}: ${v.moderators.map((k) => k.slice(0, 12)).join(", ")}` }) : null,
      h("code", { text: v.id }),
      token ? h("button", { type: "button", onclick: () => toggleFollow(), text: following ? t("unfollow") : t("follow") }) : null),
    write: async (action, args) => {
      const [method, path, body] = WRITES[action](view, args);
      await api(method, path, body);
      await reload();
    },
    report: (error) => say(t("error", { message: error.message })),
  });
  if (!token) ui.host.me = null; // read-only without the token
  let following = false;
  const toggleFollow = () =>
    api(following ? "DELETE" : "POST", "/api/follows", { thread: id }).then(reload, (e) => say(t("error", { message: e.message })));
  // Reloads overlap (a write's own and a live update's): an answer older than one already shown is
  // dropped, so the thread never steps back to a state from before the write.
  let asked = 0;
  let shown = 0;
  const reload = async () => {
    const serial = ++asked;
    const [fresh, follows] = await Promise.all([api("GET", `/api/threads/${id}`), api("GET", "/api/follows").catch(() => ({}))]);
    if (current !== generation || serial < shown) return;
    shown = serial;
    following = (follows.threads || []).includes(id);
    view = fresh;
    ui.render(view);
    const moderates = token && me && (view.owner === me || view.moderators.includes(me));
    const queues = moderates ? await moderatorQueues(view).catch(() => null) : null;
    if (current !== generation || serial < shown) return;
    const focusBack = keepFocus(extra); // before the kept rules panel leaves the page to move
    extra.replaceChildren(...(queues ? [moderatorPanel(view, queues, reload)] : []));
    focusBack();
    title.textContent = view.title || view.url || view.id;
    document.title = `${title.textContent} (${visibleCount(view)})`;
  };
  const title = h("h1");
  const extra = h("div");
  root.replaceChildren(nav(), h("p", {}, h("a", { href: "#/", text: `← ${t("back")}` })), title, status, container, extra);
  await reload();
  if (current === generation) live(`/api/threads/${id}/events`, () => reload().catch((e) => say(t("error", { message: e.message }))));
}

async function route() {
  stop();
  const current = ++generation;
  inboxChanged = () => {};
  say("");
  try {
    const match = /^#\/t\/(thr_[a-z2-7]{56})$/.exec(location.hash);
    if (match) await showThread(match[1], current);
    else if (location.hash === "#/inbox" && token) await showInbox(current);
    else {
      await showList(current);
      if (current === generation) live("/api/events", () => showList(current).catch(() => {}));
    }
  } catch (error) {
    say(t("error", { message: error.message }));
  }
}

injectStyle();
const style = document.createElement("style");
style.textContent = "body{font:16px/1.5 system-ui,sans-serif;margin:0 auto;padding:0 1rem;max-width:50rem}"
  + ".p2pc-rules .p2pc-field{display:flex;flex-wrap:wrap;gap:.25rem .5rem;margin:.25rem 0}.p2pc-rules label{flex:1 1 12rem}"
  + ".p2pc-rules input,.p2pc-rules select{flex:1 1 12rem;min-width:0;max-width:100%;font:inherit}"
  + ".p2pc-rules li{display:flex;flex-wrap:wrap;gap:.5rem;align-items:baseline}.p2pc-rules code{overflow-wrap:anywhere}";
document.head.append(style);
root.classList.add("p2pc");
document.documentElement.lang = lang;
api("GET", "/api/id").then((id) => (me = id.author), () => {}).finally(() => {
  addEventListener("hashchange", route);
  route();
  countUnread().catch(() => {});
  watchInbox();
});
