// Replies as sanitised Markdown: `marked` renders, `DOMPurify` sanitises (both vendored, pinned:
// src/agentstream/web/vendor). Nothing from model output runs: raw HTML in a reply is shown as
// text, and the HTML marked makes is filtered to the tags Markdown produces, links to http(s)
// and mailto (opening in a new tab with rel=noopener).

import { Marked } from "./vendor/marked.esm.js";
import DOMPurify from "./vendor/purify.es.mjs";

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const escapeHtml = (text) => text.replace(/[&<>"']/g, (c) => ESCAPES[c]);

const marked = new Marked({
  gfm: true,
  // A model's raw HTML is text to show, not markup: `<img onerror=…>` reads as written.
  renderer: { html: ({ text }) => escapeHtml(text) },
});

const purify = DOMPurify(window);
const SANITIZE = {
  ALLOWED_TAGS: [
    "a", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
    "li", "ol", "p", "pre", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul",
  ],
  ALLOWED_ATTR: ["href", "title", "start", "align", "class"],
  ALLOWED_URI_REGEXP: /^(?:https?:|mailto:)/i,
  RETURN_DOM_FRAGMENT: true,
};
purify.addHook("uponSanitizeAttribute", (node, data) => {
  // Only a code block's language class (`language-js`): no borrowing the page's own classes.
  if (data.attrName === "class") {
    data.keepAttr = node.nodeName === "CODE" && /^language-[\w+-]+$/.test(data.attrValue);
  }
});
purify.addHook("afterSanitizeAttributes", (node) => {
  if (node.nodeName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
});

/** Markdown tokens (from `marked.lexer`) as a sanitised DOM fragment. */
function fragment(tokens) {
  return purify.sanitize(marked.parser(tokens), SANITIZE);
}

/** A whole Markdown text as a sanitised DOM fragment. */
export function renderMarkdown(text) {
  return fragment(marked.lexer(text));
}

/** An element showing `text` as Markdown (its source kept in `data-source`). */
export function markdownBlock(text) {
  const node = document.createElement("div");
  node.className = "text markdown";
  node.dataset.source = text;
  node.append(renderMarkdown(text));
  return node;
}

/**
 * A reply's Markdown while it streams. Text is appended as it arrives and drawn at most once
 * per animation frame; each draw lexes only the text after the last complete block: the
 * blocks before it are rendered once and never again, the open block (the last one, which
 * the next token may still change) is redrawn. So a long reply costs no more per token than
 * a short one. Known limit: a reference-style link (`[text][1]`) whose definition comes in a
 * later block stays unresolved until the reply is reopened (a stored reply is drawn whole).
 */
export class MarkdownStream {
  constructor() {
    this.node = document.createElement("div");
    this.node.className = "text markdown";
    this.open = document.createElement("div");
    this.open.className = "open-block";
    this.node.append(this.open);
    this.source = "";
    this.settled = 0; // length of the source's complete blocks, already rendered
    this.frame = null;
  }

  append(text) {
    this.source += text;
    this.frame ??= requestAnimationFrame(() => {
      this.frame = null;
      this.draw();
    });
  }

  draw() {
    const tokens = marked.lexer(this.source.slice(this.settled));
    let last = tokens.length - 1;
    while (last > 0 && tokens[last].type === "space") last -= 1;
    if (last > 0) {
      const complete = tokens.slice(0, last);
      this.open.before(fragment(complete));
      this.settled += complete.reduce((length, token) => length + token.raw.length, 0);
    }
    this.open.replaceChildren(fragment(tokens.slice(Math.max(last, 0))));
  }

  /** The reply (or this part of it) is over: draw what is left now, not at the next frame. */
  finish() {
    if (this.frame !== null) cancelAnimationFrame(this.frame);
    this.frame = null;
    this.draw();
    this.node.dataset.source = this.source;
  }
}
