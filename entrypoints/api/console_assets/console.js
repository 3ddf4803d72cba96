// The taskman console: plain JavaScript, no library, served with the API (no CDN).
// Every figure comes from the API; values are written with textContent only, never as HTML.
"use strict";

const API = "/api/v1";
const KEY_STORE = "taskman-console-key";
const LATE_MS = 1000; // lateness shown in red beyond this
const state = { filter: {}, cursors: [], next: null, taskId: null, refreshTimer: null };

const $ = (id) => document.getElementById(id);

function headers(extra) {
  const key = sessionStorage.getItem(KEY_STORE);
  const all = Object.assign({}, extra || {});
  if (key) all.Authorization = "Bearer " + key;
  return all;
}

function showError(text) {
  const box = $("error");
  box.textContent = text || "";
  box.hidden = !text;
}

async function call(method, path, body) {
  const init = { method, headers: headers(body ? { "Content-Type": "application/json" } : {}) };
  if (body) init.body = JSON.stringify(body);
  const response = await fetch(API + path, init);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = data.detail || response.statusText;
    const said = response.status + " " + (data.title || "") + ": " + detail;
    throw new Error((KEY_ADVICE[response.status] || "") + said);
  }
  return data;
}

// What the operator can do about a refused key (AUTH=required), before the API's own words.
const KEY_ADVICE = {
  401: "This console needs an admin API key: enter it above. ",
  403: "This key lacks the admin scope the console needs: enter an admin key above. ",
};

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function time(iso) {
  return iso ? new Date(iso).toISOString().replace("T", " ").replace("Z", "") : "";
}

// ----- panels -------------------------------------------------------------------------------

const PRIORITY_NAMES = { 1: "high", 2: "medium", 3: "low" };

async function loadPanels() {
  const overview = await call("GET", "/console/overview");
  const box = $("panels");
  box.replaceChildren();
  for (const panel of overview.panels) {
    const div = document.createElement("div");
    div.className = "panel";
    div.dataset.priority = panel.priority;
    const title = document.createElement("h2");
    title.textContent = "Priority " + panel.priority + " (" + PRIORITY_NAMES[panel.priority] + ")";
    div.appendChild(title);
    const dl = document.createElement("dl");
    const rows = [
      ["not yet due", panel.not_yet_due, "not_yet_due"],
      ["due, waiting", panel.due_waiting, "due_waiting"],
      ["running", panel.running, "running"],
      ["failed", panel.failed, "failed"],
      ["succeeded", panel.succeeded, "succeeded"],
      ["cancelled", panel.cancelled, "cancelled"],
      ["succeeded / min (last 5)", panel.succeeded_per_minute.join(" "), "throughput"],
      ["start delay", panel.delay_ms / 1000 + " s", "delay"],
      ["lateness p50", ms(panel.lateness_p50_ms), "p50"],
      ["lateness p99", ms(panel.lateness_p99_ms), "p99"],
    ];
    for (const [label, value, name] of rows) {
      const dt = document.createElement("dt");
      dt.textContent = label;
      const dd = document.createElement("dd");
      dd.textContent = String(value);
      dd.dataset.field = name;
      if (name === "p99" && panel.lateness_p99_ms > LATE_MS) dd.className = "late";
      dl.append(dt, dd);
    }
    div.appendChild(dl);
    box.appendChild(div);
  }
}

function ms(value) {
  return value === null ? "-" : value + " ms";
}

// ----- task table ---------------------------------------------------------------------------

function readFilter() {
  const filter = {};
  for (const name of ["status", "priority", "type"]) {
    const value = $("filter-" + name).value;
    if (value) filter[name] = name === "priority" ? Number(value) : value;
  }
  // The pickers hold the browser's local time; the API takes an instant (RFC 3339, UTC here).
  for (const name of ["created_after", "created_before"]) {
    const value = $("filter-" + name.replace("_", "-")).value;
    if (value) filter[name] = new Date(value).toISOString();
  }
  return filter;
}

// A creation window's total is not counted (null) when the window holds more than 10,000 tasks.
function matching(total) {
  return total === null ? "more than 10,000 (not counted)" : String(total);
}

function query(filter, beforeId) {
  const params = new URLSearchParams({ limit: "50" });
  for (const [name, value] of Object.entries(filter)) params.set(name, String(value));
  if (beforeId) params.set("before_id", String(beforeId));
  return "/tasks?" + params.toString();
}

// Loads overlap (a search submitted while a live refresh is in flight): only the latest one's
// answer is shown, or an older filter's page could land last and replace the search's.
let tasksLoads = 0;

async function loadTasks() {
  const load = ++tasksLoads;
  const beforeId = state.cursors[state.cursors.length - 1];
  const page = await call("GET", query(state.filter, beforeId));
  if (load !== tasksLoads) return;
  $("total").textContent = matching(page.total) + " matching tasks";
  state.next = page.next;
  $("next-page").disabled = page.next === null;
  const body = $("tasks").tBodies[0];
  body.replaceChildren();
  for (const task of page.items) {
    const row = document.createElement("tr");
    row.dataset.taskId = task.id;
    cell(row, task.id);
    cell(row, task.type);
    cell(row, task.status, "status status-" + task.status);
    cell(row, task.priority, "priority");
    cell(row, time(task.created_at));
    cell(row, task.attempts + "/" + task.max_attempts);
    cell(row, task.type === "single" ? task.result : task.results && task.results.length + " sums");
    row.addEventListener("click", () => openTask(task.id));
    body.appendChild(row);
  }
}

