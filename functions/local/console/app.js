// Vigil triage console: plain JavaScript over the tickets API (no build step). Every value from the API is
// written with textContent, never as HTML. The token stays in sessionStorage (this tab only).
"use strict";

const OPEN = ["new", "acknowledged", "in_progress"];
const SEVERITY_RANK = { critical: 0, high: 1, medium: 2, low: 3, info: 4 };
// Which transitions a ticket in a state allows (the server decides; this only greys out buttons).
const ALLOWED = {
  acknowledge: (t) => t.status === "new",
  respond: (t) => t.status === "acknowledged" || t.status === "in_progress",
  assign: (t) => t.status !== "closed",
  escalate: (t) => t.status !== "closed" && !t.escalated,
  close: (t) => t.status !== "closed",
  reopen: (t) => t.status === "closed",
};
const FIELDS = { acknowledge: ["note"], respond: ["note"], assign: ["assignee", "note"], escalate: ["note"],
  close: ["disposition", "note"], reopen: ["note"] };
const REQUIRED = { respond: ["note"], assign: ["assignee"], close: ["disposition"], reopen: ["note"] };

const $ = (sel) => document.querySelector(sel);
const state = { token: null, api: "", ticket: null };

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function show(section) {
  for (const id of ["sign-in", "queue", "detail"]) $("#" + id).hidden = id !== section;
}

function say(text, error) {
  const m = $("#message");
  m.textContent = text || "";
  m.className = error ? "error" : "";
}

class ApiError extends Error {
  constructor(status, body) {
    super(`${status}: ${(body && (body.error || body.text)) || "request failed"}`);
    this.status = status;
    this.body = body;
  }
}

async function api(path, options = {}) {
  const headers = Object.assign({ Authorization: "Bearer " + state.token }, options.headers || {});
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(state.api + path, {
    method: options.method || "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const body = await resp.json().catch(() => null);
  if (!resp.ok) {
    if (resp.status === 401) signOut("Your token was refused (" + ((body && body.error) || "401") + "); sign in again.");
    throw new ApiError(resp.status, body);
  }
  return body;
}

function claims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part + "===".slice((part.length + 3) % 4)));
  } catch (_) {
    return {};
  }
}

function signOut(message) {
  sessionStorage.removeItem("vigil.token");
  state.token = null;
  $("#who").textContent = "";
  $("#sign-out").hidden = true;
  show("sign-in");
  say(message || "", Boolean(message));
}

async function signIn(token, apiBase) {
  state.token = token.trim();
  state.api = (apiBase || "").trim().replace(/\/+$/, "");
  sessionStorage.setItem("vigil.token", state.token);
  sessionStorage.setItem("vigil.api", state.api);
  const c = claims(state.token);
  $("#who").textContent = `${c.sub || "?"} · ${c.role || "?"} · tenant ${c.tenant || "?"}`;
  $("#sign-out").hidden = false;
  await route();
}

// ---------------------------------------------------------------------------------------------------- queue

/// The deadline a ticket is working against: acknowledge_by until acknowledged, then close_by.
function due(t) {
  if (t.status === "closed") return null;
  return t.acknowledged_at ? { kind: "close", at: t.close_by } : { kind: "acknowledge", at: t.acknowledge_by };
}

function urgency(a, b) {
  const da = due(a), db = due(b);
  if (!da !== !db) return da ? -1 : 1;
  if (da && db && da.at !== db.at) return new Date(da.at) - new Date(db.at);
  if (a.severity !== b.severity) return SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity];
  return new Date(b.created_at) - new Date(a.created_at);
}

/// An API time (RFC 3339, nanoseconds) as `2026-03-10 12:00:05 UTC`.
function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return isNaN(d) ? String(iso) : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

