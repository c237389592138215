// Buzzer dashboard: live counts and charts, and confirmations. Our own code, no libraries.
//
// Pages work without it; with it, a page whose <body> has data-live polls
// /dashboard/api/stats every two seconds and updates the elements marked with data-*
// attributes. Everything from the server is set with textContent, never as HTML.
"use strict";

(function () {
  const POLL_MS = 2000;
  const SVG = "http://www.w3.org/2000/svg";
  const STATES = ["scheduled", "available", "running", "retryable", "completed", "dead", "cancelled"];

  // Ask before destructive actions (forms with data-confirm).
  document.addEventListener("submit", function (event) {
    const form = event.target;
    const question = form instanceof HTMLFormElement ? form.dataset.confirm : undefined;
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  const body = document.body;
  const live = body.dataset.live;
  if (!live) {
    return;
  }
  const queue = body.dataset.queue;
  const statsUrl = "/dashboard/api/stats" + (queue ? "?queue=" + encodeURIComponent(queue) : "");

  function fmtCount(n) {
    return Number(n).toLocaleString("en-US");
  }

  function fmtRate(r) {
    if (r >= 100) return r.toFixed(0);
    if (r >= 10) return r.toFixed(1);
    return r.toFixed(2);
  }

  // A mean time: milliseconds up to a second, seconds from there.
  function fmtMs(ms) {
    return ms >= 1000 ? fmtRate(ms / 1000) + " s" : fmtRate(ms) + " ms";
  }

  // How a chart writes a value and an empty sample, by its data-scale.
  const SCALES = {
    rate: { axis: (v) => String(Number(v.toFixed(2))), now: (v) => fmtRate(v == null ? 0 : v) + "/s" },
    ms: {
      axis: (v) => (v === 0 ? "0" : v >= 1000 ? Number((v / 1000).toFixed(2)) + " s" : Number(v.toFixed(2)) + " ms"),
      now: (v) => (v == null ? "—" : fmtMs(v)),
    },
  };

  function scaleOf(el) {
    return SCALES[el.dataset.scale] || SCALES.rate;
  }

  function setText(el, text) {
    if (el && el.textContent !== text) {
      el.textContent = text;
    }
  }

  function svg(name, attrs, parent) {
    const el = document.createElementNS(SVG, name);
    for (const key in attrs) {
      el.setAttribute(key, attrs[key]);
    }
    if (parent) parent.appendChild(el);
    return el;
  }

  // A round upper bound for the y axis: 1, 2, 5 × 10^n.
  function niceMax(value) {
    if (value <= 0) return 1;
    const exp = Math.pow(10, Math.floor(Math.log10(value)));
    for (const step of [1, 2, 5, 10]) {
      if (value <= step * exp) return step * exp;
    }
    return 10 * exp;
  }

  // Draws series (rates: completed, failed, …; mean times: wait, run) over the last window as
  // lines with a soft area.
  function drawChart(el, names, points, windowMs, nowMs, scale) {
    const width = Math.max(el.clientWidth, 200);
    const height = Math.max(el.clientHeight, 120);
    const pad = { left: 40, right: 8, top: 8, bottom: 22 };
    const plotW = width - pad.left - pad.right;
    const plotH = height - pad.top - pad.bottom;
    const start = nowMs - windowMs;
    let max = 0;
    for (const p of points) {
      for (const name of names) {
        if (p[name] != null && p[name] > max) max = p[name];
      }
    }
    const top = niceMax(max);
    const x = (t) => pad.left + ((t - start) / windowMs) * plotW;
    const y = (v) => pad.top + plotH - (v / top) * plotH;

    const root = svg("svg", { viewBox: "0 0 " + width + " " + height, preserveAspectRatio: "none" });
    for (let i = 0; i <= 4; i++) {
      const v = (top / 4) * i;
      const gy = y(v);
      svg("line", { class: "grid", x1: pad.left, x2: width - pad.right, y1: gy, y2: gy }, root);
      const label = svg("text", { class: "axis", x: pad.left - 6, y: gy + 4, "text-anchor": "end" }, root);
      label.textContent = scale.axis(v);
    }
    for (let m = 5; m >= 0; m--) {
      const tx = x(nowMs - m * 60000);
      const label = svg("text", { class: "axis", x: tx, y: height - 4, "text-anchor": m === 0 ? "end" : "middle" }, root);
      label.textContent = m === 0 ? "now" : "-" + m + "m";
    }
    const visible = points.filter((p) => p.t >= start);
    if (visible.length < 2) {
      const wait = svg("text", { class: "waiting", x: pad.left + plotW / 2, y: pad.top + plotH / 2, "text-anchor": "middle" }, root);
      wait.textContent = "Collecting samples…";
    }
    for (const name of names) {
      // One path per unbroken run of samples; a null value is a gap.
      let runs = [];
      let run = [];
      for (const p of visible) {
        if (p[name] == null) {
          if (run.length) runs.push(run);
          run = [];
        } else {
          run.push([x(p.t), y(p[name])]);
        }
      }
      if (run.length) runs.push(run);
      for (const r of runs) {
        const line = r.map((pt, i) => (i ? "L" : "M") + pt[0].toFixed(1) + " " + pt[1].toFixed(1)).join(" ");
        if (r.length > 1) {
          const base = y(0).toFixed(1);
          const area = line + " L" + r[r.length - 1][0].toFixed(1) + " " + base + " L" + r[0][0].toFixed(1) + " " + base + " Z";
          svg("path", { class: "area series-" + name, d: area }, root);
        }
        svg("path", { class: "line series-" + name, d: line }, root);
        if (r.length === 1) {
          // A lone sample (one job in a quiet stretch) has no line to draw: mark it.
          svg("circle", { class: "point series-" + name, cx: r[0][0].toFixed(1), cy: r[0][1].toFixed(1), r: 3 }, root);
        }
      }
    }
    el.replaceChildren(root);
  }

  // The latest sample's value of a series. A mean time skips samples with no job in them, so a
  // trickle of jobs shows its last figure instead of flickering to a dash between them.
  function latest(series, name, scale) {
    for (let i = series.length - 1; i >= 0; i--) {
      const v = series[i][name];
      if (v != null || scale === SCALES.rate) return v;
    }
    return null;
  }

  function updateCharts(stats) {
    const nowMs = Date.parse(stats.now);
    const start = nowMs - stats.window_ms;
    const recent = stats.series.filter((p) => p.t >= start);
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      const names = el.dataset.chart.split(",");
      drawChart(el, names, stats.series, stats.window_ms, nowMs, scaleOf(el));
    });
    // The latest value of each series, in the series' colour.
    document.querySelectorAll("[data-chart-now]").forEach(function (el) {
      const names = el.dataset.chartNow.split(",");
      const scale = scaleOf(el);
      const parts = names.map(function (name) {
        const v = latest(recent, name, scale);
        const part = document.createElement("span");
        part.className = "series-" + name;
        part.textContent = scale.now(v) + (names.length > 1 ? " " + name : "");
        return part;
      });
      el.replaceChildren(...parts);
    });
  }

  function rowFor(q) {
    const table = document.querySelector("[data-queue-table] tbody");
    if (!table) return null;
    for (const row of table.rows) {
      if (row.dataset.queue === q.name) return row;
    }
    const template = document.getElementById("queue-row");
    if (!template) return null;
    const row = template.content.firstElementChild.cloneNode(true);
    row.dataset.queue = q.name;
    const link = row.querySelector(".queue-name");
    const base = "/dashboard/queues/" + encodeURIComponent(q.name);
    link.textContent = q.name;
    link.href = base;
    row.querySelectorAll("[data-state]").forEach(function (a) {
      a.href = base + "?state=" + a.dataset.state;
    });
    table.appendChild(row);
    return row;
  }

  function updateOverview(stats) {
    const totals = {};
    let oldest = null;
    for (const state of STATES) totals[state] = 0;
    for (const q of stats.queues) {
      for (const state of STATES) totals[state] += q.counts[state];
      if (!oldest || q.oldest_available_age_ms > oldest.oldest_available_age_ms) oldest = q;
      const row = rowFor(q);
      if (!row) continue;
      row.querySelectorAll("[data-state]").forEach(function (el) {
        const n = q.counts[el.dataset.state];
        setText(el, fmtCount(n));
        el.classList.toggle("zero", n === 0);
      });
      setText(row.querySelector("[data-age]"), q.oldest_available_age);
      const paused = row.querySelector("[data-paused]");
      if (paused) paused.hidden = !q.paused;
    }
    document.querySelectorAll("[data-total]").forEach(function (el) {
      const key = el.dataset.total;
      if (key === "oldest") {
        setText(el, oldest ? oldest.oldest_available_age : "—");
      } else {
        setText(el, fmtCount(totals[key] || 0));
      }
    });
    const empty = document.querySelector("[data-empty]");
    if (empty) empty.hidden = stats.queues.length > 0;
  }

  function updateQueue(stats) {
    const q = stats.queues.find((item) => item.name === queue);
    if (!q) return;
    let all = 0;
    document.querySelectorAll(".tabs [data-state]").forEach(function (el) {
      const state = el.dataset.state;
      if (state !== "all") {
        all += q.counts[state];
        setText(el, fmtCount(q.counts[state]));
      }
    });
    setText(document.querySelector('.tabs [data-state="all"]'), fmtCount(all));
    const paused = document.querySelector(".page-head [data-paused]");
    if (paused) paused.hidden = !q.paused;
  }

  const liveBadge = document.querySelector(".live");
  let timer = null;

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(poll, POLL_MS);
  }

  async function poll() {
    if (document.hidden) {
      return; // picked up again by visibilitychange
    }
    try {
      const response = await fetch(statsUrl, { credentials: "same-origin", headers: { accept: "application/json" } });
      if (response.status === 401) {
        if (liveBadge) {
          liveBadge.classList.add("stale");
          liveBadge.lastChild.textContent = "Signed out: reload";
        }
        return;
      }
      if (!response.ok) throw new Error("HTTP " + response.status);
      const stats = await response.json();
      if (live === "overview") updateOverview(stats);
      if (live === "queue") updateQueue(stats);
      updateCharts(stats);
      if (liveBadge) liveBadge.classList.remove("stale");
    } catch (e) {
      if (liveBadge) liveBadge.classList.add("stale");
    }
    schedule();
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) poll();
  });
  window.addEventListener("resize", function () {
    schedule();
  });
  poll();
})();
