// The Candado dashboard: polls the observer's JSON once a second and
// follows its event stream. No dependencies; every value from the server is
// put into the page as text, never as markup.
"use strict";

const POLL_MS = 1000;
const EVENTS_KEPT = 300;
const CHART_POINTS = 300; // five minutes at one point a second
const CHART_MIN_POINTS = 60; // a young pool's chart spans a minute at least

// h("td", {class: "num"}, "3") builds an element; children are nodes or text.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const $ = (id) => document.getElementById(id);
const word = (v) => (typeof v === "string" ? v : v === null || v === undefined ? "" : JSON.stringify(v));
const dot = (cls) => h("span", { class: "dot " + cls });
const num = (v, digits = 0) =>
  v === undefined || v === null ? "–" : Number(v).toLocaleString("en", { maximumFractionDigits: digits });

function duration(d) {
  if (!d) return "";
  const s = d.secs + d.nanos / 1e9;
  if (s < 1) return Math.round(s * 1000) + " ms";
  if (s < 120) return s.toFixed(1) + " s";
  if (s < 7200) return Math.round(s / 60) + " min";
  return (s / 3600).toFixed(1) + " h";
}

function bytes(n) {
  if (n === undefined || n === null) return "";
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return n.toFixed(i ? 1 : 0) + " " + units[i];
}

// An exit reason ({kind, detail}) in a few words.
function exitText(reason) {
  if (!reason) return "";
  const d = reason.detail;
  if (d === undefined || d === null) return reason.kind;
  if (typeof d === "string") return reason.kind + ": " + d;
  if (d.reason !== undefined) return (d.strategy ? d.strategy + ": " : "") + d.reason;
  if (d.child !== undefined) return "escalated by " + d.child + " (" + d.restarts + " restarts)";
  return reason.kind + " " + JSON.stringify(d);
}

// The same without a panic's location, which the tooltip keeps.
const shortExit = (reason) => exitText(reason).replace(/ \(at [^)]*\)$/, "");

// ---------------------------------------------------------------- tree

const seenRestarts = new Map();

function renderTree(trees) {
  const body = h("tbody");
  const walk = (tree, depth) => {
    const pad = { style: "padding-left:" + (6 + depth * 16) + "px" };
    body.append(h("tr", { class: "supervisor", "data-supervisor": tree.path },
      h("td", pad, tree.path, " ", h("span", { class: "muted" }, word(tree.strategy).replace(/_/g, " "))),
      h("td", {}),
      h("td", {}, dot(tree.health), tree.health),
      h("td", { colspan: 3, class: "muted" }, tree.restarts_in_period + " restarts in period")));
    for (const c of tree.children) {
      const path = tree.path + "/" + c.id;
      const before = seenRestarts.get(path);
      seenRestarts.set(path, c.restarts);
      const flash = before !== undefined && c.restarts > before;
      body.append(h("tr", {
          class: "child" + (flash ? " flash" : ""), "data-path": path,
          "data-state": c.status, "data-restarts": c.restarts, "data-incarnation": c.incarnation },
        h("td", { style: "padding-left:" + (22 + depth * 16) + "px" }, c.id,
          c.isolated ? h("span", { class: "muted" }, " · isolated") : null),
        h("td", {}, dot(c.status), c.status),
        h("td", { title: c.health_reason || "" }, dot(c.health), c.health),
        h("td", { class: "num" }, c.incarnation),
        h("td", { class: "num restarts" }, c.restarts),
        h("td", { class: "exit-cell", title: exitText(c.last_exit) }, h("div", { class: "exit" }, shortExit(c.last_exit)))));
    }
    for (const sub of tree.subtrees) walk(sub, depth + 1);
  };
  for (const tree of trees) walk(tree, 0);
  const table = h("table", {},
    h("thead", {}, h("tr", {}, h("th", {}, "child"), h("th", {}, "state"), h("th", {}, "health"),
      h("th", { class: "num", title: "incarnation" }, "inc."), h("th", { class: "num" }, "restarts"), h("th", {}, "last exit"))),
    body);
  $("tree").replaceChildren(trees.length ? table : h("p", { class: "empty" }, "no tree is watched"));
}