function relative(iso) {
  const s = Math.round((new Date(iso) - Date.now()) / 1000);
  const abs = Math.abs(s);
  const text = abs < 90 ? `${abs}s` : abs < 5400 ? `${Math.round(abs / 60)}m` : abs < 129600 ? `${Math.round(abs / 3600)}h` : `${Math.round(abs / 86400)}d`;
  return s < 0 ? `${text} overdue` : `in ${text}`;
}

async function loadQueue() {
  const form = new FormData($("#filters"));
  const params = new URLSearchParams({ limit: "500" });
  for (const k of ["severity", "assignee", "rule"]) if (form.get(k)) params.set(k, form.get(k));
  const status = form.get("status");
  const statuses = status === "" ? OPEN : status === "all" ? [null] : [status];
  let items = [];
  for (const s of statuses) {
    const p = new URLSearchParams(params);
    if (s) p.set("status", s);
    const page = await api("/v1/tickets?" + p.toString());
    items = items.concat(page.items || []);
  }
  items.sort(urgency);
  const body = $("#tickets tbody");
  body.replaceChildren();
  for (const t of items) {
    const tr = el("tr");
    tr.dataset.id = t.id;
    tr.dataset.severity = t.severity;
    const sev = el("td");
    sev.append(el("span", t.severity, "sev sev-" + t.severity));
    const title = el("td", t.title);
    if (t.escalated) title.append(el("span", "escalated", "escalated"));
    const d = due(t);
    const dueCell = el("td", d ? `${d.kind} ${relative(d.at)}` : "closed");
    if (d && new Date(d.at) < Date.now()) dueCell.className = "overdue";
    if (d) dueCell.title = d.at;
    tr.append(sev, title, el("td", t.entity), el("td", t.status.replace("_", " ")), el("td", t.assignee || "—"), dueCell);
    tr.addEventListener("click", () => { location.hash = "#/tickets/" + encodeURIComponent(t.id); });
    body.append(tr);
  }
  $("#queue-empty").hidden = items.length > 0;
  say(`${items.length} ticket${items.length === 1 ? "" : "s"}`);
}

// ---------------------------------------------------------------------------------------------------- detail

function facts(dl, pairs) {
  dl.replaceChildren();
  for (const [k, v] of pairs) {
    dl.append(el("dt", k), el("dd", v === undefined || v === null || v === "" ? "—" : v));
  }
}

async function loadTicket(id) {
  const t = await api("/v1/tickets/" + encodeURIComponent(id));
  state.ticket = t;
  $("#d-title").textContent = t.title;
  const d = due(t);
  facts($("#d-ticket"), [
    ["Ticket", t.id], ["Status", t.status.replace("_", " ") + (t.escalated ? " · escalated" : "")],
    ["Severity", t.severity], ["Assignee", t.assignee], ["Disposition", t.disposition],
    ["Created", when(t.created_at)], ["Acknowledge by", when(t.acknowledge_by)], ["Close by", when(t.close_by)],
    ["Due", d ? `${d.kind} ${relative(d.at)}` : "closed"], ["Version", t.version],
  ]);
  for (const b of document.querySelectorAll("#actions button")) b.disabled = !ALLOWED[b.dataset.action](t);
  const history = $("#d-history tbody");
  history.replaceChildren();
  for (const h of t.history || []) {
    const tr = el("tr");
    tr.append(el("td", when(h.at)), el("td", h.actor), el("td", h.action), el("td", h.from || "—"), el("td", h.to), el("td", h.note || ""));
    history.append(tr);
  }
  const a = await api("/v1/alerts/" + encodeURIComponent(t.alert_id));
  facts($("#d-alert"), [
    ["Rule", `${a.rule_name} (${a.rule})`], ["Entity", a.entity], ["Score", a.score], ["Detections", a.count],
    ["First seen", when(a.first_seen)], ["Last seen", when(a.last_seen)],
  ]);
  $("#d-reasons").replaceChildren(...(a.reasons || []).map((r) => el("li", r)));
  $("#d-mitre").replaceChildren(...(a.mitre || []).map((m) => {
    const li = el("li");
    const link = el("a", m);
    link.href = "https://attack.mitre.org/techniques/" + m.replace(".", "/") + "/";
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    li.append(link);
    return li;
  }));
  const evidence = $("#d-evidence tbody");
  evidence.replaceChildren();
  const events = await Promise.all((a.evidence || []).map((eid) =>
    api("/v1/events/" + encodeURIComponent(eid)).catch((e) => ({ id: eid, missing: e.status === 404 }))));
  events.sort((x, y) => String(x.timestamp || "").localeCompare(String(y.timestamp || "")));
  for (const e of events) {
    const tr = el("tr");
    if (e.missing) {
      const td = el("td", `${e.id}: no longer stored (past the retention period)`);
      td.colSpan = 8;
      tr.append(td);
    } else {
      tr.append(el("td", when(e.timestamp)), el("td", e.host || "—"), el("td", e.program || "—"), el("td", e.src_ip || "—"),
        el("td", e.user || "—"), el("td", e.outcome || "—"), el("td", e.score ?? "—"), el("td", e.message || e.raw || "", "msg"));
    }
    evidence.append(tr);
  }
  say("");
}

