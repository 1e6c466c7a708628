// The chat page: sign in, agents, conversations, streamed replies, stop, and resume.
//
// A reply is a run. While one streams, the page remembers it (run id, conversation, last
// seq) in localStorage, so a reload reopens the conversation and replays the run's events
// from `GET /v1/runs/{id}/events`: the reply goes on streaming where it was.

import { fillAgentPicker, setupAgentForm } from "./agents.js";
import {
  ApiError,
  api,
  authFetch,
  forgetSession,
  listAll,
  readEvents,
  savedSession,
  signIn,
  whenSignedOut,
} from "./api.js";
import {
  LiveReply,
  approvalPanel,
  conversationItem,
  emptyState,
  storedMessage,
  userMessage,
} from "./render.js";
import { closeUsage, offerUsage, setupUsage } from "./usage.js";

const $ = (id) => document.getElementById(id);
const ACTIVE_RUN_KEY = "agentstream.activeRun";
const PLACE_KEY = "agentstream.place";

const state = {
  agent: null, // slug
  conversationId: null,
  run: null, // {id, controller, reply} while a reply streams on this page
  sending: false,
};

function recall(key) {
  try {
    return JSON.parse(localStorage.getItem(key) || "null");
  } catch {
    return null;
  }
}

function remember(key, value) {
  if (value == null) localStorage.removeItem(key);
  else localStorage.setItem(key, JSON.stringify(value));
}

function rememberPlace() {
  remember(PLACE_KEY, { agent: state.agent, conversation: state.conversationId });
}

function showError(id, error) {
  const text = error instanceof ApiError ? `${error.message} (${error.code})` : String(error?.message ?? error ?? "");
  $(id).textContent = text;
}

// ---- views -------------------------------------------------------------------------

function showSignIn(message = "") {
  detachRun();
  closeUsage();
  $("chat-view").hidden = true;
  $("account").hidden = true;
  $("sign-in-view").hidden = false;
  $("sign-in-error").textContent = message;
  $("email").focus();
}

async function showChat() {
  $("sign-in-view").hidden = true;
  closeUsage();
  $("chat-view").hidden = false;
  $("account").hidden = false;
  $("who").textContent = savedSession()?.email ?? "";
  offerUsage().catch((error) => showError("chat-error", error));
  const active = recall(ACTIVE_RUN_KEY);
  const place = recall(PLACE_KEY);
  await loadAgents(active?.agent ?? place?.agent);
  $("message").focus();
  if (active && active.agent === state.agent) {
    // Resolves when the resumed reply ends.
    await openConversation(active.conversation_id, active.run_id);
    return;
  }
  remember(ACTIVE_RUN_KEY, null); // its agent is gone: the reply is in its conversation
  if (place?.conversation && place.agent === state.agent) {
    await openConversation(place.conversation);
  }
}

whenSignedOut(() => showSignIn("Your session has ended; please sign in again."));

$("sign-in").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("sign-in-error").textContent = "";
  try {
    await signIn($("email").value.trim(), $("password").value);
    $("password").value = "";
    await showChat();
  } catch (error) {
    showError("sign-in-error", error);
  }
});

$("sign-out").addEventListener("click", async () => {
  const session = savedSession();
  detachRun();
  forgetSession();
  remember(PLACE_KEY, null);
  remember(ACTIVE_RUN_KEY, null);
  if (session?.refresh_token) {
    // Best effort: the refresh token stops working on the server too.
    fetch("/v1/auth/logout", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: session.refresh_token }),
    }).catch(() => {});
  }
  showSignIn();
});

setupUsage();

$("toggle-sidebar").addEventListener("click", () => {
  const open = $("sidebar").classList.toggle("open");
  $("toggle-sidebar").setAttribute("aria-expanded", String(open));
});

// ---- agents ------------------------------------------------------------------------

async function loadAgents(preferred) {
  await selectAgent(await fillAgentPicker(preferred));
}

async function selectAgent(slug) {
  detachRun();
  state.agent = slug;
  state.conversationId = null;
  rememberPlace();
  $("composer").querySelectorAll("textarea, button").forEach((n) => (n.disabled = !slug));
  showNewChat();
  await loadConversations();
}

