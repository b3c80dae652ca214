// The shortlist playground. Plain JavaScript, no build step, no network but this server.
// It calls the server's JSON API: GET /v1/playground, POST /v1/playground/search,
// GET|POST /v1/judgements, POST /v1/answer (server-sent events), GET /v1/playground/eval.
(function () {
  "use strict";

  const KEY = "shortlist.apiKey";
  const MAX_COLUMNS = 3;
  const $ = (id) => document.getElementById(id);
  const state = { info: null, columns: [], marks: {}, query: "", pending: null };

  class ApiError extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

  // ---- API --------------------------------------------------------------------
  function headers(json) {
    const h = {};
    if (json) h["Content-Type"] = "application/json";
    const key = sessionStorage.getItem(KEY);
    if (key) h.Authorization = "Bearer " + key;
    return h;
  }

  async function failure(response) {
    let message = "HTTP " + response.status;
    try {
      const body = await response.json();
      if (body && body.message) message = body.message;
    } catch (e) {
      // not JSON: keep the status
    }
    if (response.status === 401) askKey("The server refused the key: " + message);
    const prefix = response.status >= 500 ? "server error: " : "";
    return new ApiError(prefix + message + " (HTTP " + response.status + ")", response.status);
  }

  async function api(path, body) {
    let response;
    try {
      response = await fetch(path, {
        method: body === undefined ? "GET" : "POST",
        headers: headers(body !== undefined),
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ApiError("cannot reach the shortlist server: " + e.message, 0);
    }
    if (!response.ok) throw await failure(response);
    return response.json();
  }

  // ---- small DOM helpers ---------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function show(box, text, kind) {
    box.textContent = text || "";
    box.className = "message" + (kind ? " " + kind : "");
    box.hidden = !text;
  }

  const message = (text, kind) => show($("message"), text, kind || "error");
  const meta = (text, kind) => {
    $("answer-meta").textContent = text;
    $("answer-meta").className = "hint" + (kind ? " " + kind : "");
  };
  const fmt = (x, digits) => (x === null || x === undefined ? "–" : Number(x).toFixed(digits));
  const safeId = (col, id) => "c" + col + "-" + String(id).replace(/[^A-Za-z0-9_-]/g, "_");

  // ---- API key -------------------------------------------------------------------
  function askKey(problem) {
    const dialog = $("key-dialog");
    show($("key-error"), problem || "", "error");
    if (!dialog.open) dialog.showModal();
  }

  function setupKey() {
    $("key-form").addEventListener("submit", () => {
      const key = $("key-input").value.trim();
      if (key) sessionStorage.setItem(KEY, key);
      $("key-input").value = "";
    });
    $("key-button").addEventListener("click", () => askKey(""));
  }

  // ---- pipelines -----------------------------------------------------------------
  function addPipelineInput(value) {
    const box = $("pipelines");
    if (box.children.length >= MAX_COLUMNS) return;
    const input = el("input", {
      class: "pipeline",
      list: "served-pipelines",
      value: value || "",
      placeholder: "pipeline or spec, e.g. bm25+model",
      "aria-label": "Pipeline " + (box.children.length + 1),
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        run();
      }
    });
    const remove = el("button", {
      class: "quiet remove",
      type: "button",
      "aria-label": "Remove this pipeline",
      text: "×",
      onclick: () => {
        if (box.children.length > 1) wrap.remove();
        $("add-column").disabled = box.children.length >= MAX_COLUMNS;
      },
    });
    const wrap = el("div", { class: "pipeline-input" }, input, remove);
    box.append(wrap);
    $("add-column").disabled = box.children.length >= MAX_COLUMNS;
  }

  function pipelineValues() {
    return [...document.querySelectorAll("#pipelines input.pipeline")]
      .map((input) => input.value.trim())
      .filter((value) => value);
  }

  function setPipelines(values) {
    $("pipelines").replaceChildren();
    values.slice(0, MAX_COLUMNS).forEach((value) => addPipelineInput(value));
  }

  function parseFilters(text) {
    const out = {};
    for (const part of text.split(",").map((s) => s.trim()).filter(Boolean)) {
      const at = part.indexOf("=");
      if (at < 1) throw new ApiError("filter '" + part + "' is not key=value, e.g. lang=en", 0);
      const key = part.slice(0, at).trim();
      const value = part.slice(at + 1).trim();
      if (key in out) out[key] = [].concat(out[key], value);
      else out[key] = value;
    }
    return Object.keys(out).length ? out : null;
  }

  function positive(id) {
    const value = $(id).value.trim();
    if (!value) return null;
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new ApiError(id.toUpperCase().replace("TOP-N", "N") + " must be a whole number ≥ 1", 0);
    return n;
  }

  function request() {
    const query = $("query").value.trim();
    if (!query) throw new ApiError("Type a query first.", 0);
    return { query, k: positive("k"), top_n: positive("top-n"), filter: parseFilters($("filters").value) };
  }

  // ---- compare -------------------------------------------------------------------
  async function run() {
    let base;
    try {
      base = request();
    } catch (e) {
      message(e.message);
      return;
    }
    const pipelines = pipelineValues();
    if (!pipelines.length) {
      message("Choose at least one pipeline (a served one from the list, or a spec).");
      return;
    }
    message("");
    state.query = base.query;
    $("columns").replaceChildren(...pipelines.map((p, i) => el("section", { class: "column loading", id: "col-" + i }, el("h2", { text: p }), el("p", { class: "hint", text: "running…" }))));
    const answers = await Promise.allSettled(pipelines.map((pipeline) => api("/v1/playground/search", { ...base, pipeline })));
    state.columns = answers.map((a, i) => ({ pipeline: pipelines[i], request: { ...base, pipeline: pipelines[i] }, result: a.status === "fulfilled" ? a.value : null, error: a.status === "rejected" ? a.reason.message : null }));
    const errors = state.columns.filter((c) => c.error).map((c) => c.pipeline + ": " + c.error);
    if (errors.length) message(errors.join("\n"));
    await loadMarks();
    render();
  }

  function render() {
    const maxTotal = Math.max(1e-9, ...state.columns.filter((c) => c.result).map((c) => c.result.timings_ms.total || 0));
    const columns = state.columns.map((c, i) => (c.result ? column(c.result, i, maxTotal) : failedColumn(c, i)));
    $("columns").replaceChildren(...columns);
    $("columns").dataset.count = String(columns.length);
    link();
    const select = $("answer-column");
    select.replaceChildren(...state.columns.map((c, i) => el("option", { value: String(i), text: (i + 1) + ": " + c.pipeline, disabled: !c.result })));
  }

  function failedColumn(c, i) {
    return el("section", { class: "column failed", id: "col-" + i }, el("h2", { text: c.pipeline }), el("p", { class: "error", text: c.error }));
  }

  const STAGE_ORDER = ["retrieve.bm25", "retrieve.encode", "retrieve.dense", "retrieve.fusion", "retrieve", "rerank.first", "rerank.second", "rerank", "total"];

  function timings(result, maxTotal) {
    const stages = Object.keys(result.timings_ms).sort((a, b) => {
      const ia = STAGE_ORDER.indexOf(a), ib = STAGE_ORDER.indexOf(b);
      return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
    });
    return el("div", { class: "timings", "aria-label": "Stage timings" }, stages.map((stage) => {
      const ms = result.timings_ms[stage];
      const width = Math.max(0.5, Math.min(100, (100 * ms) / maxTotal));
      return el("div", { class: "timing" + (stage.includes(".") ? " sub" : ""), "data-stage": stage, "data-ms": String(ms) },
        el("span", { class: "stage", text: stage }),
        el("span", { class: "track" }, el("span", { class: "bar", style: "width:" + width.toFixed(2) + "%" })),
        el("span", { class: "ms", text: fmt(ms, 1) + " ms" }));
    }));
  }

  function moveBadge(hit) {
    const labels = { up: "↑" + hit.move_by, down: "↓" + -hit.move_by, same: "=", new: "new" };
    const title = hit.first_stage_rank ? "first-stage rank " + hit.first_stage_rank : "not in the first stage";
    return el("span", { class: "move " + hit.move, title, text: labels[hit.move] });
  }

  function segments(parts) {
    return parts.map((s) => (s.match ? el("mark", { text: s.text }) : document.createTextNode(s.text)));
  }

  function judgeButtons(hit) {
    if (!state.info || !state.info.judgements) return null;
    const mark = state.marks[hit.doc_id];
    const button = (label, value, cls) => el("button", {
      type: "button",
      class: "judge " + cls,
      "aria-pressed": mark === value ? "true" : "false",
      "data-doc-id": hit.doc_id,
      "data-value": String(value),
      text: label,
      onclick: () => judge(hit.doc_id, mark === value ? null : value),
    });
    return el("div", { class: "judges" }, button("✓ relevant", 1, "yes"), button("✗ not relevant", 0, "no"));
  }

  function column(result, i, maxTotal) {
    const hits = result.results.map((hit) => {
      const meta = Object.entries(hit.metadata || {}).map(([k, v]) => el("span", { class: "chip", text: k + ": " + (typeof v === "object" ? JSON.stringify(v) : v) }));
      const scores = ["score " + fmt(hit.score, 3)];
      if (hit.raw_score !== undefined && hit.raw_score !== null) scores.push("raw " + fmt(hit.raw_score, 3));
      if (hit.calibrated_score !== undefined && hit.calibrated_score !== null) scores.push("calibrated " + fmt(hit.calibrated_score, 3));
      return el("li", { class: "hit", id: safeId(i, hit.id), "data-id": hit.id, "data-doc-id": hit.doc_id, "data-rank": hit.rank, "data-first-rank": hit.first_stage_rank === null ? "" : hit.first_stage_rank, "data-move": hit.move },
        el("div", { class: "hit-head" },
          el("span", { class: "rank", text: "#" + hit.rank }),
          moveBadge(hit),
          el("span", { class: "first", text: hit.first_stage_rank ? "1st stage #" + hit.first_stage_rank : "" }),
          el("span", { class: "scores", text: scores.join(" · ") })),
        hit.title ? el("div", { class: "title" }, segments(hit.title_segments)) : null,
        el("div", { class: "meta" }, el("span", { class: "doc", text: hit.doc_id }), meta),
        el("p", { class: "text" }, segments(hit.segments)),
        judgeButtons(hit));
    });
    return el("section", { class: "column", id: "col-" + i, "data-pipeline": result.pipeline },
      el("header", {},
        el("h2", { text: result.pipeline === result.spec ? result.spec : result.pipeline + " — " + result.spec }),
        el("p", { class: "describe", text: result.describe + (result.highlighted ? " · BM25 matches marked" : "") }),
        timings(result, maxTotal)),
      hits.length ? el("ol", { class: "hits" }, hits) : el("p", { class: "hint", text: "no results" }));
  }

  function link() {
    // A passage in two or more columns gets one colour everywhere, and hovering lights all.
    const seen = {};
    document.querySelectorAll("#columns .hit").forEach((node) => {
      (seen[node.dataset.id] = seen[node.dataset.id] || []).push(node);
    });
    let n = 0;
    for (const nodes of Object.values(seen)) {
      const columns = new Set(nodes.map((node) => node.closest(".column").id));
      if (columns.size < 2) continue;
      const colour = "hsl(" + ((n++ * 137.5) % 360).toFixed(0) + " 70% 45%)";
      for (const node of nodes) {
        node.classList.add("linked");
        node.style.setProperty("--link", colour);
        node.addEventListener("mouseenter", () => nodes.forEach((x) => x.classList.add("lit")));
        node.addEventListener("mouseleave", () => nodes.forEach((x) => x.classList.remove("lit")));
      }
    }
  }

  // ---- judgements ----------------------------------------------------------------
  async function loadMarks() {
    state.marks = {};
    if (!state.info || !state.info.judgements || !state.query) return;
    try {
      const body = await api("/v1/judgements?query=" + encodeURIComponent(state.query));
      state.marks = body.marks;
    } catch (e) {
      message("could not read the saved judgements: " + e.message);
    }
  }

  async function judge(docId, value) {
    try {
      const body = await api("/v1/judgements", { query: state.query, doc_id: docId, relevance: value });
      state.marks = body.marks;
      render();
      show($("message"), "saved to " + body.folder + " (query " + body.query_id + ")", "ok");
    } catch (e) {
      message(e.message);
    }
  }

  // ---- answer --------------------------------------------------------------------
  function renderAnswer(text, prompt, col) {
    const box = $("answer");
    const numbers = {};
    for (const c of prompt ? prompt.citations : []) numbers[c.number] = c;
    const parts = [];
    let at = 0;
    const pattern = /\[(\d{1,4}(?:\s*,\s*\d{1,4})*)\]/g;
    let m;
    while ((m = pattern.exec(text)) !== null) {
      parts.push(document.createTextNode(text.slice(at, m.index)));
      for (const n of m[1].split(",").map((x) => Number(x.trim()))) {
        const c = numbers[n];
        if (c) {
          parts.push(el("a", { class: "cite", href: "#" + safeId(col, c.id), "data-number": n, "data-passage": c.id, title: c.doc_id, text: "[" + n + "]", onclick: (event) => flash(event, safeId(col, c.id)) }));
        } else {
          parts.push(el("span", { class: "cite flagged", "data-number": n, title: "[" + n + "] is not a passage of the prompt", text: "[" + n + "]⚠" }));
        }
      }
      at = m.index + m[0].length;
    }
    parts.push(document.createTextNode(text.slice(at)));
    box.replaceChildren(...parts);
  }

  function flash(event, id) {
    const target = document.getElementById(id);
    if (!target) return;
    event.preventDefault();
    target.scrollIntoView({ block: "center" });
    target.classList.remove("flash");
    void target.offsetWidth;
    target.classList.add("flash");
  }

  async function answer() {
    const col = Number($("answer-column").value || 0);
    const chosen = state.columns[col];
    if (!chosen || !chosen.result) {
      meta("");
      message("Run a query first: the answer is built from a column's passages.");
      return;
    }
    $("answer").replaceChildren();
    $("answer").dataset.state = "streaming";
    meta("asking " + state.info.llm + "…");
    let response;
    try {
      response = await fetch("/v1/answer", { method: "POST", headers: headers(true), body: JSON.stringify(chosen.request) });
    } catch (e) {
      meta("");
      message("cannot reach the shortlist server: " + e.message);
      return;
    }
    if (!response.ok) {
      const error = await failure(response);
      $("answer").dataset.state = "error";
      meta("");
      message(error.message);
      return;
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "", text = "", prompt = null;
    const handle = (event, data) => {
      const body = JSON.parse(data);
      if (event === "passages") prompt = body.prompt;
      else if (event === "delta") {
        text += body.text;
        renderAnswer(text, prompt, col);
      } else if (event === "done") {
        renderAnswer(body.answer, prompt, col);
        $("answer").dataset.state = "done";
        const flagged = body.citations.filter((c) => !c.in_prompt).map((c) => "[" + c.number + "]");
        const usage = body.usage;
        const bits = [prompt ? prompt.citations.length + " passages in the prompt (" + prompt.tokens + " tokens est.)" : ""];
        if (usage) bits.push("tokens: " + usage.prompt_tokens + " prompt + " + usage.completion_tokens + " completion = " + usage.total_tokens);
        else bits.push("tokens: not reported by the server");
        if (body.cost_usd !== null && body.cost_usd !== undefined) bits.push("cost $" + body.cost_usd.toFixed(6));
        if (flagged.length) bits.push("not in the prompt: " + flagged.join(" "));
        meta(bits.filter(Boolean).join(" · "), flagged.length ? "warn" : "");
      } else if (event === "error") {
        $("answer").dataset.state = "error";
        meta("");
        message("the LLM failed: " + body.message);
      }
    };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let event = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (data.length) handle(event, data.join("\n"));
      }
    }
  }

  // ---- eval tab ------------------------------------------------------------------
  function showEval(report) {
    const box = $("eval-content");
    // One dataset, or several (`shortlist eval A B --json`: {"datasets": [...], ...}).
    const parts = report && Array.isArray(report.datasets) ? report.datasets : [report];
    if (!parts.length || !parts.every((r) => r && Array.isArray(r.summary) && r.primary)) {
      show($("eval-message"), "This is not a `shortlist eval --json` file (no summary / primary metric).", "error");
      box.replaceChildren();
      return;
    }
    show($("eval-message"), "");
    box.replaceChildren(...parts.flatMap(evalSection));
  }

  function evalSection(report) {
    const metrics = report.metrics || [report.primary];
    const head = el("tr", {}, ["pipeline", "k", ...metrics, "p50 ms", "p95 ms", "$/1k queries"].map((h) => el("th", { text: h })));
    const rows = report.summary.map((r) => el("tr", {},
      el("td", { title: r.spec, text: r.pipeline }), el("td", { text: r.k }),
      metrics.map((m) => el("td", { text: fmt(r[m], 4) })),
      el("td", { text: fmt(r.total_p50_ms, 1) }), el("td", { text: fmt(r.total_p95_ms, 1) }),
      el("td", { text: r.cost_per_1k_queries_usd === null || r.cost_per_1k_queries_usd === undefined ? "–" : fmt(r.cost_per_1k_queries_usd, 4) })));
    const specs = {};
    report.summary.forEach((r) => (specs[r.pipeline] = r.spec));
    const losses = (report.where_reranking_hurts || []).map((h) => el("tr", { class: "loss" },
      el("td", { text: h.name }), el("td", { text: h.k }),
      el("td", {}, el("button", { type: "button", class: "link open-query", "data-query-id": h.query_id, text: h.query.length > 90 ? h.query.slice(0, 89) + "…" : h.query, title: "Open side by side", onclick: () => openLoss(h, specs[h.name]) })),
      el("td", { text: fmt(h.before, 3) + " → " + fmt(h.after, 3) }),
      el("td", { text: (h.relevant_rank_before || "–") + " → " + (h.relevant_rank_after || "–") })));
    return [
      el("h2", { text: report.dataset + " · " + report.n_queries + " queries · " + report.primary }),
      report.recommendation ? el("p", { class: "hint", text: "Recommendation: " + report.recommendation.reason }) : null,
      el("div", { class: "table-wrap" }, el("table", { class: "summary" }, el("thead", {}, head), el("tbody", {}, rows))),
      el("h3", { text: "Quality against p95 latency" }),
      plot(report),
      el("h3", { text: "Where reranking hurt (per query)" }),
      losses.length
        ? el("div", { class: "table-wrap" }, el("table", { class: "losses" },
            el("thead", {}, el("tr", {}, ["pipeline", "k", "query", report.primary, "best relevant rank"].map((h) => el("th", { text: h })))),
            el("tbody", {}, losses)))
        : el("p", { class: "hint", text: "No query lost to reranking." }),
    ].filter(Boolean);
  }

  function plot(report) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = (tag, attrs, ...kids) => {
      const node = document.createElementNS(ns, tag);
      for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
      node.append(...kids);
      return node;
    };
    const W = 720, H = 320, L = 56, R = 220, T = 16, B = 40;
    const metric = report.primary;
    const points = report.summary.map((r) => ({ name: r.pipeline, k: r.k, x: r.total_p95_ms, y: r[metric] }));
    const xmax = Math.max(1e-9, ...points.map((p) => p.x)) * 1.05;
    const ys = points.map((p) => p.y);
    const ymin = Math.max(0, Math.min(...ys) - 0.05), ymax = Math.min(1, Math.max(...ys) + 0.05);
    const sx = (x) => L + (x / xmax) * (W - L - R);
    const sy = (y) => (ymax === ymin ? H / 2 : T + (1 - (y - ymin) / (ymax - ymin)) * (H - T - B));
    const root = svg("svg", { viewBox: "0 0 " + W + " " + H, class: "plot", role: "img", "aria-label": metric + " against p95 latency" });
    root.append(svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }), svg("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" }));
    for (let i = 0; i <= 4; i++) {
      const x = (xmax * i) / 4, y = ymin + ((ymax - ymin) * i) / 4;
      root.append(svg("text", { x: sx(x), y: H - B + 16, "text-anchor": "middle", class: "tick" }, x.toFixed(1)));
      root.append(svg("text", { x: L - 6, y: sy(y) + 4, "text-anchor": "end", class: "tick" }, y.toFixed(3)));
    }
    root.append(svg("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle", class: "label" }, "p95 latency (ms)"));
    const names = [...new Set(points.map((p) => p.name))];
    names.forEach((name, i) => {
      const colour = "hsl(" + ((i * 137.5) % 360).toFixed(0) + " 65% 42%)";
      const series = points.filter((p) => p.name === name).sort((a, b) => a.k - b.k);
      root.append(svg("polyline", { points: series.map((p) => sx(p.x) + "," + sy(p.y)).join(" "), fill: "none", stroke: colour, "stroke-width": 2 }));
      for (const p of series) {
        root.append(svg("circle", { cx: sx(p.x), cy: sy(p.y), r: 4, fill: colour }, svg("title", {}, name + " k=" + p.k + ": " + metric + " " + p.y.toFixed(4) + ", p95 " + p.x.toFixed(1) + " ms")));
      }
      const shown = name.length > 30 ? name.slice(0, 29) + "…" : name;
      root.append(svg("text", { x: W - R + 12, y: T + 14 + i * 16, style: "fill:" + colour, class: "legend" }, svg("title", {}, name), shown));
    });
    return root;
  }

  function openLoss(hurt, spec) {
    const first = spec ? spec.split("+")[0] : null;
    selectTab("compare");
    $("query").value = hurt.query;
    $("k").value = hurt.k;
    setPipelines(first && spec !== first ? [first, spec] : [spec || hurt.name]);
    run();
  }

  async function loadServerEval() {
    try {
      showEval(await api("/v1/playground/eval"));
    } catch (e) {
      show($("eval-message"), e.message, "error");
    }
  }

  function readEvalFile() {
    const file = $("eval-file").files[0];
    if (!file) return;
    const reader = new FileReader();
    reader.onload = () => {
      try {
        showEval(JSON.parse(reader.result));
      } catch (e) {
        show($("eval-message"), file.name + " is not JSON: " + e.message, "error");
      }
    };
    reader.readAsText(file);
  }

  function selectTab(name) {
    for (const tab of ["compare", "eval"]) {
      $("tab-" + tab).setAttribute("aria-selected", String(tab === name));
      $(tab + "-view").hidden = tab !== name;
    }
  }

  // ---- start ---------------------------------------------------------------------
  async function start() {
    setupKey();
    $("query-form").addEventListener("submit", (event) => {
      event.preventDefault();
      run();
    });
    $("add-column").addEventListener("click", () => addPipelineInput(""));
    $("answer-button").addEventListener("click", answer);
    $("tab-compare").addEventListener("click", () => selectTab("compare"));
    $("tab-eval").addEventListener("click", () => selectTab("eval"));
    $("eval-file").addEventListener("change", readEvalFile);
    $("eval-server").addEventListener("click", loadServerEval);
    let info;
    try {
      info = await api("/v1/playground");
    } catch (e) {
      message("cannot load the playground's settings: " + e.message);
      return;
    }
    state.info = info;
    $("key-button").hidden = !info.auth;
    if (info.auth && !sessionStorage.getItem(KEY)) askKey("");
    $("served-pipelines").replaceChildren(...info.pipelines.map((p) => el("option", { value: p.name, label: p.spec })));
    $("k").value = info.k;
    $("k").max = info.max_k;
    $("top-n").value = info.top_n;
    $("top-n").max = info.max_top_n;
    // Start with a first stage against a reranked pipeline: the pipeline file's, if any.
    const file = info.pipelines.find((p) => p.name === "pipeline file");
    const reranked = file || info.pipelines.find((p) => p.name.includes("+"));
    const names = info.pipelines.map((p) => p.name);
    setPipelines(reranked ? [reranked.spec.split("+")[0], reranked.name] : names.slice(0, 2));
    $("answer-button").disabled = !info.llm;
    $("answer-hint").textContent = info.llm ? "with " + info.llm : "start the server with --llm URL --llm-model NAME to answer";
    $("eval-server").hidden = !info.eval;
    $("judge-hint").hidden = info.judgements;
    if (info.eval) loadServerEval();
    document.body.dataset.ready = "true";
  }

  document.addEventListener("DOMContentLoaded", start);
})();
