// Messages as DOM: stored ones from the API, and the reply being streamed. A user's text is
// shown as written; a reply's text as sanitised Markdown (markdown.js).

import { MarkdownStream, markdownBlock } from "./markdown.js";

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

const STATUS_LABELS = {
  cancelled: "Stopped",
  failed: "Failed",
  interrupted: "Interrupted",
  awaiting_approval: "Waiting for your approval",
};

function bubble(role, id) {
  const article = el("article", `message ${role}`);
  if (id) article.dataset.messageId = id;
  article.append(el("h3", "visually-hidden", role === "user" ? "You said" : "The agent said"));
  return article;
}

function pretty(args) {
  return JSON.stringify(args ?? {}, null, 2);
}

function argsSummary(args) {
  const values = Object.values(args ?? {}).map((v) => (typeof v === "string" ? v : JSON.stringify(v)));
  const text = values.join(", ");
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
}

/** A collapsible tool call; its result is filled in when it arrives. */
function toolBlock(call) {
  const details = el("details", "tool");
  details.dataset.toolCallId = call.tool_call_id;
  const summary = el("summary");
  summary.append(el("span", "tool-name", call.tool_name), el("span", "tool-args", `(${argsSummary(call.tool_args)})`));
  summary.append(el("span", "tool-state", "running…"));
  details.append(summary, el("div", "tool-label", "Arguments"), el("pre", "tool-input", pretty(call.tool_args)));
  return details;
}

function setToolResult(details, content) {
  details.classList.add("has-result");
  details.querySelector(".tool-state").textContent = "done";
  details.append(el("div", "tool-label", "Result"), el("pre", "tool-output", content ?? ""));
}

function usageText(usage) {
  return `${usage.total_tokens} tokens · ${usage.model ?? ""}`;
}

function statusBadge(article, status, note) {
  article.dataset.status = status;
  const label = STATUS_LABELS[status];
  if (!label) return;
  article.append(el("p", `status status-${status}`, note ? `${label}: ${note}` : label));
}

/** A stored message as returned by `GET /v1/conversations/{id}/messages`. */
export function storedMessage(message) {
  const article = bubble(message.role, message.id);
  if (message.role === "user") {
    article.append(el("p", "text", message.content));
    return article;
  }
  for (const call of message.tool_calls ?? []) {
    const block = toolBlock(call);
    if (call.tool_result_content != null) setToolResult(block, call.tool_result_content);
    else if (message.status === "awaiting_approval") block.querySelector(".tool-state").textContent = "approval asked";
    article.append(block);
  }
  if (message.content) article.append(markdownBlock(message.content));
  if (message.usage?.total_tokens) article.append(el("p", "meta", usageText(message.usage)));
  statusBadge(article, message.status);
  return article;
}

export function userMessage(text) {
  const article = bubble("user");
  article.append(el("p", "text", text));
  return article;
}

/** The assistant reply being streamed; each event of the run is applied in order. */
export class LiveReply {
  constructor() {
    this.node = bubble("assistant");
    this.node.dataset.status = "streaming";
    this.node.setAttribute("aria-busy", "true");
    this.typing = el("p", "typing", "…");
    this.typing.setAttribute("aria-label", "The agent is typing");
    this.node.append(this.typing);
    this.segment = null; // the Markdown that deltas append to (a tool call starts another)
  }

  /** End the text before a tool call (or the reply): its Markdown is drawn in full. */
  closeSegment() {
    this.segment?.finish();
    this.segment = null;
  }