// ----- one task -----------------------------------------------------------------------------

async function openTask(id) {
  state.taskId = id;
  $("task").hidden = false;
  await loadTask();
}

async function loadTask() {
  const id = state.taskId;
  if (id === null) return;
  const [task, explain, attempts] = await Promise.all([
    call("GET", "/tasks/" + id),
    call("GET", "/tasks/" + id + "/explain"),
    call("GET", "/tasks/" + id + "/attempts"),
  ]);
  $("task-id").textContent = String(task.id);
  const fields = $("task-fields");
  fields.replaceChildren();
  for (const name of ["status", "priority", "type", "created_at", "scheduled_for", "started_at",
    "finished_at", "attempts", "max_attempts", "result", "error_message"]) {
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.dataset.field = name;
    dd.textContent = task[name] === null ? "-" : String(task[name]);
    fields.append(dt, dd);
  }
  $("task-priority").value = String(task.priority);
  const reasons = $("explain");
  reasons.replaceChildren();
  for (const reason of explain.reasons) {
    const item = document.createElement("li");
    item.dataset.code = reason.code;
    item.textContent = reason.code + ": " + reason.detail;
    reasons.appendChild(item);
  }
  const body = $("attempts").tBodies[0];
  body.replaceChildren();
  for (const attempt of attempts.items) {
    const row = document.createElement("tr");
    cell(row, attempt.attempt);
    cell(row, attempt.dispatch_no);
    cell(row, time(attempt.started_at));
    cell(row, time(attempt.finished_at));
    cell(row, attempt.lateness_ms + " ms");
    cell(row, attempt.outcome || "running");
    cell(row, attempt.worker, "worker");
    cell(row, attempt.error);
    body.appendChild(row);
  }
}

async function move(path, body) {
  try {
    await call(body ? "PUT" : "POST", path, body);
    showError("");
  } catch (error) {
    showError(error.message);
  }
  await refresh();
}

// ----- bulk ---------------------------------------------------------------------------------

function bulkBody(dryRun) {
  const action = $("bulk-action").value;
  const body = { action, filter: state.filter, dry_run: dryRun };
  if (action === "change_priority") body.priority = Number($("bulk-priority").value);
  return body;
}

async function bulkDryRun() {
  const report = await call("POST", "/tasks/bulk", bulkBody(true));
  $("bulk-count").textContent = matching(report.matched) + " tasks match";
  $("bulk-apply").disabled = false;
}

async function bulkApply() {
  $("bulk-apply").disabled = true;
  const report = await call("POST", "/tasks/bulk", bulkBody(false));
  $("bulk-result").textContent = report.moved + " moved, " + report.skipped + " skipped" +
    (report.more ? " (more match: apply again)" : "");
  await refresh();
}

// ----- live ---------------------------------------------------------------------------------

async function refresh() {
  try {
    await Promise.all([loadPanels(), loadTasks(), loadTask()]);
  } catch (error) {
    showError(error.message);
  }
}

function refreshSoon() {
  if (state.refreshTimer) return;
  state.refreshTimer = setTimeout(() => {
    state.refreshTimer = null;
    refresh();
  }, 300);
}

// EventSource cannot send the API key, so the stream is read with fetch.
async function follow() {
  const live = $("live");
  for (;;) {
    try {
      const response = await fetch(API + "/events", { headers: headers() });
      if (!response.ok) throw new Error("events: " + response.status);
      live.textContent = "live";
      live.classList.add("on");
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        const parts = buffer.split(/\r?\n\r?\n/);
        buffer = parts.pop();
        if (parts.some((part) => /^data:/m.test(part))) refreshSoon();
      }
    } catch (error) {
      // retried below
    }
    live.textContent = "reconnecting";
    live.classList.remove("on");
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

// ----- wiring -------------------------------------------------------------------------------

function on(id, event, handler) {
  $(id).addEventListener(event, async (e) => {
    e.preventDefault();
    try {
      await handler();
    } catch (error) {
      showError(error.message);
    }
  });
}

on("key-form", "submit", async () => {
  sessionStorage.setItem(KEY_STORE, $("api-key").value);
  showError("");
  await refresh();
});
on("filters", "submit", async () => {
  const id = $("filter-id").value.trim();
  state.filter = readFilter();
  state.cursors = [];
  $("bulk-apply").disabled = true;
  $("bulk-count").textContent = "";
  if (id) await openTask(Number(id));
  await loadTasks();
});
on("next-page", "click", async () => {
  state.cursors.push(state.next);
  await loadTasks();
});
on("first-page", "click", async () => {
  state.cursors = [];
  await loadTasks();
});
on("bulk-action", "change", async () => {
  $("bulk-priority").hidden = $("bulk-action").value !== "change_priority";
  $("bulk-apply").disabled = true;
});
on("bulk-dry-run", "click", bulkDryRun);
on("bulk-apply", "click", bulkApply);
on("task-close", "click", async () => {
  state.taskId = null;
  $("task").hidden = true;
});
on("task-retry", "click", () => move("/tasks/" + state.taskId + "/retry"));
on("task-cancel", "click", () => move("/tasks/" + state.taskId + "/cancel"));
on("task-set-priority", "click", () =>
  move("/tasks/" + state.taskId, { priority: Number($("task-priority").value) }));

refresh();
follow();
setInterval(refresh, 5000); // a fallback, should the stream be cut
