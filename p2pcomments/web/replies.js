// The replies to the reader's own comments (issue 12), loaded by the widget when the reader has
// comments on the page. A browser key is not the node's key, so no gateway keeps an inbox for it:
// the replies are computed from the page JSON (a comment whose parent is a comment of the reader
// and whose author is someone else), and "new" means not shown in this browser before
// (localStorage, by comment id).

import { h } from "./thread-ui.js";

const SEEN = "p2pc.seen";
const MAX_SEEN = 2000;
const WORDS = {
  en: { title: "Replies to you", new: "new", none: "No reply to your comments yet." },
  fr: { title: "Réponses à vos commentaires", new: "nouveau", none: "Pas encore de réponse à vos commentaires." },
};

// The comments of `view` that answer a comment of `me`, newest first.
export function repliesTo(view, me) {
  const mine = new Set(view.comments.filter((c) => c.author === me).map((c) => c.id));
  return view.comments
    .filter((c) => c.author !== me && mine.has(c.parent) && !c.retracted && !c.hidden && !c.withheld?.length)
    .sort((a, b) => b.timestamp_ms - a.timestamp_ms);
}

function seen(storage) {
  try {
    return new Set(JSON.parse(storage.getItem(SEEN) || "[]"));
  } catch {
    return new Set();
  }
}

export function showReplies(widget, storage = localStorage) {
  const words = WORDS[widget.lang] || WORDS.en;
  const replies = repliesTo(widget.view, widget.key.keyText);
  // New at the first showing stays marked new until the page is reloaded.
  widget.fresh ||= new Set();
  const known = seen(storage);
  for (const c of replies) if (!known.has(c.id)) widget.fresh.add(c.id), known.add(c.id);
  storage.setItem(SEEN, JSON.stringify([...known].slice(-MAX_SEEN)));
  const fresh = replies.filter((c) => widget.fresh.has(c.id)).length;
  if (!widget.repliesBox) widget.body.before((widget.repliesBox = h("section", { class: "p2pc-replies" })));
  const list = h("ul");
  for (const c of replies) {
    const isNew = widget.fresh.has(c.id);
    list.append(h("li", { "data-reply": c.id, class: isNew ? "p2pc-new" : null },
      // A button, not a link: the page's own URL fragment is left alone.
      h("button", { type: "button", onclick: () => widget.div.ownerDocument.getElementById(`c-${c.id}`)?.scrollIntoView({ block: "center" }) }, h("bdi", { class: "p2pc-author", text: c.author_name || c.author.slice(0, 12) })),
      isNew ? h("strong", { text: ` (${words.new})` }) : null,
      ": ",
      h("span", { dir: "auto", text: c.body.length > 140 ? `${c.body.slice(0, 140)}…` : c.body })));
  }
  widget.repliesBox.replaceChildren(
    h("h3", { class: "p2pc-replies-count", text: fresh ? `${words.title} (${fresh} ${words.new})` : `${words.title} (${replies.length})` }),
    replies.length ? list : h("p", { class: "p2pc-note", text: words.none }));
}