// ---------------------------------------------------------------- charts

function chart(title, unit, series) {
  const W = 300, H = 90, top = 6, bottom = 4;
  const span = Math.min(CHART_POINTS, Math.max(CHART_MIN_POINTS, ...series.map((s) => s.values.length)));
  let max = 0;
  for (const s of series) for (const v of s.values) max = Math.max(max, v);
  const scale = max > 0 ? niceCeil(max) : 1;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("preserveAspectRatio", "none");
  for (const f of [0, 0.5, 1]) {
    const y = top + (H - top - bottom) * f;
    const line = document.createElementNS(ns, "line");
    Object.entries({ x1: 0, x2: W, y1: y, y2: y, stroke: "#e9ebf0", "stroke-width": 1 })
      .forEach(([k, v]) => line.setAttribute(k, v));
    svg.append(line);
  }
  for (const s of series) {
    const n = s.values.length;
    if (n === 0) continue;
    const step = W / (span - 1);
    const x0 = W - (n - 1) * step;
    const pts = s.values.map((v, i) =>
      (x0 + i * step).toFixed(1) + "," + (top + (H - top - bottom) * (1 - v / scale)).toFixed(1));
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", pts.join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", s.color);
    line.setAttribute("stroke-width", "1.6");
    line.setAttribute("vector-effect", "non-scaling-stroke");
    svg.append(line);
  }
  const legend = h("span", { class: "legend" }, series.map((s) => [
    h("i", { style: "background:" + s.color }),
    s.name + " " + num(s.values.length ? s.values[s.values.length - 1] : 0, 1)]));
  return h("div", { class: "chart" },
    h("div", { class: "title" }, h("span", {}, title), h("span", {}, "max " + num(scale, 1) + " " + unit)),
    svg, h("div", { class: "title" }, legend, h("span", {}, "last " + (span < 120 ? span + " s" : Math.round(span / 60) + " min"))));
}