function openAction(action) {
  const form = $("#action-form");
  form.dataset.action = action;
  $("#action-name").textContent = action;
  for (const f of ["assignee", "disposition", "note"]) {
    $("#f-" + f).hidden = !FIELDS[action].includes(f);
    form.elements[f].required = (REQUIRED[action] || []).includes(f);
  }
  form.reset();
  form.hidden = false;
  const first = form.querySelector("label:not([hidden]) input, label:not([hidden]) select");
  if (first) first.focus();
}

async function submitAction(action, fields) {
  const t = state.ticket;
  try {
    // If-Match: a ticket someone else changed meanwhile answers 412 instead of acting on a stale view.
    await api(`/v1/tickets/${encodeURIComponent(t.id)}/${action}`, {
      method: "POST", body: fields, headers: { "If-Match": String(t.version) },
    });
    $("#action-form").hidden = true;
    await loadTicket(t.id);
    say(`${action}: done`);
  } catch (e) {
    if (e.status === 412 || e.status === 409) await loadTicket(t.id).catch(() => {});
    say(e.status === 412 ? "The ticket changed meanwhile; it is reloaded — check it and try again." : e.message, true);
  }
}

// ---------------------------------------------------------------------------------------------------- routing

async function route() {
  if (!state.token) return show("sign-in");
  const m = location.hash.match(/^#\/tickets\/(.+)$/);
  try {
    if (m) {
      show("detail");
      $("#action-form").hidden = true;
      await loadTicket(decodeURIComponent(m[1]));
    } else {
      show("queue");
      await loadQueue();
    }
  } catch (e) {
    say(e.message, true);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#sign-in-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    signIn($("#token").value, $("#api").value);
  });
  $("#sign-out").addEventListener("click", () => signOut());
  $("#filters").addEventListener("submit", (ev) => { ev.preventDefault(); route(); });
  $("#back").addEventListener("click", (ev) => { ev.preventDefault(); location.hash = ""; });
  for (const b of document.querySelectorAll("#actions button")) b.addEventListener("click", () => openAction(b.dataset.action));
  $("#action-cancel").addEventListener("click", () => { $("#action-form").hidden = true; });
  $("#action-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const form = ev.target;
    const fields = {};
    for (const f of FIELDS[form.dataset.action]) {
      const v = form.elements[f].value.trim();
      if (v) fields[f] = v;
    }
    submitAction(form.dataset.action, fields);
  });
  window.addEventListener("hashchange", route);
  const saved = sessionStorage.getItem("vigil.token");
  if (saved) {
    $("#api").value = sessionStorage.getItem("vigil.api") || "";
    signIn(saved, $("#api").value);
  } else {
    show("sign-in");
  }
});
