// The public status page. It draws what /health/details and /api/badge/system answer this browser
// (the server redacts them for a caller without a key), and redraws every REFRESH_MS.
// Every value goes in as text (textContent, text nodes): model and instance names can come from
// remote registrations, so nothing from the data is ever parsed as HTML.
"use strict";

const REFRESH_MS = 5000;
const INSTANCE_COLUMNS = [
  // [heading, how to read it from an instance, numeric?]
  ["instance", (i) => i.name, false],
  ["kind", (i) => i.source && i.source !== i.kind ? `${i.kind} (${i.source})` : i.kind, false],
  ["state", null, false],
  ["active", (i) => i.active, true],
  ["queued", (i) => i.queued, true],
  ["slots", (i) => i.max_concurrent, true],
  ["tokens/s", (i) => measured(i.tokens_per_second), true],
  ["requests", (i) => i.requests, true],
  ["errors", (i) => i.errors, true],
  ["latency ms", (i) => measured(i.latency_ms), true],
  ["first token ms", (i) => measured(i.ttft_ms), true],
  ["last seen", (i) => i.last_seen_seconds_ago === undefined ? "" : `${duration(i.last_seen_seconds_ago)} ago`, true],
];

function el(tag, className, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
}

// Averages over answered requests: 0 means none measured yet, not zero speed.
function measured(value) {
  return Number(value) ? value : "—";
}

function count(n, noun) {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

function stateTag(state) {
  const text = String(state ?? "unknown");
  return el("span", `state ${text.replace(/[^a-z_-]/gi, "")}`, text);
}

function clock(date) {
  return [date.getHours(), date.getMinutes(), date.getSeconds()].map((n) => String(n).padStart(2, "0")).join(":");
}

function duration(seconds) {
  const s = Math.max(0, Math.round(Number(seconds) || 0));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

async function fetchJson(path) {
  const response = await fetch(path, {cache: "no-store", credentials: "same-origin",
                                      headers: {Accept: "application/json"}});
  if (!response.ok) throw new Error(`${path} answered HTTP ${response.status}`);
  return response.json();
}

function drawBadge(badge) {
  const node = document.getElementById("badge");
  node.dataset.color = String(badge.color ?? "lightgrey");
  node.querySelector(".label").textContent = String(badge.label ?? "API Status");
  node.querySelector(".message").textContent = String(badge.message ?? "");
}

function drawSummary(details) {
  const parts = [`server ${details.status}`, `version ${details.version}`];
  if (details.uptime_seconds !== undefined) parts.push(`up ${duration(details.uptime_seconds)}`);
  if (details.instance_id) parts.push(`instance ${details.instance_id}`);
  if (details.cpu_count) parts.push(`${details.cpu_count} CPUs`);
  if (details.registered_instances?.length) parts.push(count(details.registered_instances.length, "registered instance"));
  if (details.lifetime) parts.push(`lifetime ${details.lifetime.state}, ${duration(details.lifetime.remaining_seconds)} left`);
  document.getElementById("summary").textContent = parts.join(" · ");
}

function instanceTable(instances) {
  const head = el("tr", null, ...INSTANCE_COLUMNS.map(([title, , numeric]) => el("th", numeric ? "number" : null, title)));
  const rows = instances.map((instance) => {
    const row = el("tr", null, ...INSTANCE_COLUMNS.map(([title, read, numeric]) => {
      const cell = read ? el("td", numeric ? "number" : null, read(instance)) : el("td", null, stateTag(instance.state));
      cell.dataset.column = title;
      return cell;
    }));
    row.dataset.instance = String(instance.name);
    return row;
  });
  const errors = instances.filter((i) => i.error).map((i) => el("p", "error", `${i.name}: ${i.error}`));
  return [el("table", "instances", el("thead", null, head), el("tbody", null, ...rows)), ...errors];
}

function modelCard(id, model) {
  const card = el("section", "model", el("h2", null, id), stateTag(model.state));
  card.dataset.model = id;
  if (model.instances) {  // a caller with a key (or no keys set): the whole picture
    const requests = model.instances.reduce((sum, i) => sum + (Number(i.requests) || 0), 0);
    card.append(el("p", "figures",
      `load: ${model.active} active · ${model.queued} queued · ${model.max_concurrent} slots` +
      ` · ${model.healthy_instances}/${count(model.instances.length, "instance")} healthy · ${count(requests, "request")}` +
      (model.n_ctx ? ` · context ${model.n_ctx}` : "")));
    if (model.error && !model.instances.some((i) => i.error && model.error.includes(i.error))) {  // not said below already
      card.append(el("p", "error", model.error));
    }
    card.append(...instanceTable(model.instances));
  }
  return card;
}

function drawModels(models) {
  const entries = Object.entries(models ?? {});
  const cards = entries.map(([id, model]) => modelCard(id, model));
  document.getElementById("models").replaceChildren(...(cards.length ? cards : [el("p", "muted", "No models are configured.")]));
  document.getElementById("redacted").hidden = !entries.length || entries.some(([, model]) => model.instances);
}

async function refresh() {
  const problem = document.getElementById("problem");
  try {
    const [details, badge] = await Promise.all([fetchJson("/health/details"), fetchJson("/api/badge/system")]);
    drawBadge(badge);
    drawSummary(details);
    drawModels(details.models);
    document.getElementById("updated").textContent = `updated ${clock(new Date())}`;
    document.body.classList.remove("stale");
    problem.hidden = true;
  } catch (error) {  // keep the last figures, marked stale, and say why
    document.body.classList.add("stale");
    problem.textContent = `Refresh failed at ${clock(new Date())}: ${error.message}. Retrying every ${REFRESH_MS / 1000} s.`;
    problem.hidden = false;
  } finally {
    setTimeout(refresh, REFRESH_MS);
  }
}

refresh();
