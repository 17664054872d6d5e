"""The dashboard page: HTML, CSS and a small script of our own that draws the charts as inline SVG.

No build step, no library, nothing fetched from elsewhere (it works offline). The first data is
embedded in the page (so it renders at once, and in a headless browser's DOM dump); the script
then asks /flowgate/dashboard/data every REFRESH_S seconds. Every peer-written string (account
names, model names, upstream errors) reaches the DOM through `textContent` or an attribute, never
as markup; the embedded JSON has `<`, `>` and `&` escaped so it cannot close its script element.
"""

from __future__ import annotations

import json

REFRESH_S = 15


def embed(data: dict) -> str:
    return json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render(data: dict, nonce: str) -> str:
    return (PAGE.replace("{nonce}", nonce).replace("{refresh_s}", str(REFRESH_S)).replace("{refresh}", str(REFRESH_S * 1000))
            .replace("{data}", embed(data)))


PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>FlowGate dashboard</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style nonce="{nonce}">
body{font:14px/1.4 system-ui,sans-serif;margin:16px 24px;color:#1d2330;background:#f7f8fa}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:20px 0 8px}
section{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:10px 14px;margin-bottom:14px}
table{border-collapse:collapse}td,th{padding:3px 10px;border-bottom:1px solid #eceff3;text-align:right}
td:first-child,th:first-child{text-align:left}.ok{color:#16803c}.bad{color:#b42318}
.grid{display:flex;flex-wrap:wrap;gap:14px}.grid>div{flex:1 1 520px}
meter{width:180px;height:14px;vertical-align:middle}.muted{color:#667085}.legend span{margin-right:12px}
.sw{display:inline-block;width:10px;height:10px;margin-right:4px}.err{max-width:640px;text-align:left;word-break:break-word}
</style></head><body>
<h1>FlowGate</h1><div class="muted">profile <b id="profile"></b> · updated <span id="updated"></span>
 · refreshes every {refresh_s} s</div>
<section><h2>Services</h2><table id="services"></table><div id="pending"></div></section>
<section><h2>Quota</h2><div id="quota"></div></section>
<section><h2>Accounts</h2><table id="accounts"></table><p id="accounts-note" class="muted"></p></section>
<section><h2>What it saved</h2><div id="savings"></div></section>
<section><h2>Requests and tokens per hour, per model</h2><div class="grid">
<div><h3>last 24 h</h3><div id="chart-24h-requests"></div><div id="chart-24h-tokens"></div></div>
<div><h3>last 7 d</h3><div id="chart-7d-requests"></div><div id="chart-7d-tokens"></div></div></div></section>
<section><h2>Per model</h2><div class="grid"><div><h3>last 24 h</h3><table id="models-24h"></table></div>
<div><h3>last 7 d</h3><table id="models-7d"></table></div></div><p id="rates"></p></section>
<section><h2>Latest failures</h2><table id="failures"></table></section>
<section><h2>Member keys</h2><table id="keys"></table></section>
<section><h2>Stack events</h2><table id="events"></table></section>
<script type="application/json" id="initial">{data}</script>
<script nonce="{nonce}">
"use strict";
const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#2f6fde","#e07b24","#2a9d5b","#c23b6b","#7b52c7","#8c6d1f","#1c9aa6","#d14b35"];
// past the palette, hues a golden angle apart (two lightnesses): no two models share a colour
function color(k) { return k < COLORS.length ? COLORS[k] : "hsl(" + Math.round((k * 137.508) % 360) + ",62%," + (k % 2 ? 38 : 56) + "%)"; }
// control characters (a terminal's escapes) shown as \\x1b, like the terminal output does
function clean(t) { return String(t).replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g,
                                             c => "\\x" + c.charCodeAt(0).toString(16).padStart(2, "0")); }
function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = clean(text);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, clean(v));
  return node;
}
function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}
function fill(id, nodes) { const box = document.getElementById(id); box.replaceChildren(...nodes); return box; }
function row(cells, head) { const tr = el("tr"); cells.forEach(c => tr.appendChild(el(head ? "th" : "td", c))); return tr; }
function short(n) { return n >= 1e6 ? (n / 1e6).toFixed(1) + "M" : n >= 1e4 ? (n / 1e3).toFixed(1) + "k" : String(n); }
function num(v) { return v === null || v === undefined ? "-" : String(v); }
function services(d) {
  const rows = [row(["service", "state", "ready", "pid", "address", "version"], true)];
  for (const s of d.services) {
    const tr = row([s.service, s.state + (s.problem ? " (" + s.problem + ")" : ""), s.ready ? "yes" : "no",
                    num(s.pid), num(s.address), num(s.version)]);
    tr.children[2].className = s.ready ? "ok" : "bad";
    tr.setAttribute("data-service", s.service);
    rows.push(tr);
  }
  fill("services", rows);
  fill("pending", (d.pending || []).map(p => el("div", "doit up would: " + p, {"class": "bad"})));
  document.getElementById("profile").textContent = d.profile || "unknown";
  document.getElementById("updated").textContent = d.generated_at;
}
// the steward's forecast (pool.json): "full at ~15:40 at this pace"; none without the file
function clock(t) { return new Date(t * 1000).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"}); }
function forecast(w) { return w && w.full_at ? ", full at ~" + clock(w.full_at) + " at this pace" : ""; }
function poolWindow(pool, account, name) {
  const a = ((pool || {}).accounts || []).find(x => x.name === account);
  return a && (a.windows || []).find(w => w.name === name);
}
function quota(q, pool) {
  const out = [];
  if (q.error) out.push(el("p", "quota: " + q.error, {"class": "bad"}));
  if (!q.accounts.length && !q.error) out.push(el("p", "no accounts (or CLIProxyAPI is not ready)", {"class": "muted"}));
  for (const a of q.accounts) {
    const box = el("div", null, {"class": "account", "data-account": a.account});
    box.appendChild(el("b", a.provider + " " + (a.label || a.account) + (a.plan ? " (plan " + a.plan + ")" : "")));
    if (a.note) box.appendChild(el("div", a.note, {"class": "note muted"}));
    for (const w of a.windows) {
      const line = el("div", null, {"class": "window", "data-window": w.name});
      line.appendChild(el("span", w.name + " "));
      line.appendChild(el("meter", null, {"min": "0", "max": "100", "low": "70", "high": "90", "optimum": "0",
                                          "value": String(w.used_percent), "title": w.used_percent + "% used"}));
      line.appendChild(el("span", " " + w.used_percent + "% used, resets in " + w.resets_in +
                                  forecast(poolWindow(pool, a.account, w.name)), {"class": "label"}));
      box.appendChild(line);
    }
    out.push(box);
  }
  fill("quota", out);
}
function chart(id, series, metric, title) {
  const labels = series.labels, models = Object.keys(series.models).sort(), n = labels.length;
  const W = 640, H = 190, L = 44, B = 34, T = 10, pw = W - L - 8, ph = H - B - T;
  let max = 1, total = 0;
  for (let i = 0; i < n; i++) {
    let s = 0; for (const m of models) s += series.models[m][metric][i];
    max = Math.max(max, s); total += s;
  }
  const root = svg("svg", {"viewBox": "0 0 " + W + " " + H, "width": "100%", "role": "img",
                           "aria-label": title + ": " + total + " in all", "data-total": String(total)});
  root.appendChild(svg("title")).textContent = title + ": " + total + " in all";
  root.appendChild(svg("line", {"x1": L, "y1": T + ph, "x2": W - 8, "y2": T + ph, "stroke": "#98a2b3"}));
  const top = svg("text", {"x": L - 6, "y": T + 10, "text-anchor": "end", "font-size": "11"}); top.textContent = short(max);
  root.appendChild(top);
  const zero = svg("text", {"x": L - 6, "y": T + ph, "text-anchor": "end", "font-size": "11"}); zero.textContent = "0";
  root.appendChild(zero);
  const bw = pw / n, step = Math.ceil(n / 8);
  for (let i = 0; i < n; i++) {
    let y = T + ph;
    models.forEach((m, k) => {
      const v = series.models[m][metric][i];
      if (!v) return;
      const h = v / max * ph; y -= h;
      const r = svg("rect", {"x": (L + i * bw + 0.5).toFixed(1), "y": y.toFixed(1), "width": Math.max(1, bw - 1).toFixed(1),
                             "height": h.toFixed(1), "fill": color(k)});
      r.appendChild(svg("title")).textContent = clean(m) + " " + labels[i] + ": " + v + " " + metric;
      root.appendChild(r);
    });
    if (i % step === 0) {
      const t = svg("text", {"x": (L + i * bw).toFixed(1), "y": H - 14, "font-size": "10"}); t.textContent = labels[i];
      root.appendChild(t);
    }
  }
  const legend = el("div", null, {"class": "legend"});
  models.forEach((m, k) => {
    const item = el("span"); const sw = el("i", null, {"class": "sw"}); sw.style.background = color(k);
    item.append(sw, document.createTextNode(clean(m))); legend.appendChild(item);
  });
  fill(id, [el("div", title, {"class": "muted"}), root, legend]);
}
function models(id, groups) {
  const rows = [row(["model", "requests", "errors", "error rate", "tokens in", "tokens out", "cached", "p50 ms", "p95 ms"], true)];
  for (const g of groups) {
    const tr = row([g.model, g.requests, g.errors, (g.requests ? (100 * g.errors / g.requests).toFixed(1) : "0.0") + "%",
                    g.tokens_in, g.tokens_out, g.tokens_cached, num(g.p50_ms), num(g.p95_ms)]);
    tr.setAttribute("data-model", g.model);
    if (g.model === "(no model)") tr.title = "requests that name no model: model lists, HEAD / probes";
    rows.push(tr);
  }
  fill(id, rows);
}
function usage(u) {
  if (u.error) { fill("rates", [el("span", "usage: " + u.error, {"class": "bad"})]); return; }
  for (const span of ["24h", "7d"]) {
    chart("chart-" + span + "-requests", u[span].series, "requests", "requests per hour, last " + span);
    chart("chart-" + span + "-tokens", u[span].series, "tokens", "tokens (in + out) per hour, last " + span);
    models("models-" + span, u[span].models);
  }
  const t = u["24h"].totals, rate = t.requests ? (100 * t.errors / t.requests).toFixed(1) : "0.0";
  const rec = u.recorder && u.recorder.ok === false ? " · recorder: " + u.recorder.detail : "";
  fill("rates", [el("span", "last 24 h: " + t.requests + " requests, error rate " + rate + "%, latency p50 " +
                            num(t.p50_ms) + " ms, p95 " + num(t.p95_ms) + " ms" + rec, {"id": "totals-24h"})]);
  const rows = [row(["time", "model", "route", "status", "message"], true)];
  for (const f of u.failures) {
    const tr = row([f.time, num(f.model), f.route, num(f.status), num(f.error)]);
    tr.lastChild.className = "err"; rows.push(tr);
  }
  if (!u.failures.length) rows.push(row(["none", "", "", "", ""]));
  fill("failures", rows);
}
function events(list) {
  const rows = [row(["time", "event", "service", "result", "detail"], true)];
  for (const e of list || []) rows.push(row([e.time, e.event, e.service, e.result, e.detail]));
  if (!(list || []).length) rows.push(row(["none yet (upgrades, rollbacks, crashes show here)", "", "", "", ""]));
  rows.forEach((tr, i) => { if (i) tr.lastChild.className = "err"; });
  fill("events", rows);
}
function when(t) { return t ? new Date(t * 1000).toISOString().slice(0, 16).replace("T", " ") + " UTC" : "-"; }
function keys(k) {
  k = k || {keys: [], error: null};
  const rows = [row(["name", "state", "models", "rpm", "tpm", "budget", "spent this period", "requests", "last use"], true)];
  for (const m of k.keys) {
    rows.push(row([m.name, m.state, m.models.join(", ") || "*", num(m.rpm), num(m.tpm),
                   m.budget ? "$" + m.budget + " / " + m.period : "-",
                   m.spend_usd === null ? "? (" + m.spend_error + ")" : "$" + m.spend_usd.toFixed(2) +
                     (m.spend_unpriced_tokens ? " + " + short(m.spend_unpriced_tokens) + " unpriced tokens" : ""),
                   m.requests_this_period, when(m.last_use)]));
  }
  if (!k.keys.length) rows.push(row([k.error || "none (`uv run doit keys create NAME`)", "", "", "", "", "", "", "", ""]));
  fill("keys", rows);
}
function money(v) { return v === null || v === undefined ? "-" : v > 0 && v < 0.005 ? "<$0.01" : "$" + v.toFixed(2); }
function state(a) {
  if (!a) return "-";
  if (a.state === "in") return "in rotation";
  if (a.state === "out") return "out" + (a.until ? " until " + clock(a.until) : "") + (a.reason ? " (" + a.reason + ")" : "");
  if (a.state === "disabled-by-user") return "disabled by you";
  return a.state || "unknown";
}
function accounts(pa, pool) {
  pa = pa || {}; const seen = new Map();
  const add = (name, provider, label) => { if (!seen.has(name)) seen.set(name, {name, provider, label}); return seen.get(name); };
  for (const a of (pool || {}).accounts || []) add(a.name, a.provider, a.label).pool = a;
  for (const span of ["24h", "7d"])
    for (const u of ((pa[span] || {}).accounts) || []) add(u.name || u.account + "/" + u.provider, u.provider, u.account)[span] = u;
  const rows = [row(["account", "provider", "state", "windows", "requests 24 h", "requests 7 d", "tokens 7 d", "API price 7 d"], true)];
  for (const a of seen.values()) {
    const wins = ((a.pool || {}).windows || []).map(w => w.name + " window " + Math.round(w.used_percent) + " %" + forecast(w));
    const u7 = a["7d"] || {};
    const tokens = u7.tokens_in === null || u7.tokens_in === undefined ? "-" : short(u7.tokens_in + u7.tokens_out);
    const tr = row([a.label || a.name, a.provider || "?", state(a.pool), wins.join("; ") || "-",
                    num((a["24h"] || {}).requests || 0), num(u7.requests || 0), tokens, money(u7.usd)]);
    tr.setAttribute("data-account", a.name); tr.children[2].className = tr.children[3].className = "err"; rows.push(tr);
  }
  if (seen.size === 0) rows.push(row(["none recorded yet", "", "", "", "", "", "", ""]));
  fill("accounts", rows);
  const note = pa.error || (pa["7d"] || {}).note || "";
  document.getElementById("accounts-note").textContent = clean(note);
}
function savings(pa) {
  const s = (pa || {}).savings, out = [];
  if (!s) { fill("savings", []); return; }
  if (!s.known) { fill("savings", [el("p", "what it saved: " + s.note, {"class": "muted", "id": "savings-total"})]); return; }
  out.push(el("p", "this week your subscriptions served " + money(s.week_usd) + " of API-priced tokens (since " +
                   s.week_start + "); last 7 d: " + money(s.usd) + " at LiteLLM's list prices", {"id": "savings-total"}));
  const rows = [row(["model", "requests", "tokens in", "tokens out", "cached", "API price"], true)];
  for (const m of s.by_model) {
    const tr = row([m.model, m.requests, m.tokens_in, m.tokens_out, m.tokens_cached, m.priced ? money(m.usd) : "no price"]);
    tr.setAttribute("data-model", m.model); rows.push(tr);
  }
  const table = el("table"); table.replaceChildren(...rows); out.push(table);
  if (s.unpriced.length) out.push(el("p", "not counted, no price in LiteLLM's map: " +
                                     s.unpriced.map(u => u.model + " (" + u.tokens + " tokens)").join(", "), {"class": "bad"}));
  fill("savings", out);
}
function show(d) {
  services(d); quota(d.quota, d.pool); accounts(d.per_account, d.pool); savings(d.per_account); usage(d.usage);
  keys(d.keys); events(d.events);
}
show(JSON.parse(document.getElementById("initial").textContent));
setInterval(() => {
  fetch("/flowgate/dashboard/data" + location.search, {cache: "no-store"})
    .then(r => r.ok ? r.json() : Promise.reject(r.status)).then(show)
    .catch(e => { document.getElementById("updated").textContent = "refresh failed (" + e + ")"; });
}, {refresh});
</script></body></html>
"""
