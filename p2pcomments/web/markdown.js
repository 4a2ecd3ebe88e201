// A safe Markdown subset, built as DOM nodes (createElement, textContent; never innerHTML):
// paragraphs, line breaks, *em*, **strong**, `code`, ``` fenced code ```, > quotes (depth-capped),
// [text](url) and bare links, http(s) and mailto only, rel="nofollow ugc noopener".
// Anything else, HTML included, stays text. Bounded work: no recursion deeper than MAX_QUOTE
// for blocks and MAX_INLINE for inline markup, whatever the input.

const MAX_QUOTE = 4;
const MAX_INLINE = 3;
const INLINE = /`([^`\n]+)`|\*\*([^\n]+?)\*\*|\*([^*\n]+)\*|\[([^\]\n]{1,500})\]\(([^()\s]{1,2048})\)|((?:https?:\/\/|mailto:)[^\s<>"]{1,2048})/;

export function safeUrl(text) {
  let url;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  return ["http:", "https:", "mailto:"].includes(url.protocol) ? url.href : null;
}

function el(doc, tag, text) {
  const node = doc.createElement(tag);
  if (text !== undefined) node.textContent = text;
  return node;
}

function link(doc, href, label) {
  const a = el(doc, "a", label);
  a.href = href;
  a.rel = "nofollow ugc noopener";
  return a;
}

function inline(doc, parent, text, depth) {
  while (text) {
    const m = depth < MAX_INLINE ? INLINE.exec(text) : null;
    if (!m) {
      appendLines(doc, parent, text);
      return;
    }
    if (m.index) appendLines(doc, parent, text.slice(0, m.index));
    let consumed = m[0].length;
    if (m[1] !== undefined) parent.append(el(doc, "code", m[1]));
    else if (m[2] !== undefined) inline(doc, parent.appendChild(el(doc, "strong")), m[2], depth + 1);
    else if (m[3] !== undefined) inline(doc, parent.appendChild(el(doc, "em")), m[3], depth + 1);
    else if (m[4] !== undefined) {
      const href = safeUrl(m[5]);
      if (href) parent.append(link(doc, href, m[4]));
      else appendLines(doc, parent, m[0]);
    } else {
      // A bare link does not take the punctuation that ends a sentence.
      const bare = m[6].replace(/[.,;:!?)\]'"]+$/, "");
      consumed = bare.length;
      const href = bare.length > 8 ? safeUrl(bare) : null;
      parent.append(href ? link(doc, href, bare) : doc.createTextNode(bare));
    }
    text = text.slice(m.index + consumed);
  }
}

function appendLines(doc, parent, text) {
  text.split("\n").forEach((line, i) => {
    if (i) parent.append(el(doc, "br"));
    if (line) parent.append(doc.createTextNode(line));
  });
}

function blocks(doc, parent, lines, depth) {
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (/^```/.test(line)) {
      const end = lines.indexOf("```", i + 1);
      const stop = end === -1 ? lines.length : end;
      const pre = el(doc, "pre");
      pre.append(el(doc, "code", lines.slice(i + 1, stop).join("\n")));
      parent.append(pre);
      i = stop + 1;
    } else if (/^\s*>/.test(line)) {
      const quoted = [];
      while (i < lines.length && /^\s*>/.test(lines[i])) quoted.push(lines[i++].replace(/^\s*> ?/, ""));
      if (depth < MAX_QUOTE) blocks(doc, parent.appendChild(el(doc, "blockquote")), quoted, depth + 1);
      else paragraph(doc, parent.appendChild(el(doc, "blockquote")), quoted.join("\n"));
    } else if (!line.trim()) i++;
    else {
      const para = [];
      while (i < lines.length && lines[i].trim() && !/^(```|\s*>)/.test(lines[i])) para.push(lines[i++]);
      paragraph(doc, parent, para.join("\n"));
    }
  }
}

function paragraph(doc, parent, text) {
  const p = el(doc, "p");
  inline(doc, p, text, 0);
  parent.append(p);
}

// The body as a <div dir="auto"> (so right-to-left text and overrides stay inside it).
export function renderMarkdown(body, doc = document) {
  const root = el(doc, "div");
  root.className = "p2pc-body";
  root.dir = "auto";
  blocks(doc, root, String(body).split("\n"), 0);
  return root;
}
