// The Usage view, for team admins: tokens per day per agent over the last 30 days as an
// inline SVG bar chart, and the totals per user, from `GET /v1/usage`.

import { ApiError, api, savedSession } from "./api.js";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const DAYS = 30;
const SERIES = 8; // colours in style.css: .series-0 … .series-7
const CHART = { width: 720, height: 220, left: 56, right: 8, top: 12, bottom: 28 };
const ADMIN_ROLES = new Set(["admin", "owner"]);

const number = (n) => n.toLocaleString("en");

function svg(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** The team the session's token is for (its `team_id` claim). */
function sessionTeam() {
  const token = savedSession()?.access_token ?? "";
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload)).team_id ?? null;
  } catch {
    return null; // not a JWT we can read: no admin views
  }
}

/** The last `DAYS` UTC days, oldest first, as `YYYY-MM-DD`. */
function lastDays(now = new Date()) {
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  return Array.from({ length: DAYS }, (_, i) =>
    new Date(today - (DAYS - 1 - i) * 86_400_000).toISOString().slice(0, 10),
  );
}

/** A round axis maximum at or above `value` (1, 2 or 5 times a power of ten). */
function niceMax(value) {
  const power = 10 ** Math.floor(Math.log10(Math.max(value, 1)));
  return [1, 2, 5, 10].map((m) => m * power).find((m) => m >= value);
}

function dayLabel(day) {
  return new Date(`${day}T00:00:00Z`).toLocaleDateString("en", {
    month: "short",
    day: "numeric",
    timeZone: "UTC",
  });
}

/** Tokens per day (one bar per day with usage), stacked by agent; `series` names the colours. */
export function usageChart(byDay, days, series) {
  const { width, height, left, right, top, bottom } = CHART;
  const plot = { width: width - left - right, height: height - top - bottom };
  const slot = plot.width / days.length;
  const perDay = new Map();
  for (const row of byDay) {
    if (!row.total_tokens) continue;
    const list = perDay.get(row.day) ?? [];
    list.push(row);
    perDay.set(row.day, list);
  }
  const totals = [...perDay.values()].map((rows) => rows.reduce((n, r) => n + r.total_tokens, 0));
  const max = niceMax(Math.max(0, ...totals));
  const y = (tokens) => top + plot.height - (tokens / max) * plot.height;

  const chart = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    class: "usage-chart",
    role: "img",
    "aria-label": `Tokens per day over the last ${days.length} days, by agent`,
  });
  for (const tick of [0, max / 2, max]) {
    chart.append(svg("line", { class: "grid", x1: left, x2: width - right, y1: y(tick), y2: y(tick) }));
    chart.append(svg("text", { class: "axis", x: left - 6, y: y(tick) + 4, "text-anchor": "end" }, number(tick)));
  }
  days.forEach((day, index) => {
    const x = left + index * slot;
    if (index % 5 === 0 || index === days.length - 1) {
      const label = { class: "axis", x: x + slot / 2, y: height - 8, "text-anchor": "middle" };
      chart.append(svg("text", label, dayLabel(day)));
    }
    const rows = perDay.get(day);
    if (!rows) return;
    const bar = svg("g", { class: "bar", "data-day": day });
    let stacked = 0;
    for (const row of rows) {
      const name = row.agent ?? "(deleted agent)";
      const rect = svg("rect", {
        class: `series-${series.get(name) % SERIES}`,
        x: x + slot * 0.15,
        width: slot * 0.7,
        y: y(stacked + row.total_tokens),
        height: Math.max(1, y(stacked) - y(stacked + row.total_tokens)),
      });
      rect.append(svg("title", {}, `${day} · ${name}: ${number(row.total_tokens)} tokens`));
      bar.append(rect);
      stacked += row.total_tokens;
    }
    chart.append(bar);
  });
  return chart;
}

function legend(series) {
  const list = el("ul", "usage-legend");
  for (const [name, index] of series) {
    const item = el("li");
    item.append(el("span", `swatch series-${index % SERIES}`), el("span", "", name));
    list.append(item);
  }
  return list;
}

function userTable(byUser) {
  const table = el("table", "usage-users");
  const head = el("tr");
  for (const title of ["User", "Runs", "Input tokens", "Output tokens", "Total tokens"]) {
    head.append(el("th", "", title));
  }
  table.append(el("thead"), el("tbody"));
  table.tHead.append(head);
  for (const user of byUser) {
    const row = el("tr");
    row.append(el("td", "", user.display_name || user.email || "(deleted user)"));
    for (const key of ["runs", "input_tokens", "output_tokens", "total_tokens"]) {
      row.append(el("td", "number", number(user[key])));
    }
    table.tBodies[0].append(row);
  }
  return table;
}

/** Draw a `GET /v1/usage` report into the view. */
export function showReport(report, days) {
  const byAgent = new Map();
  for (const row of report.by_day) {
    const name = row.agent ?? "(deleted agent)";
    byAgent.set(name, (byAgent.get(name) ?? 0) + row.total_tokens);
  }
  const names = [...byAgent.keys()].sort((a, b) => byAgent.get(b) - byAgent.get(a) || a.localeCompare(b));
  const series = new Map(names.map((name, index) => [name, index]));
  const total = report.total;
  $("usage-summary").textContent =
    `${number(total.total_tokens)} tokens in ${number(total.runs)} runs, ` +
    `${dayLabel(days[0])} – ${dayLabel(days.at(-1))} (UTC)`;
  $("usage-chart").replaceChildren(usageChart(report.by_day, days, series), legend(series));
  $("usage-users").replaceChildren(
    report.by_user.length ? userTable(report.by_user) : el("p", "empty", "No usage yet."),
  );
}

async function openUsage() {
  $("chat-view").hidden = true;
  $("usage-view").hidden = false;
  $("usage-error").textContent = "";
  const days = lastDays();
  try {
    showReport(await api(`/v1/usage?from=${days[0]}T00:00:00Z`), days);
  } catch (error) {
    $("usage-error").textContent = error instanceof ApiError ? `${error.message} (${error.code})` : String(error);
  }
}

export function closeUsage() {
  $("usage-view").hidden = true;
}

/** Wire the Usage button and the way back to the chat. */
export function setupUsage() {
  $("usage-open").addEventListener("click", () => openUsage());
  $("usage-close").addEventListener("click", () => {
    closeUsage();
    $("chat-view").hidden = false;
  });
}

/** Offer the Usage view when the signed-in user is an admin (or owner) of the team. */
export async function offerUsage() {
  const team = sessionTeam();
  const me = await api("/v1/auth/me");
  const role = me.teams.find((t) => t.id === team)?.role;
  $("usage-open").hidden = !ADMIN_ROLES.has(role);
}