$("agent").addEventListener("change", () => selectAgent($("agent").value));

setupAgentForm(
  async (slug) => {
    await loadAgents(slug);
    $("message").focus();
  },
  (error) => showError("new-agent-error", error),
);

// ---- conversations -----------------------------------------------------------------

async function loadConversations() {
  const list = $("conversations");
  if (!state.agent) {
    list.replaceChildren();
    return;
  }
  const page = await api(`/v1/conversations?agent=${encodeURIComponent(state.agent)}&limit=50`);
  list.replaceChildren(
    ...page.items.map((c) => conversationItem(c, state.conversationId, (id) => openConversation(id))),
  );
}

function showNewChat() {
  $("messages").replaceChildren(emptyState("Send a message to start a conversation."));
  $("chat-error").textContent = "";
}

$("new-chat").addEventListener("click", () => {
  detachRun();
  state.conversationId = null;
  rememberPlace();
  showNewChat();
  markCurrent();
  $("sidebar").classList.remove("open");
  $("message").focus();
});

function markCurrent() {
  for (const button of $("conversations").querySelectorAll("button.conversation")) {
    if (button.dataset.conversationId === state.conversationId) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
}

/** The id of a reply still streaming in this conversation, if its last message is one. */
async function streamingRunId(messages) {
  const last = messages.at(-1);
  // While a reply streams its stored row reads `interrupted` (what it would be if the
  // server died); the run says whether it is really still going.
  if (last?.role !== "assistant" || last.status !== "interrupted") return null;
  try {
    const run = await api(`/v1/runs/${last.id}`);
    return run.status === "running" ? run.id : null;
  } catch {
    return null;
  }
}

/** Show a conversation; a reply still streaming (`runId`, or found) is followed live. */
async function openConversation(id, runId = null) {
  detachRun();
  state.conversationId = id;
  rememberPlace();
  markCurrent();
  $("sidebar").classList.remove("open");
  $("chat-error").textContent = "";
  let messages;
  try {
    messages = await listAll(`/v1/conversations/${id}/messages`);
  } catch (error) {
    remember(ACTIVE_RUN_KEY, null);
    state.conversationId = null;
    rememberPlace();
    showNewChat();
    if (error instanceof ApiError && error.status === 404) return;
    throw error;
  }
  runId ??= await streamingRunId(messages);
  const box = $("messages");
  // The streaming reply is rebuilt from its run's events, not from its checkpointed row.
  box.replaceChildren(...messages.filter((m) => m.id !== runId).map(storedMessage));
  if (runId) await resumeRun(runId, messages);
  else await showPendingApprovals();
  scrollDown();
}

/** A paused reply's waiting tool calls (kept by the server: they survive a reload). */
async function showPendingApprovals() {
  $("messages").querySelector(".approvals")?.remove();
  if (!state.conversationId || state.run) return;
  const conversationId = state.conversationId;
  const conversation = await api(`/v1/conversations/${conversationId}`);
  const pending = conversation.pending_approvals ?? [];
  if (!pending.length || state.conversationId !== conversationId || state.run) return;
  const panel = approvalPanel(pending, (decisions) => {
    send({ decisions }).catch((error) => showError("chat-error", error));
  });
  $("messages").append(panel);
  scrollDown();
}

// ---- chat --------------------------------------------------------------------------

function scrollDown() {
  const box = $("messages");
  box.scrollTop = box.scrollHeight;
}

function setBusy(busy) {
  $("send").hidden = busy;
  $("stop").hidden = !busy;
  $("stop").disabled = false;
}

/** Forget the reply streaming on this page (the run itself carries on on the server). */
function detachRun() {
  if (!state.run) return;
  state.run.controller.abort();
  state.run = null;
  remember(ACTIVE_RUN_KEY, null);
  setBusy(false);
}

/** Apply a run's SSE events to `reply` until its terminal event or the end of the stream. */
async function follow(response, reply, run) {
  const box = $("messages");
  try {
    await readEvents(response, (event, seq) => {
      const terminal = reply.apply(event);
      const active = recall(ACTIVE_RUN_KEY);
      if (seq != null && active?.run_id === run.id) remember(ACTIVE_RUN_KEY, { ...active, seq });
      const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
      if (nearBottom) scrollDown();
      if (terminal) remember(ACTIVE_RUN_KEY, null);
    });
  } catch (error) {
    if (run.controller.signal.aborted) return; // we left the conversation: not an error
    reply.end("failed", "the connection was lost; reload to catch up");
    showError("chat-error", error);
  }
  if (state.run !== run) return;
  state.run = null;
  remember(ACTIVE_RUN_KEY, null);
  setBusy(false);
  await loadConversations().catch((error) => showError("chat-error", error));
  if (run.reply.node.dataset.status === "awaiting_approval") {
    await showPendingApprovals().catch((error) => showError("chat-error", error));
  }
}

function startFollowing(runId, conversationId, controller = new AbortController()) {
  const run = { id: runId, controller, reply: new LiveReply() };
  state.run = run;
  remember(ACTIVE_RUN_KEY, { run_id: runId, conversation_id: conversationId, agent: state.agent, seq: 0 });
  setBusy(true);
  $("messages").append(run.reply.node);
  scrollDown();
  return run;
}

/** Follow a run from its first event (its whole reply is rebuilt from the events). */
async function resumeRun(runId, messages) {
  const run = startFollowing(runId, state.conversationId);
  let response;
  try {
    response = await authFetch(`/v1/runs/${runId}/events?after=0`, { signal: run.controller.signal });
  } catch (error) {
    if (run.controller.signal.aborted) return;
    // Its events are gone (expired, or another server's): show the stored message instead.
    state.run = null;
    remember(ACTIVE_RUN_KEY, null);
    setBusy(false);
    const stored = messages.find((m) => m.id === runId);
    run.reply.node.replaceWith(stored ? storedMessage(stored) : emptyState(""));
    return;
  }
  await follow(response, run.reply, run);
}

/** Send a message (`{text}`), or the decisions on a paused reply's tool calls (`{decisions}`),
 * and follow the reply. */
async function send({ text, decisions }) {
  const box = $("messages");
  box.querySelector(".empty")?.remove();
  const panel = box.querySelector(".approvals");
  const mine = decisions ? panel : userMessage(text);
  if (!decisions) box.append(mine);
  scrollDown();
  const controller = new AbortController();
  let response;
  state.sending = true; // until the run starts, a second Enter must not send again
  try {
    response = await authFetch(`/v1/agents/${encodeURIComponent(state.agent)}/chat/stream/advanced`, {
      method: "POST",
      json: {
        ...(decisions ? { decisions } : { message: text }),
        ...(state.conversationId ? { conversation_id: state.conversationId } : {}),
      },
      signal: controller.signal,
    });
  } catch (error) {
    // Refused before the run started (inactive agent, too many runs…): nothing was stored.
    if (decisions) {
      for (const button of panel?.querySelectorAll("button") ?? []) button.disabled = false;
    } else {
      mine.remove();
      $("message").value = text;
    }
    showError("chat-error", error);
    return;
  } finally {
    state.sending = false;
  }
  panel?.remove();
  const conversationId = response.headers.get("X-Conversation-Id");
  const isNew = state.conversationId !== conversationId;
  state.conversationId = conversationId;
  rememberPlace();
  const run = startFollowing(response.headers.get("X-Run-Id"), conversationId, controller);
  if (isNew) loadConversations().catch((error) => showError("chat-error", error));
  await follow(response, run.reply, run);
}

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("message").value.trim();
  if (!text || state.run || state.sending || !state.agent) return;
  $("message").value = "";
  $("chat-error").textContent = "";
  send({ text }).catch((error) => showError("chat-error", error));
});

$("message").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("composer").requestSubmit();
  }
});

$("stop").addEventListener("click", async () => {
  if (!state.run) return;
  $("stop").disabled = true;
  try {
    // The stream itself reports the outcome: `done` with status `cancelled`.
    await api(`/v1/runs/${state.run.id}/cancel`, { method: "POST" });
  } catch (error) {
    $("stop").disabled = false;
    showError("chat-error", error);
  }
});

// ---- start -------------------------------------------------------------------------

if (savedSession()) {
  showChat().catch((error) => {
    if (!$("sign-in-view").hidden) return; // already asked to sign in again
    showError("chat-error", error);
  });
} else {
  showSignIn();
}
