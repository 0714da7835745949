// The Depot operator console. Everything it shows comes from the admin API (/v1/admin/…) and
// the order API with the operator's bearer token, which lives in this closure only: never in a
// cookie, the URL or storage. The DOM is built from elements and text nodes only, so nothing read
// from a message or an order can become markup.
"use strict";
(() => {
  let token = null;
  let currentTab = "overview";
  let flowWindow = "5m";
  let refreshTimer = null;
  const svgNS = "http://www.w3.org/2000/svg";

  const $ = (id) => document.getElementById(id);

  /** An element with attributes and children (strings become text). */
  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svg(tag, attributes, text) {
    const node = document.createElementNS(svgNS, tag);
    for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function replace(node, ...children) {
    node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  }

  // MARK: - API

  class ApiError extends Error {
    constructor(status, problem) {
      super((problem && problem.detail) || `HTTP ${status}`);
      this.status = status;
      this.problem = problem;
    }
  }

  async function api(method, path, body, extraHeaders) {
    const headers = { Authorization: `Bearer ${token}`, Accept: "application/json" };
    Object.assign(headers, extraHeaders || {});
    const init = { method, headers, cache: "no-store", credentials: "omit" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    const text = await response.text();
    const data = text ? JSON.parse(text) : null;
    if (!response.ok) {
      if (response.status === 401 && token) signOut("The token was refused (expired or invalid): sign in again.");
      throw new ApiError(response.status, data);
    }
    return data;
  }

  function showError(where, error) {
    replace(where, el("p", { class: "error" }, error.message || String(error)));
  }

  // MARK: - Sign in

  function claims(jwt) {
    try {
      const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part + "===".slice((part.length + 3) % 4)));
    } catch {
      return {};
    }
  }

  async function signIn(event) {
    event.preventDefault();
    const candidate = $("token").value.trim().replace(/^Bearer\s+/i, "");
    $("signin-error").textContent = "";
    if (!candidate) {
      $("signin-error").textContent = "Paste a token first.";
      return;
    }
    const payload = claims(candidate);
    if (payload.role && payload.role !== "admin") {
      $("signin-error").textContent = "This token's role is not admin; the console needs an admin token.";
      return;
    }
    token = candidate;
    try {
      await api("GET", "/v1/admin/overview");
    } catch (error) {
      token = null;
      $("signin-error").textContent =
        error.status === 401 ? "The edge refused this token (wrong secret, expired, or malformed)." : error.message;
      return;
    }
    $("token").value = "";
    $("signin").hidden = true;
    $("tabs").hidden = false;
    $("who").hidden = false;
    $("who-name").textContent = `signed in as ${payload.sub || "?"}`;
    show("overview");
  }

  function signOut(message) {
    token = null;
    clearInterval(refreshTimer);
    refreshTimer = null;
    for (const section of document.querySelectorAll("section.tab")) section.hidden = true;
    $("tabs").hidden = true;
    $("who").hidden = true;
    $("signin").hidden = false;
    $("signin-error").textContent = message || "";
  }

  // MARK: - Tabs and refresh

  function show(tab) {
    currentTab = tab;
    for (const button of document.querySelectorAll("#tabs button")) {
      button.classList.toggle("active", button.dataset.tab === tab);
    }
    for (const section of document.querySelectorAll("section.tab")) section.hidden = section.id !== tab;
    clearInterval(refreshTimer);
    const refreshers = { overview: refreshOverview, "dead-letters": refreshDeadLetters, orders: null, replay: null };
    const refresh = refreshers[tab];
    if (tab === "orders") loadRecentOrders();
    if (refresh) {
      refresh();
      refreshTimer = setInterval(refresh, tab === "overview" ? 2000 : 4000);
    }
  }

  // MARK: - Overview

  const verdictText = { ok: "ok", warning: "WARN", failing: "FAIL" };
  function verdict(health) {
    return el("span", { class: `verdict v-${health}` }, verdictText[health] || health);
  }
  const rate = (value) => (value === undefined || value === null ? "–" : `${value.toFixed(1)}/s`);

  function table(target, head, rows) {
    replace(
      target,
      el("thead", {}, el("tr", {}, head.map(([label, cls]) => el("th", { class: cls }, label)))),
      el("tbody", {}, rows),
    );
  }

  async function refreshOverview() {
    if (!token || currentTab !== "overview") return;
    let overview, flow;
    try {
      [overview, flow] = await Promise.all([
        api("GET", "/v1/admin/overview"),
        api("GET", `/v1/admin/flow?window=${flowWindow}`),
      ]);
    } catch (error) {
      $("refreshed").textContent = `refresh failed: ${error.message}`;
      return;
    }
    replace($("overall"), verdict(overview.health));
    $("overall").className = "";
    $("broker").textContent = overview.broker_connected ? "broker connected" : "broker unreachable";
    $("refreshed").textContent = `updated ${new Date().toLocaleTimeString()}`;
    table(
      $("queues"),
      [["queue"], ["depth", "num"], ["consumers", "num"], ["in", "num"], ["out", "num"], ["verdict"], ["what to check"]],
      overview.queues.map((q) =>
        el(
          "tr",
          { "data-queue": q.name },
          el("td", {}, el("code", {}, q.name)),
          el("td", { class: "num depth" }, q.depth),
          el("td", { class: "num" }, q.consumers),
          el("td", { class: "num" }, rate(q.publish_rate)),
          el("td", { class: "num" }, rate(q.deliver_rate)),
          el("td", {}, verdict(q.health)),
          el("td", { class: "muted" }, q.note),
        ),
      ),
    );
    table(
      $("outboxes"),
      [["service"], ["backlog", "num"], ["oldest", "num"], ["verdict"]],
      overview.outboxes.map((o) =>
        el(
          "tr",
          { title: o.note },
          el("td", {}, o.service),
          el("td", { class: "num" }, o.backlog),
          el("td", { class: "num" }, o.oldest_seconds === undefined ? "–" : `${o.oldest_seconds.toFixed(1)} s`),
          el("td", {}, verdict(o.health)),
        ),
      ),
    );
    table(
      $("projections"),
      [["projection"], ["position", "num"], ["log head", "num"], ["lag", "num"], ["verdict"]],
      overview.projections.map((p) =>
        el(
          "tr",
          { title: p.note },
          el("td", {}, p.name),
          el("td", { class: "num" }, p.position),
          el("td", { class: "num" }, p.head),
          el("td", { class: "num" }, p.lag),
          el("td", {}, verdict(p.health)),
        ),
      ),
    );
    const c = overview.connections;
    table(
      $("connections"),
      [["process"], ["open", "num"], ["active", "num"], ["verdict"]],
      [
        ...c.depot.map((use) =>
          el(
            "tr",
            {},
            el("td", {}, el("code", {}, use.application_name)),
            el("td", { class: "num" }, use.open),
            el("td", { class: "num" }, use.active),
            el("td", {}, ""),
          ),
        ),
        el(
          "tr",
          {},
          el("td", {}, "server, all clients"),
          el("td", { class: "num" }, `${c.in_use} / ${c.max_connections}`),
          el("td", {}, ""),
          el("td", {}, verdict(c.health), " ", el("span", { class: "muted" }, c.note)),
        ),
      ],
    );
    const dead = overview.queues.filter((q) => q.name.endsWith(".dead")).reduce((sum, q) => sum + q.depth, 0);
    $("dead-badge").hidden = dead === 0;
    $("dead-badge").textContent = dead;
    drawFlow(flow);
  }

  function drawFlow(flow) {
    const t = flow.totals;
    const minutes = flow.window_seconds / 60;
    replace(
      $("totals"),
      [
        ["placed", t.placed],
        ["confirmed", t.confirmed],
        ["rejected", t.rejected],
        ["cancelled", t.cancelled],
        ["dead-lettered", t.dead_lettered],
      ].map(([label, value]) =>
        el("div", { class: "total", id: `total-${label}` }, el("b", {}, value), el("span", {}, `${label}, last ${minutes} min`)),
      ),
    );
    const times = flow.points.map((p) => new Date(p.at));
    lineChart($("chart-orders"), times, [
      ["placed", flow.points.map((p) => p.placed_per_second)],
      ["confirmed", flow.points.map((p) => p.confirmed_per_second)],
      ["rejected", flow.points.map((p) => p.rejected_per_second)],
      ["cancelled", flow.points.map((p) => p.cancelled_per_second)],
    ]);
    lineChart($("chart-latency"), times, [
      ["p50", flow.points.map((p) => (p.latency_p50_ms === undefined ? null : p.latency_p50_ms))],
      ["p99", flow.points.map((p) => (p.latency_p99_ms === undefined ? null : p.latency_p99_ms))],
    ]);
    barChart($("chart-dead"), times, flow.points.map((p) => p.dead_lettered_per_minute));
  }

  // MARK: - Charts (SVG drawn here; the page loads no library)

  const W = 480, H = 170, left = 40, right = 8, top = 8, bottom = 22;

  function niceMax(value) {
    if (!(value > 0)) return 1;
    const power = Math.pow(10, Math.floor(Math.log10(value)));
    // Maxima whose quarters are round numbers: the axis has four steps.
    for (const step of [1, 2, 4, 8, 10]) if (step * power >= value) return step * power;
    return 10 * power;
  }

  function formatNumber(value) {
    if (value === 0) return "0";
    if (value >= 100) return value.toFixed(0);
    if (value >= 10) return value.toFixed(0);
    if (value >= 1) return value.toFixed(1).replace(/\.0$/, "");
    return value.toFixed(2).replace(/0+$/, "");
  }

  function axes(node, times, max) {
    const plotW = W - left - right, plotH = H - top - bottom;
    for (let i = 0; i <= 4; i++) {
      const y = top + plotH - (plotH * i) / 4;
      node.append(svg("line", { class: "grid-line", x1: left, x2: W - right, y1: y, y2: y }));
      node.append(svg("text", { class: "axis-label", x: left - 4, y: y + 3, "text-anchor": "end" }, formatNumber((max * i) / 4)));
    }
    if (times.length > 1) {
      const label = (date) => date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: flowWindow === "5m" ? "2-digit" : undefined });
      node.append(svg("text", { class: "axis-label", x: left, y: H - 6 }, label(times[0])));
      node.append(svg("text", { class: "axis-label", x: W - right, y: H - 6, "text-anchor": "end" }, label(times[times.length - 1])));
    }
    return { plotW, plotH };
  }

  function lineChart(node, times, series) {
    node.replaceChildren();
    const values = series.flatMap(([, v]) => v.filter((x) => x !== null));
    const max = niceMax(Math.max(0, ...values));
    const { plotW, plotH } = axes(node, times, max);
    const x = (i) => left + (times.length > 1 ? (plotW * i) / (times.length - 1) : 0);
    const y = (v) => top + plotH - (plotH * v) / max;
    for (const [name, points] of series) {
      let d = "";
      let pen = false;
      points.forEach((v, i) => {
        if (v === null) {
          pen = false;
          return;
        }
        d += `${pen ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
        pen = true;
      });
      if (d) node.append(svg("path", { class: `series s-${name}`, d, "data-series": name }));
      // A point with no neighbour draws no line: mark it with a dot.
      points.forEach((v, i) => {
        const alone = (i === 0 || points[i - 1] === null) && (i === points.length - 1 || points[i + 1] === null);
        if (v !== null && alone) node.append(svg("circle", { class: `dot s-${name}`, cx: x(i), cy: y(v), r: 2.5 }));
      });
    }
    if (values.every((v) => v === 0)) {
      node.append(svg("text", { class: "empty", x: left + plotW / 2, y: top + plotH / 2, "text-anchor": "middle" }, "nothing in this window yet"));
    }
  }

  function barChart(node, times, values) {
    node.replaceChildren();
    const max = niceMax(Math.max(0, ...values));
    const { plotW, plotH } = axes(node, times, max);
    const width = plotW / Math.max(1, values.length);
    values.forEach((v, i) => {
      if (v <= 0) return;
      const h = (plotH * v) / max;
      node.append(svg("rect", { class: "bar", x: left + i * width + 1, y: top + plotH - h, width: Math.max(1, width - 2), height: h }));
    });
    if (values.every((v) => v === 0)) {
      node.append(svg("text", { class: "empty", x: left + plotW / 2, y: top + plotH / 2, "text-anchor": "middle" }, "no new dead letters"));
    }
  }

  // MARK: - Confirmation

  /** Resolves true when the operator confirms (typing `expected` first when it is given). */
  function confirmAction(title, text, expected) {
    const dialog = $("confirm");
    $("confirm-title").textContent = title;
    $("confirm-text").textContent = text;
    $("confirm-typed-row").hidden = !expected;
    $("confirm-expected").textContent = expected || "";
    $("confirm-typed").value = "";
    $("confirm-ok").disabled = Boolean(expected);
    // Red only for what cannot be undone.
    $("confirm-ok").className = expected ? "danger" : "primary";
    return new Promise((resolve) => {
      const done = (answer) => {
        $("confirm-ok").onclick = null;
        $("confirm-cancel").onclick = null;
        $("confirm-typed").oninput = null;
        dialog.close();
        resolve(answer);
      };
      $("confirm-typed").oninput = () => ($("confirm-ok").disabled = $("confirm-typed").value.trim() !== expected);
      $("confirm-ok").onclick = () => done(true);
      $("confirm-cancel").onclick = () => done(false);
      dialog.oncancel = () => done(false);
      dialog.showModal();
      (expected ? $("confirm-typed") : $("confirm-cancel")).focus();
    });
  }

  // MARK: - Jobs (redrive, purge, dry run): progress until they finish

  // While a job runs, the dead-letter listing does not refresh: its look (basic.get, then put
  // back) would hold messages a redrive is about to take.
  let jobsRunning = 0;

  async function runJob(method, path, body, label, onDone, onProgress) {
    jobsRunning += 1;
    let job = null;
    try {
      job = await followJob(method, path, body, label, onProgress);
    } finally {
      jobsRunning -= 1;
    }
    if (job && onDone) onDone(job);
    return job;
  }

  async function followJob(method, path, body, label, onProgress) {
    let job;
    try {
      job = await api(method, path, body);
    } catch (error) {
      jobCard({ id: "error", kind: label, state: "failed", message: error.message, done: 0 });
      return null;
    }
    const card = jobCard(job, label);
    while (job.state === "queued" || job.state === "running") {
      await new Promise((r) => setTimeout(r, 400));
      try {
        job = await api("GET", `/v1/admin/jobs/${job.id}`);
      } catch (error) {
        job = { ...job, state: "failed", message: error.message };
      }
      jobCard(job, label, card);
      if (onProgress) onProgress(job);
    }
    return job;
  }

  function jobCard(job, label, existing) {
    const card = existing || el("div", { class: "job", "data-job": job.id });
    card.className = `job ${job.state}`;
    const progress =
      job.state === "running" || job.state === "queued"
        ? job.total
          ? el("progress", { max: job.total, value: job.done })
          : el("progress", {})
        : null;
    replace(
      card,
      el("button", { type: "button", class: "close", title: "dismiss", onclick: () => card.remove() }, "×"),
      el("b", {}, label || job.kind),
      " ",
      el("span", { class: "muted" }, job.target || ""),
      el("div", { class: "job-state" }, `${job.state}${job.total ? ` — ${job.done} of ${job.total}` : job.done ? ` — ${job.done}` : ""}`),
      progress,
      job.message ? el("div", { class: "job-message" }, job.message) : null,
    );
    if (!existing) $("jobs").append(card);
    // A finished job's card goes away by itself after a while (or with its ×).
    if (job.state === "succeeded") setTimeout(() => card.remove(), 20000);
    return card;
  }

  // MARK: - Dead letters

  let openQueue = null;

  async function refreshDeadLetters() {
    if (!token || currentTab !== "dead-letters" || jobsRunning > 0) return;
    let queues;
    try {
      queues = (await api("GET", "/v1/admin/dead-letters")).items;
    } catch (error) {
      showError($("dlq-queues"), error);
      return;
    }
    $("dlq-refreshed").textContent = `updated ${new Date().toLocaleTimeString()}`;
    replace(
      $("dlq-queues"),
      queues.length === 0 ? el("p", { class: "empty-state" }, "No dead-letter queue is declared yet.") : null,
      queues.map((q) =>
        el(
          "div",
          { class: "card", "data-dead-queue": q.queue },
          el(
            "div",
            { class: "card-head" },
            el(
              "div",
              {},
              el("code", {}, q.queue),
              " ",
              el("span", { class: "count" }, q.count),
              el("span", { class: "muted" }, q.count === 1 ? " message" : " messages"),
              q.oldest ? el("span", { class: "muted" }, ` · oldest ${q.oldest}`) : null,
            ),
            el(
              "div",
              { class: "actions" },
              el("button", { type: "button", class: "open", disabled: q.count === 0, onclick: () => openMessages(q.queue) }, "Open"),
              el("button", { type: "button", class: "primary redrive-all", disabled: q.count === 0, onclick: () => redrive(q.queue, {}, `all ${q.count} message(s)`) }, "Redrive all"),
              el("button", { type: "button", class: "danger purge", disabled: q.count === 0, onclick: () => purge(q.queue, q.count) }, "Purge"),
            ),
          ),
          q.count === 0
            ? el("p", { class: "empty-state" }, "Empty.")
            : el(
                "ul",
                { class: "reasons" },
                q.reasons.map((r) =>
                  el(
                    "li",
                    { "data-reason": r.reason },
                    el("span", {}, el("span", { class: "count" }, `${r.count}× `), el("span", { class: "reason" }, r.reason)),
                    el("button", { type: "button", class: "redrive-reason", onclick: () => redrive(q.queue, { reason: r.reason }, `the ${r.count} message(s) with reason “${r.reason}”`) }, "Redrive this group"),
                  ),
                ),
              ),
        ),
      ),
    );
    if (openQueue) {
      const still = queues.find((q) => q.queue === openQueue);
      if (!still || still.count === 0) {
        openQueue = null;
        replace($("dlq-messages"));
      }
    }
  }

  async function openMessages(queue) {
    openQueue = queue;
    let page;
    try {
      page = await api("GET", `/v1/admin/dead-letters/${encodeURIComponent(queue)}?limit=20`);
    } catch (error) {
      showError($("dlq-messages"), error);
      return;
    }
    replace(
      $("dlq-messages"),
      el("h2", {}, `${queue}: ${page.items.length} of ${page.count} shown (read and put back; nothing is consumed)`),
      page.items.map((m) => {
        let body = m.body;
        try {
          body = JSON.stringify(JSON.parse(m.body), null, 2);
        } catch {
          /* not JSON: shown as it is */
        }
        return el(
          "div",
          { class: "card letter", "data-message-id": m.message_id || "" },
          el(
            "div",
            { class: "card-head" },
            el("div", {}, el("b", {}, m.type || "(no type)"), " ", el("code", { class: "muted" }, m.message_id || "(no message id)")),
            m.message_id
              ? el("button", { type: "button", class: "primary", onclick: () => redrive(queue, { message_id: m.message_id }, `message ${m.message_id}`) }, "Redrive this message")
              : null,
          ),
          el(
            "dl",
            { class: "facts" },
            el("dt", {}, "reason"), el("dd", { class: "error" }, m.reason),
            el("dt", {}, "attempts"), el("dd", {}, m.attempts),
            el("dt", {}, "originally"), el("dd", {}, `exchange ${m.original_exchange || "(default)"}, routing key ${m.original_routing_key}, queue ${m.original_queue || "?"}`),
            el("dt", {}, "dead-lettered"), el("dd", {}, m.dead_lettered_at || "?"),
            el("dt", {}, "correlation id"), el("dd", {}, m.correlation_id || "–"),
          ),
          el(
            "details",
            {},
            el("summary", {}, `headers (${m.headers.length})`),
            el("table", { class: "grid" }, el("tbody", {}, m.headers.map((h) => el("tr", {}, el("td", {}, el("code", {}, h.name)), el("td", {}, h.value))))),
          ),
          el("pre", { class: "body" }, body),
        );
      }),
    );
  }

  async function redrive(queue, selection, what) {
    const ok = await confirmAction(
      "Redrive dead letters",
      `Send ${what} from ${queue} back to their original exchange and routing key? Each is removed from the dead-letter queue only after the broker confirms its copy; a repeat is skipped by the consumer's inbox.`,
    );
    if (!ok) return;
    await runJob("POST", `/v1/admin/dead-letters/${encodeURIComponent(queue)}/redrive`, selection, "redrive", () => {
      refreshDeadLetters();
      if (openQueue === queue) openMessages(queue);
    });
  }

  async function purge(queue, count) {
    const ok = await confirmAction(
      "Purge a dead-letter queue",
      `Delete all ${count} message(s) of ${queue} for good? This cannot be undone.`,
      queue,
    );
    if (!ok) return;
    await runJob("POST", `/v1/admin/dead-letters/${encodeURIComponent(queue)}/purge`, undefined, "purge", () => {
      openQueue = null;
      replace($("dlq-messages"));
      refreshDeadLetters();
    });
  }

  // MARK: - Orders

  const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  const money = (cents) => (cents === null || cents === undefined ? "–" : (cents / 100).toFixed(2));

  function orderTable(orders, caption) {
    if (orders.length === 0) return el("p", { class: "empty-state" }, `${caption}: none.`);
    return [
      el("h2", {}, caption),
      el(
        "table",
        { class: "grid orders" },
        el("thead", {}, el("tr", {}, ["order", "customer", "status", "total", "created"].map((h) => el("th", {}, h)))),
        el(
          "tbody",
          {},
          orders.map((o) =>
            el(
              "tr",
              { class: "clickable", "data-order": o.id, onclick: () => openOrder(o.id) },
              el("td", {}, el("code", {}, o.id)),
              el("td", {}, o.customer_id),
              el("td", { class: `status st-${o.status}` }, o.status),
              el("td", { class: "num" }, money(o.total_cents)),
              el("td", {}, new Date(o.created_at).toLocaleString()),
            ),
          ),
        ),
      ),
    ];
  }

  async function loadRecentOrders() {
    if ($("order-query").value.trim()) return;
    try {
      const page = await api("GET", "/v1/orders?limit=10");
      replace($("order-results"), orderTable(page.items, "Latest orders"));
    } catch (error) {
      showError($("order-results"), error);
    }
  }

  async function searchOrders(event) {
    event.preventDefault();
    const query = $("order-query").value.trim();
    replace($("order-detail"));
    if (!query) return loadRecentOrders();
    try {
      if (uuidPattern.test(query)) {
        replace($("order-results"));
        await openOrder(query.toLowerCase());
      } else {
        const page = await api("GET", `/v1/orders?limit=50&customer_id=${encodeURIComponent(query)}`);
        replace($("order-results"), orderTable(page.items, `Orders of ${query}`));
      }
    } catch (error) {
      showError($("order-results"), error);
    }
  }

  function delay(ms) {
    if (ms < 1000) return `+${Math.round(ms)} ms`;
    if (ms < 60000) return `+${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
    return `+${(ms / 60000).toFixed(1)} min`;
  }

  async function openOrder(id) {
    let order, events;
    try {
      [order, events] = await Promise.all([api("GET", `/v1/orders/${id}`), api("GET", `/v1/orders/${id}/events`)]);
    } catch (error) {
      showError($("order-detail"), error.status === 404 ? new Error(`No order ${id}.`) : error);
      return;
    }
    const items = events.items;
    const byId = new Map(items.map((e) => [e.id, e]));
    const start = items.length ? new Date(items[0].occurred_at).getTime() : 0;
    const rows = items.map((e, i) => {
      const at = new Date(e.occurred_at).getTime();
      const previous = i > 0 ? new Date(items[i - 1].occurred_at).getTime() : at;
      const cause = e.causation_id ? byId.get(e.causation_id) : null;
      return el(
        "tr",
        { class: "event", "data-type": e.type },
        el("td", { class: "num" }, e.position),
        el("td", { class: "nowrap" }, e.occurred_at),
        el("td", { class: "num nowrap" }, i === 0 ? "start" : delay(at - previous)),
        el("td", {}, el("b", {}, e.type)),
        el(
          "td",
          {},
          cause
            ? `← ${cause.type} (#${cause.position})`
            : e.causation_id
              ? ["a command ", el("code", { class: "muted", title: e.causation_id }, `${e.causation_id.slice(0, 8)}…`)]
              : "–",
        ),
        el("td", {}, el("code", { class: "muted", title: e.id }, `${e.id.slice(0, 8)}…`)),
      );
    });
    const check = el("div", { id: "rebuild-check" });
    replace(
      $("order-detail"),
      el(
        "div",
        { class: "card", "data-order-detail": order.id },
        el(
          "div",
          { class: "card-head" },
          el("div", {}, el("h3", {}, "Order ", el("code", {}, order.id)), el("span", { class: `status st-${order.status}` }, order.status), order.reason ? el("span", { class: "muted" }, ` — ${order.reason}`) : null),
          el("button", { type: "button", id: "rebuild-check-button", onclick: () => rebuildCheck(order.id, check) }, "Compare with a rebuild from the log"),
        ),
        el(
          "dl",
          { class: "facts" },
          el("dt", {}, "customer"), el("dd", {}, order.customer_id),
          el("dt", {}, "lines"), el("dd", {}, order.lines.map((l) => `${l.quantity} × ${l.sku}${l.unit_price_cents !== null && l.unit_price_cents !== undefined ? ` at ${money(l.unit_price_cents)}` : ""}`).join(", ")),
          el("dt", {}, "total"), el("dd", {}, money(order.total_cents)),
          el("dt", {}, "payment"), el("dd", {}, `${order.payment.status}${order.payment.reference ? ` (${order.payment.reference})` : ""}`),
          el("dt", {}, "created / updated"), el("dd", {}, `${order.created_at} / ${order.updated_at} (version ${order.version})`),
          el("dt", {}, "end to end"), el("dd", {}, items.length > 1 ? delay(new Date(items[items.length - 1].occurred_at).getTime() - start).slice(1) : "–"),
        ),
        check,
        el("h3", {}, `Timeline: ${items.length} events`),
        timeline(items),
        el(
          "table",
          { class: "grid timeline-table" },
          el("thead", {}, el("tr", {}, ["#", "time", "delay", "event", "caused by", "event id"].map((h) => el("th", {}, h)))),
          el("tbody", {}, rows),
        ),
      ),
    );
  }

  /** The events on a time axis: evenly spaced dots (order), each with its type and the delay from the previous. */
  function timeline(items) {
    const width = 960, height = 120, margin = 60;
    const node = svg("svg", { class: "timeline", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "order timeline" });
    node.append(svg("line", { class: "tl-axis", x1: margin / 2, x2: width - margin / 2, y1: 60, y2: 60 }));
    const step = items.length > 1 ? (width - 2 * margin) / (items.length - 1) : 0;
    items.forEach((e, i) => {
      const x = items.length > 1 ? margin + i * step : width / 2;
      const finalType = e.type === "order.confirmed" ? " final" : /rejected|cancelled|declined/.test(e.type) ? " bad" : "";
      node.append(svg("circle", { class: `tl-dot${finalType}`, cx: x, cy: 60, r: 6 }));
      node.append(svg("text", { class: "tl-label", x, y: i % 2 ? 92 : 40, "text-anchor": "middle" }, e.type));
      if (i > 0) {
        const ms = new Date(e.occurred_at).getTime() - new Date(items[i - 1].occurred_at).getTime();
        node.append(svg("text", { class: "tl-delay", x: x - step / 2, y: i % 2 ? 50 : 78, "text-anchor": "middle" }, delay(ms)));
      }
    });
    return node;
  }

  async function rebuildCheck(id, target) {
    replace(target, el("p", { class: "muted" }, "rebuilding this order from the log…"));
    try {
      const result = await api("GET", `/v1/admin/orders/${id}/rebuild-check`);
      replace(
        target,
        result.matches
          ? el("p", { class: "match" }, `✓ The projection equals a rebuild from the log (${result.events} events, ${result.live_history} history rows).`)
          : [
              el("p", { class: "mismatch" }, `✗ The projection differs from a rebuild from the log (history: ${result.live_history} live, ${result.rebuilt_history} rebuilt).`),
              el("pre", { class: "body" }, `live    ${JSON.stringify(result.live)}\nrebuilt ${JSON.stringify(result.rebuilt)}`),
            ],
      );
    } catch (error) {
      showError(target, error);
    }
  }

  // MARK: - Replay

  async function startDryRun() {
    const projections = [];
    if ($("replay-orders").checked) projections.push("orders");
    if ($("replay-products").checked) projections.push("products");
    if (projections.length === 0) {
      replace($("replay-result"), el("p", { class: "error" }, "Choose at least one projection."));
      return;
    }
    $("replay-start").disabled = true;
    replace($("replay-result"), el("p", { class: "muted" }, "dry run queued…"));
    const job = await runJob("POST", "/v1/admin/replay/dry-run", { projections }, "replay dry run", null, (running) => {
      if (running.state !== "running") return;
      replace(
        $("replay-result"),
        el("p", { class: "muted", id: "replay-progress" }, running.total ? `rebuilding aside: ${running.done} of ${running.total} events` : "rebuilding aside…"),
        running.total ? el("progress", { max: running.total, value: running.done }) : el("progress", {}),
      );
    });
    $("replay-start").disabled = false;
    if (!job) {
      replace($("replay-result"));
      return;
    }
    const differences = (job.result && job.result.differences) || [];
    replace(
      $("replay-result"),
      el("p", { class: job.state === "succeeded" ? (differences.every((d) => d.added + d.removed + d.different === 0) ? "match" : "mismatch") : "error", id: "replay-message" }, job.message || job.state),
      differences.length
        ? el(
            "table",
            { class: "grid" },
            el("thead", {}, el("tr", {}, [["table"], ["added", "num"], ["removed", "num"], ["different", "num"]].map(([h, c]) => el("th", { class: c }, h)))),
            el("tbody", {}, differences.map((d) => el("tr", {}, el("td", {}, d.table), el("td", { class: "num" }, d.added), el("td", { class: "num" }, d.removed), el("td", { class: "num" }, d.different)))),
          )
        : null,
      differences.flatMap((d) => d.samples).map((sample) => el("pre", { class: "body" }, sample)),
      el("p", { class: "muted" }, `${job.done} events replayed aside; nothing was changed.`),
    );
  }

  // MARK: - Wiring

  document.addEventListener("DOMContentLoaded", () => {
    $("signin-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", () => signOut());
    for (const button of document.querySelectorAll("#tabs button")) {
      button.addEventListener("click", () => show(button.dataset.tab));
    }
    for (const button of document.querySelectorAll("#window button")) {
      button.addEventListener("click", () => {
        flowWindow = button.dataset.window;
        for (const other of document.querySelectorAll("#window button")) other.classList.toggle("active", other === button);
        refreshOverview();
      });
    }
    $("order-search").addEventListener("submit", searchOrders);
    $("replay-start").addEventListener("click", startDryRun);
  });
})();