  /** Apply one run event; returns true when it was the run's terminal event. */
  apply(event) {
    switch (event.type) {
      case "memory_context":
        if (event.memory_count) {
          this.note(`${event.memory_count} ${event.memory_count === 1 ? "memory" : "memories"} used`);
        }
        return false;
      case "text_delta":
        if (!this.segment) {
          this.segment = new MarkdownStream();
          this.typing.before(this.segment.node);
        }
        this.segment.append(event.content);
        return false;
      case "tool_call":
        this.closeSegment();
        this.typing.before(toolBlock(event));
        return false;
      case "tool_result": {
        // A call decided after a pause is shown in the paused reply, above this one.
        const scope = this.node.parentElement ?? this.node;
        const block = [...scope.querySelectorAll("details.tool")].findLast(
          (d) => d.dataset.toolCallId === event.tool_call_id && !d.classList.contains("has-result"),
        );
        if (block) setToolResult(block, event.tool_result_content);
        return false;
      }
      case "usage":
        this.note(usageText(event.usage));
        return false;
      case "done":
        this.node.dataset.messageId = event.message_id;
        this.end(event.status ?? "complete");
        return true;
      case "error":
        if (event.message_id) this.node.dataset.messageId = event.message_id;
        this.end("failed", `${event.error_code} — ${event.content}`);
        return true;
      default:
        return false; // typing and anything newer than this page
    }
  }

  note(text) {
    let meta = this.node.querySelector(".meta");
    if (!meta) {
      meta = el("p", "meta");
      this.node.append(meta);
    }
    meta.textContent = text;
  }

  end(status, note) {
    this.closeSegment();
    this.typing.remove();
    this.node.removeAttribute("aria-busy");
    statusBadge(this.node, status, note);
    if (status === "failed") this.node.querySelector(".status")?.classList.add("error");
  }
}

/**
 * The tool calls a paused reply waits on (`pending_approvals` of `GET /v1/conversations/{id}`),
 * each with Approve / Deny and an optional reason. Every call of the turn is decided at once:
 * `onDecide(decisions)` is called when each has its answer.
 */
export function approvalPanel(pending, onDecide) {
  const panel = el("section", "approvals");
  panel.setAttribute("aria-label", "Tool calls waiting for your approval");
  panel.append(el("h3", "approvals-title", pending.length === 1 ? "Approve this tool call?" : "Approve these tool calls?"));
  const answers = new Map();
  for (const approval of pending) {
    const item = el("div", "approval");
    item.dataset.approvalId = approval.approval_id;
    const head = el("p", "approval-call");
    head.append(el("span", "tool-name", approval.tool_name));
    const reasonId = `reason-${approval.approval_id}`;
    const label = el("label", "visually-hidden", `Reason for ${approval.tool_name} (optional)`);
    label.htmlFor = reasonId;
    const reason = el("input", "approval-reason");
    reason.id = reasonId;
    reason.placeholder = "Reason (optional)";
    reason.maxLength = 1000;
    const approve = el("button", "approve", "Approve");
    const deny = el("button", "deny", "Deny");
    for (const [button, approved] of [[approve, true], [deny, false]]) {
      button.type = "button";
      button.addEventListener("click", () => {
        const text = reason.value.trim();
        answers.set(approval.approval_id, { approval_id: approval.approval_id, approved, ...(text ? { reason: text } : {}) });
        item.dataset.answer = approved ? "approved" : "denied";
        approve.setAttribute("aria-pressed", String(approved));
        deny.setAttribute("aria-pressed", String(!approved));
        if (answers.size === pending.length) {
          for (const b of panel.querySelectorAll("button")) b.disabled = true;
          onDecide([...answers.values()]);
        }
      });
    }
    const actions = el("div", "approval-actions");
    actions.append(label, reason, approve, deny);
    item.append(head, el("pre", "tool-input", pretty(approval.tool_args)), actions);
    panel.append(item);
  }
  return panel;
}

export function conversationItem(conversation, current, onOpen) {
  const li = el("li");
  const button = el("button", "conversation", conversation.title || "Untitled");
  button.type = "button";
  button.dataset.conversationId = conversation.id;
  if (conversation.id === current) button.setAttribute("aria-current", "true");
  const when = new Date(conversation.updated_at);
  button.append(el("time", "when", when.toLocaleString()));
  button.querySelector("time").dateTime = conversation.updated_at;
  button.addEventListener("click", () => onOpen(conversation.id));
  li.append(button);
  return li;
}

export function emptyState(text) {
  return el("p", "empty", text);
}
