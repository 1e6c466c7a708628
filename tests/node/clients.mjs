// Unmodified JS clients against a running agentstream; run by tests/e2e/test_node_clients.py.
// Usage: node clients.mjs <scenario> '<json options>'; prints one JSON result on stdout.
import { AbstractChat, DefaultChatTransport, lastAssistantMessageIsCompleteWithApprovalResponses } from 'ai';
import { HttpAgent } from '@ag-ui/client';

const [scenario, raw] = process.argv.slice(2);
const opts = JSON.parse(raw);
const headers = { Authorization: `Bearer ${opts.token}` };

// The state React's useChat keeps, as plain fields: AbstractChat is the SDK's Chat without React.
class State {
  constructor() { this.status = 'ready'; this.error = undefined; this.messages = []; }
  pushMessage(m) { this.messages = [...this.messages, m]; }
  popMessage() { this.messages = this.messages.slice(0, -1); }
  replaceMessage(i, m) { this.messages = this.messages.map((x, j) => (j === i ? m : x)); }
  snapshot(v) { return structuredClone(v); }
}

class Chat extends AbstractChat {
  constructor(init) { super({ ...init, state: new State() }); }
  get current() { return this.state; }
}

function newChat(body = {}) {
  const transport = new DefaultChatTransport({
    api: `${opts.url}/v1/agents/${opts.slug}/chat/ui`, headers, body,
  });
  return new Chat({ id: opts.chatId, transport });
}

const lastAssistant = (chat) => chat.current.messages.filter((m) => m.role === 'assistant').at(-1);

async function uiTurns() {
  // Two turns on one chat id: the second continues the same server-side conversation.
  const chat = newChat(opts.body ?? {});
  const turns = [];
  for (const text of opts.texts) {
    await chat.sendMessage({ text });
    const reply = lastAssistant(chat);
    turns.push({ status: chat.status, error: chat.error?.message ?? null, parts: reply?.parts, metadata: reply?.metadata, id: reply?.id });
  }
  return { turns };
}

async function uiStop() {
  // stop() once some text has arrived: the SDK aborts the fetch.
  const chat = newChat();
  const sent = chat.sendMessage({ text: 'stream a lot' });
  const deadline = Date.now() + 20000;
  const text = () => (lastAssistant(chat)?.parts ?? []).filter((p) => p.type === 'text').map((p) => p.text).join('');
  while (text().length < (opts.minChars ?? 10) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  const seen = text();
  await chat.stop();
  await sent;
  return { status: chat.status, seen, metadata: lastAssistant(chat)?.metadata };
}

async function uiApproval() {
  // useChat's tool approval: the paused reply asks, addToolApprovalResponse answers, and the SDK
  // sends the next request by itself (sendAutomaticallyWhen); onFinish marks each reply's end.
  let finished = 0;
  let resolveSecond;
  const second = new Promise((resolve) => { resolveSecond = resolve; });
  const transport = new DefaultChatTransport({ api: `${opts.url}/v1/agents/${opts.slug}/chat/ui`, headers });
  const chat = new Chat({
    id: opts.chatId,
    transport,
    sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithApprovalResponses,
    onFinish: () => { finished += 1; if (finished === 2) resolveSecond(); },
    onError: () => resolveSecond(),
  });
  await chat.sendMessage({ text: opts.text });
  const paused = structuredClone(lastAssistant(chat));
  const asking = paused.parts.find((p) => p.state === 'approval-requested');
  if (!asking) return { paused, status: chat.status, error: chat.error?.message ?? null };
  await chat.addToolApprovalResponse({ id: asking.approval.id, approved: opts.approved, reason: opts.reason });
  await second;
  const reply = lastAssistant(chat);
  return { paused, parts: reply.parts, metadata: reply.metadata, status: chat.status, error: chat.error?.message ?? null, count: chat.current.messages.length };
}

async function agui() {
  const agent = new HttpAgent({ url: `${opts.url}/v1/agents/${opts.slug}/chat/ag-ui`, headers, threadId: opts.threadId });
  agent.addMessage({ id: 'u1', role: 'user', content: opts.text });
  const events = [];
  let failure = null;
  try {
    const params = { forwardedProps: opts.forwardedProps ?? {} };
    await agent.runAgent(params, { onEvent: ({ event }) => { events.push(event); } });
  } catch (err) {
    failure = String(err?.message ?? err);
  }
  return {
    events: events.map((e) => ({ type: e.type, runId: e.runId, threadId: e.threadId, delta: e.delta, toolCallName: e.toolCallName, content: e.content, message: e.message, code: e.code, name: e.name, value: e.value })),
    messages: agent.messages,
    failure,
  };
}

async function aguiApproval() {
  // An interrupt on RUN_FINISHED, answered by the next run's resume (HttpAgent keeps the
  // pending interrupts and checks that the resume answers every one).
  const agent = new HttpAgent({ url: `${opts.url}/v1/agents/${opts.slug}/chat/ag-ui`, headers, threadId: opts.threadId });
  agent.addMessage({ id: 'u1', role: 'user', content: opts.text });
  const first = [];
  await agent.runAgent({}, { onEvent: ({ event }) => { first.push(event); } });
  const interrupts = structuredClone(agent.pendingInterrupts);
  const payload = { approved: opts.approved, ...(opts.reason ? { reason: opts.reason } : {}) };
  const resume = interrupts.map((i) => ({ interruptId: i.id, status: 'resolved', payload }));
  const second = [];
  let failure = null;
  try {
    await agent.runAgent({ resume }, { onEvent: ({ event }) => { second.push(event); } });
  } catch (err) {
    failure = String(err?.message ?? err);
  }
  const brief = (e) => ({ type: e.type, toolCallId: e.toolCallId, content: e.content, delta: e.delta, outcome: e.outcome });
  return { interrupts, first: first.map(brief), second: second.map(brief), pending: agent.pendingInterrupts, failure };
}

const scenarios = { 'ui-turns': uiTurns, 'ui-stop': uiStop, 'ui-approval': uiApproval, agui, 'agui-approval': aguiApproval };
try {
  const result = await scenarios[scenario]();
  process.stdout.write(JSON.stringify(result));
} catch (err) {
  process.stdout.write(JSON.stringify({ crashed: String(err?.stack ?? err) }));
  process.exitCode = 1;
}