function niceCeil(v) {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

// ---------------------------------------------------------------- pools

const openHistories = new Set();

function tile(label, value, cls) {
  return h("div", { class: "tile" + (cls ? " " + cls : "") }, h("b", {}, value), h("span", {}, label));
}

function breakerRows(kind, map) {
  return Object.entries(map || {}).map(([name, b]) =>
    h("tr", { "data-breaker": kind + ":" + name },
      h("td", {}, kind === "dependency" ? name : "worker " + name),
      h("td", {}, dot(b.state), word(b.state)),
      h("td", { class: "num" }, b.failures),
      h("td", { class: "num" }, b.opens),
      h("td", { class: "num" }, b.cooldown_remaining_ms ? (b.cooldown_remaining_ms / 1000).toFixed(1) + " s" : "")));
}

function workersTable(workers) {
  const hasProcess = workers.some((w) => w.pid !== undefined && w.pid !== null);
  return h("table", {},
    h("thead", {}, h("tr", {}, h("th", {}, "worker"), h("th", { class: "num" }, "inc."),
      h("th", {}, "health"), h("th", { class: "num" }, "running"), h("th", { class: "num" }, "done"),
      hasProcess ? [h("th", { class: "num" }, "pid"), h("th", { class: "num" }, "RSS")] : null)),
    h("tbody", {}, workers.map((w) => h("tr", { "data-worker": w.id },
      h("td", {}, w.id, w.draining ? h("span", { class: "muted" }, " · draining") :
        w.isolated ? h("span", { class: "muted" }, " · isolated") : null),
      h("td", { class: "num" }, w.incarnation),
      h("td", {}, dot(w.health), w.health),
      h("td", { class: "num" }, w.in_flight),
      h("td", { class: "num" }, num(w.completed)),
      hasProcess ? [h("td", { class: "num" }, w.pid ?? ""), h("td", { class: "num" }, bytes(w.rss_bytes))] : null))));
}

function deadTable(pool, dead) {
  if (!dead || !dead.up) return h("p", { class: "empty" }, "the dead-letter store did not answer");
  if (dead.tasks.length === 0) return h("p", { class: "empty" }, "no dead letters");
  const rows = dead.tasks.map((t) => {
    const key = pool + ":" + t.id;
    const last = t.attempts.length ? t.attempts[t.attempts.length - 1] : null;
    const details = h("details", { open: openHistories.has(key),
        ontoggle: (e) => e.target.open ? openHistories.add(key) : openHistories.delete(key) },
      h("summary", {}, t.attempts.length + " attempts"),
      h("ol", {}, t.attempts.map((a) => h("li", {},
        a.worker + " · " + a.started_ms + "–" + a.ended_ms + " ms · " + errorText(a.error)))));
    return h("tr", { class: "dead", "data-pool": pool, "data-id": t.id },
      h("td", { class: "num" }, t.id),
      h("td", {}, t.reason, h("div", { class: "muted" }, last ? errorText(last.error) : "")),
      h("td", {}, details),
      h("td", { class: "num" }, h("button", { class: "replay", "data-pool": pool, "data-id": t.id,
        onclick: () => replay(pool, t.id) }, "Replay")));
  });
  return h("div", {},
    dead.total > dead.tasks.length ? h("p", { class: "muted" }, "newest " + dead.tasks.length + " of " + dead.total) : null,
    h("table", {}, h("thead", {}, h("tr", {}, h("th", { class: "num" }, "task"), h("th", {}, "reason"),
      h("th", {}, "history"), h("th", {}))), h("tbody", {}, rows)));
}

function errorText(e) {
  if (!e) return "";
  return e.detail === undefined ? e.kind : e.kind + ": " + word(e.detail);
}

function renderPools(pools, deadLetters) {
  const dead = new Map((deadLetters || []).map((d) => [d.pool, d]));
  const cards = pools.map((p) => {
    const m = p.metrics;
    const d = dead.get(p.name);
    if (!m) return h("section", { class: "card pool", "data-pool": p.name },
      h("div", { class: "pool-head" }, h("h2", {}, "Pool " + p.name), h("span", { class: "badge bad" }, "not answering")));
    const hist = p.history;
    const col = (f) => hist.map(f);
    const restarts = Object.values(m.performance.restarts_by_reason || {}).reduce((a, b) => a + b, 0);
    const ready = m.health.failed ? h("span", { class: "badge bad" }, "failed: " + m.health.failed)
      : m.health.ready ? h("span", { class: "badge ok" }, "ready") : h("span", { class: "badge warn" }, "not ready");
    const breakers = p.breakers ? [...breakerRows("dependency", p.breakers.dependencies),
      ...breakerRows("worker", p.breakers.children)] : [];
    return h("section", { class: "card pool", "data-pool": p.name },
      h("div", { class: "pool-head" }, h("h2", {}, "Pool " + p.name), ready,
        h("span", { class: "muted" }, m.pool.size + " workers · up " + duration({ secs: m.pool.uptime_ms / 1000, nanos: 0 }))),
      h("div", { class: "tiles" },
        tile("queued", num(m.tasks.queued)), tile("in flight", num(m.tasks.in_flight)),
        tile("completed", num(m.tasks.completed)), tile("failures", num(m.tasks.failed)),
        tile("dead-lettered", num(m.tasks.dead_lettered)), tile("worker restarts", num(restarts))),
      h("div", { class: "charts" },
        chart("queue", "tasks", [
          { name: "queued", color: "#2f6fde", values: col((x) => x.queued) },
          { name: "in flight", color: "#8a4fd8", values: col((x) => x.in_flight) }]),
        chart("throughput", "/s", [
          { name: "done", color: "#1f9d55", values: col((x) => x.completed_per_s) },
          { name: "failed", color: "#d64545", values: col((x) => x.failed_per_s) }]),
        chart("latency", "ms", [
          { name: "p50", color: "#2f6fde", values: col((x) => x.latency_p50_ms) },
          { name: "p99", color: "#d98b00", values: col((x) => x.latency_p99_ms) }])),
      h("div", { class: "cols" },
        h("div", {}, h("h3", {}, "Workers"), workersTable(m.per_worker)),
        h("div", {}, h("h3", {}, "Breakers (" + p.breaker_openings + " openings)"),
          breakers.length ? h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "breaker"), h("th", {}, "state"),
            h("th", { class: "num" }, "failures"), h("th", { class: "num" }, "opens"), h("th", { class: "num" }, "cooldown"))),
            h("tbody", {}, breakers)) : h("p", { class: "empty" }, "no breaker yet"),
          h("h3", {}, "Dead letters (" + (d ? d.total : 0) + ")"), deadTable(p.name, d))));
  });
  $("pools").replaceChildren(...cards);
}

