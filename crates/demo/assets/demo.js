// The demo page's live parts: places orders, flips the email provider, and redraws the
// tables and the chart from /demo/state once a second. No libraries; every value goes in
// through textContent or an attribute, never as HTML.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const MODES = ["sync", "async", "hybrid"];

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function ms(value) {
    if (value === null || value === undefined) return "–";
    if (value >= 1000) return (value / 1000).toFixed(2) + " s";
    if (value >= 10) return Math.round(value) + " ms";
    return value.toFixed(1) + " ms";
  }

  async function post(path, body) {
    const response = await fetch(path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body || {}),
    });
    let json = null;
    try { json = await response.json(); } catch (_) { /* an empty or non-JSON body */ }
    return { response, json };
  }

  async function order(button) {
    const mode = button.dataset.mode;
    const out = button.parentElement.querySelector("output.last");
    button.disabled = true;
    out.textContent = "waiting…";
    out.className = "last pending";
    const started = performance.now();
    try {
      const { response, json } = await post("/demo/checkout/" + mode, {});
      const took = performance.now() - started;
      if (response.ok) {
        out.textContent = "confirmed in " + ms(took) + " · email " + json.email_now;
        out.className = "last ok";
      } else {
        const why = json && json.title ? json.title : "HTTP " + response.status;
        out.textContent = why + " after " + ms(took);
        out.className = "last failed";
      }
      out.dataset.ms = String(Math.round(took));
    } catch (e) {
      out.textContent = "request failed: " + e;
      out.className = "last failed";
    } finally {
      button.disabled = false;
      refresh();
    }
  }

  function fillRows(tbody, rows) {
    tbody.replaceChildren(...rows.map((cells) => {
      const tr = el("tr");
      for (const cell of cells) tr.append(cell instanceof Node ? cell : el("td", {}, String(cell)));
      return tr;
    }));
  }

  function drawChart(state) {
    const box = document.getElementById("chart");
    const width = 720, row = 46, left = 70, right = 20, top = 10;
    const height = top + row * MODES.length + 30;
    const all = state.times.flatMap(([, times]) => times);
    const hi = Math.max(10000, ...all);
    const lo = 0.5;
    const x = (v) => left + (Math.log10(Math.max(v, lo)) - Math.log10(lo)) /
      (Math.log10(hi) - Math.log10(lo)) * (width - left - right);
    const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img",
      "aria-label": "response time per mode" });
    for (let tick = 1; tick <= hi; tick *= 10) {
      chart.append(svg("line", { x1: x(tick), x2: x(tick), y1: top, y2: height - 25, class: "grid" }));
      const label = tick >= 1000 ? tick / 1000 + " s" : tick + " ms";
      chart.append(svg("text", { x: x(tick), y: height - 10, class: "tick" }, label));
    }
    state.times.forEach(([mode, times], i) => {
      const y = top + row * i + row / 2;
      chart.append(svg("text", { x: 4, y: y + 4, class: "label" }, mode));
      const g = svg("g", { class: "dots " + mode, "data-mode": mode });
      for (const t of times) {
        g.append(svg("circle", { cx: x(t).toFixed(1), cy: (y + (Math.random() - 0.5) * row * 0.5).toFixed(1), r: 3.5 }));
      }
      chart.append(g);
      const summary = state.modes.find((m) => m.mode === mode);
      if (summary && summary.p50_ms !== null) {
        const mx = x(summary.p50_ms);
        chart.append(svg("line", { x1: mx, x2: mx, y1: y - row * 0.4, y2: y + row * 0.4, class: "median " + mode }));
        chart.append(svg("text", { x: mx + 4, y: y - row * 0.25, class: "median-label" }, "p50 " + ms(summary.p50_ms)));
      }
    });
    box.replaceChildren(chart);
  }

  function render(state) {
    const outage = document.getElementById("outage");
    if (document.activeElement !== outage) outage.checked = state.outage;
    document.body.classList.toggle("outage", state.outage);
    document.getElementById("breaker").textContent = state.email_breaker;

    fillRows(document.querySelector("#summary tbody"), state.modes.map((m) => [
      m.mode, m.confirmed + m.declined + m.failed, m.confirmed, m.declined, m.failed,
      ms(m.p50_ms), ms(m.p99_ms),
    ]));

    const orders = document.querySelector("#orders tbody");
    orders.replaceChildren(...state.orders.map((o) => {
      const tr = el("tr", { "data-mode": o.mode, class: o.status });
      tr.append(el("td", {}, String(o.id)), el("td", {}, o.mode));
      tr.append(el("td", { title: o.reason || "" }, o.status.replace("_", " ")));
      tr.append(el("td", { class: "num" }, ms(o.server_ms)));
      const email = el("td", { class: "email" });
      if (o.job) {
        email.append(el("a", { href: "/dashboard/jobs/" + encodeURIComponent(o.job) }, o.email_now));
      } else {
        email.textContent = o.email_now;
      }
      tr.append(email);
      return tr;
    }));

    fillRows(document.querySelector("#queues tbody"), state.queues.map((q) => [
      q.name, q.available + q.scheduled, q.running, q.retryable, q.completed, q.dead, q.retries,
    ]));
    const w = state.worker;
    document.getElementById("worker").textContent =
      `Worker ${w.id}: up to ${w.concurrency} jobs per queue, ${w.running} running now. ` +
      `${state.emails_delivered} confirmation emails delivered by background jobs or inline.`;

    fillRows(document.querySelector("#providers tbody"), state.providers.map((p) => [
      p.name, ms(p.latency_ms), Math.round(p.failure_rate * 100) + " %", p.calls, p.failures, p.in_flight,
    ]));
    drawChart(state);
  }

  let refreshing = false;
  async function refresh() {
    if (refreshing) return;
    refreshing = true;
    try {
      const response = await fetch("/demo/state", { cache: "no-store" });
      if (response.ok) render(await response.json());
    } catch (_) {
      // The demo stopped or restarted: keep the last picture and try again.
    } finally {
      refreshing = false;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    for (const button of document.querySelectorAll("button.order")) {
      button.addEventListener("click", () => order(button));
    }
    document.getElementById("outage").addEventListener("change", async (event) => {
      await post("/demo/outage", { on: event.target.checked });
      refresh();
    });
    document.getElementById("email-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      await post("/demo/email", {
        latency_ms: Number(document.getElementById("email-latency").value),
        failure_rate: Number(document.getElementById("email-failure").value),
      });
      refresh();
    });
    document.getElementById("replay").addEventListener("click", async () => {
      const { json } = await post("/demo/dlq/replay", {});
      const button = document.getElementById("replay");
      button.textContent = "Replayed " + (json ? json.retried : 0) + " · replay again";
      refresh();
    });
    refresh();
    setInterval(refresh, 1000);
  });
})();