async function replay(pool, id) {
  document.querySelectorAll(`button.replay[data-pool="${CSS.escape(pool)}"][data-id="${id}"]`)
    .forEach((b) => { b.disabled = true; });
  try {
    const r = await fetch(`api/pools/${encodeURIComponent(pool)}/dead-letters/${id}/replay`, { method: "POST" });
    const body = await r.json();
    toast(r.ok ? `task ${id} replayed as task ${body.task}` : `replay refused: ${body.error}`);
  } catch (e) {
    toast("replay failed: " + e);
  }
  refresh();
}

let toastTimer;
function toast(text) {
  const t = $("toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 4000);
}

// ---------------------------------------------------------------- polling

async function json(path) {
  const r = await fetch(path, { cache: "no-store" });
  return r.json(); // /readyz answers JSON with 503 too
}

let refreshing = false;
let again = false;
async function refresh() {
  if (refreshing) { again = true; return; }
  refreshing = true;
  try {
    const [tree, pools, dead, ready] = await Promise.all([
      json("api/tree"), json("api/pools"), json("api/dead-letters"), json("readyz")]);
    renderTree(tree.trees);
    renderPools(pools.pools, dead.pools);
    const badge = $("ready");
    badge.textContent = ready.ready ? "ready" : "not ready";
    badge.className = "badge " + (ready.ready ? "ok" : "bad");
    const reasons = $("reasons");
    reasons.hidden = ready.reasons.length === 0;
    reasons.textContent = ready.reasons.join(" · ");
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    $("ready").textContent = "observer unreachable";
    $("ready").className = "badge bad";
  } finally {
    refreshing = false;
    if (again) { again = false; refresh(); }
  }
}

// ---------------------------------------------------------------- events

const SUMMARY_SKIP = new Set(["at_ms", "supervisor", "event"]);
let eventCount = 0;
let soon;

function summary(e) {
  return Object.entries(e).filter(([k]) => !SUMMARY_SKIP.has(k)).map(([k, v]) => {
    if (k === "reason" && v && v.kind) return "reason=" + exitText(v);
    return k + "=" + word(v);
  }).join("  ");
}

function addEvent(kind, e, text) {
  const list = $("events");
  const li = h("li", { class: kind, "data-event": kind, "data-child": e.child },
    h("span", { class: "t" }, e.at_ms !== undefined ? (e.at_ms / 1000).toFixed(2) + " s" : ""),
    h("span", { class: "k" }, kind), " ", e.supervisor || "", "  ", text);
  list.prepend(li);
  while (list.children.length > EVENTS_KEPT) list.lastChild.remove();
  eventCount++;
  $("event-count").textContent = "(" + eventCount + " since this page opened)";
}

function follow() {
  const source = new EventSource("api/events");
  const stream = $("stream");
  source.onopen = () => { stream.textContent = "events: live"; stream.className = "badge live"; };
  source.onerror = () => { stream.textContent = "events: reconnecting"; stream.className = "badge muted"; };
  source.onmessage = (m) => {
    const e = JSON.parse(m.data);
    addEvent(e.event, e, summary(e));
    // The tree changed: show it now rather than at the next poll.
    clearTimeout(soon);
    soon = setTimeout(refresh, 100);
  };
  source.addEventListener("lagged", (m) => {
    addEvent("lagged", {}, "missed " + JSON.parse(m.data).missed + " events");
  });
}

follow();
refresh();
setInterval(refresh, POLL_MS);
