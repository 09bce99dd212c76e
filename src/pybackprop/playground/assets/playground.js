/* pybackprop playground: the page's script (no modules, no build step, no network access but its server).
 *
 * The server trains (pybackprop's C++ core); this script only draws what it returns:
 * the network (PBNet from network.js), the loss curves, the output over the plane and the gradient norms.
 * The whole run's state is in the URL hash (see State below), so a link reproduces it;
 * hide=controls (or a list of control names) hides controls for an exercise.
 */
(function () {
  "use strict";

  // ------------------------------------------------------------------ constants
  const ORANGE = [245, 147, 34], WHITE = [232, 234, 235], BLUE = [8, 119, 189];
  const LR_CHOICES = [0.00001, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10];
  const L2_CHOICES = [0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1];
  const KEEP_CHOICES = [1, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5];
  const ACTIVATION_TITLES = {tanh: "tanh", relu: "ReLU", sigmoid: "sigmoid", identity: "linear",
                             leaky_relu: "leaky ReLU", elu: "ELU", softplus: "softplus", gelu: "GELU"};
  const HIDE_GROUPS = {controls: ["lr", "optimizer", "l2", "keep_prob", "problem", "dataset", "csv",
                                  "train_fraction", "noise", "batch_size", "seed", "layers"]};
  const MAX_STEPS_PER_FRAME = 200;
  const PLOT = 300;  // the output plot's size in its viewBox
  const svgIcon = (path) => '<svg viewBox="0 0 24 24" width="60%" height="60%" aria-hidden="true">' +
                            '<path fill="currentColor" d="' + path + '"/></svg>';
  const ICONS = {
    play: svgIcon("M7 4v16l13-8z"), pause: svgIcon("M6 4h4v16H6zM14 4h4v16h-4z"),
    step: svgIcon("M5 4v16l11-8zM17 4h3v16h-3z"),
    reset: svgIcon("M12 4a8 8 0 1 0 8 8h-2.5A5.5 5.5 0 1 1 12 6.5V10l5-4.5L12 1z"),
  };

  // ------------------------------------------------------------------ the page's state
  const $ = (id) => document.getElementById(id);
  let catalogue = null;      // GET /api/datasets
  let config = null;         // the run's config (the server's checked copy)
  let sessionId = null;
  let snap = null;           // the last snapshot
  let points = {train: [], test: []};
  let lossHistory = [];      // [[step, train loss, test loss], ...]
  let view = null, viewShape = "";
  let playing = false, looping = false;
  let steps = Promise.resolve();  // the step requests, one after the other (the loop's and the button's)
  let received = 0;          // snapshots received: a values answer older than the last one is dropped
  let valuesInFlight = false;
  let probe = null;          // the input the units' values show (a point of the plane)
  let selected = {split: "train", index: 0};  // the point whose step picture an edge's click opens
  let hidden = [];           // the controls hidden by the URL
  let hideFlags = [];        // the URL's hide= list as given (a group such as "controls" or control names)
  let problem = "classification";
  let targetRange = [0, 1];
  let frames = 0;            // training redraws so far (benchmarks/playground.py --browser reads it)

  // ------------------------------------------------------------------ the URL
  const State = {
    /** The config fields and the view flags the hash holds, parsed; unknown keys are kept for the server to refuse. */
    parse(hash) {
      const out = {config: {}, hide: [], showTest: false};
      const text = (hash || "").replace(/^#/, "");
      if (!text) return out;
      for (const pair of text.split("&")) {
        if (!pair) continue;
        const eq = pair.indexOf("=");
        const key = decodeURIComponent(eq < 0 ? pair : pair.slice(0, eq));
        const raw = eq < 0 ? "" : decodeURIComponent(pair.slice(eq + 1));
        if (key === "hide") { out.hide = raw ? raw.split(",") : []; continue; }
        if (key === "show_test") { out.showTest = raw === "1" || raw === "true"; continue; }
        out.config[key] = State.value(key, raw);
      }
      return out;
    },
    value(key, raw) {
      if (key === "layers") return raw === "" ? [] : raw.split(",").map(Number);
      if (key === "activations") return raw === "" ? [] : raw.split(",");
      if (["dataset", "optimizer", "problem"].includes(key)) return raw;
      if (["seed", "samples", "batch_size"].includes(key)) return /^-?\d+$/.test(raw) ? parseInt(raw, 10) : raw;
      const num = Number(raw);
      return raw.trim() !== "" && !Number.isNaN(num) ? num : raw;  // "NaN" stays a string: the server says why
    },
    serialize(cfg) {
      const parts = [];
      for (const key of catalogue.fields) {
        const v = cfg[key];
        parts.push(key + "=" + encodeURIComponent(Array.isArray(v) ? v.join(",") : String(v)));
      }
      if (hideFlags.length) parts.push("hide=" + hideFlags.map(encodeURIComponent).join(","));
      if ($("show-test").checked) parts.push("show_test=1");
      return "#" + parts.join("&");
    },
  };

  function writeUrl() {
    const hash = State.serialize(config);
    if (location.hash !== hash) window.history.replaceState(null, "", hash);
  }

  // ------------------------------------------------------------------ the API
  async function api(path, body, raw) {
    const init = {method: body === undefined ? "GET" : "POST", headers: {}};
    if (body !== undefined) {
      init.body = raw ? body : JSON.stringify(body);
      init.headers["Content-Type"] = raw ? "text/csv" : "application/json";
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      const err = new Error("the playground's server does not answer (is `pybackprop playground` still running?)");
      err.status = 0;
      throw err;
    }
    let payload = null;
    try { payload = await res.json(); } catch (e) { payload = null; }
    if (!res.ok) {
      const err = new Error((payload && payload.error) || ("HTTP " + res.status));
      err.status = res.status;
      throw err;
    }
    return payload;
  }
  const sessionPath = (what) => "/api/sessions/" + encodeURIComponent(sessionId) + (what ? "/" + what : "");

  function showError(message) {
    $("error-text").textContent = message || "";
    $("error").hidden = !message;
  }

  // ------------------------------------------------------------------ controls
  function fillSelect(select, values, format) {
    select.innerHTML = "";
    for (const v of values) {
      const opt = document.createElement("option");
      opt.value = String(v);
      opt.textContent = format ? format(v) : String(v);
      select.appendChild(opt);
    }
  }
  function selectValue(select, value, format) {
    const text = String(value);
    if (![...select.options].some((o) => o.value === text)) {
      const opt = document.createElement("option");
      opt.value = text;
      opt.textContent = format ? format(value) : text;
      select.appendChild(opt);
    }
    select.value = text;
  }

  function buildControls() {
    $("play").innerHTML = ICONS.play;
    $("one-step").innerHTML = ICONS.step;
    $("reset").innerHTML = ICONS.reset;
    fillSelect($("lr"), LR_CHOICES);
    fillSelect($("l2"), L2_CHOICES, (v) => (v === 0 ? "none" : String(v)));
    fillSelect($("keep_prob"), KEEP_CHOICES, (v) => (v === 1 ? "1 (no dropout)" : String(v)));
    const box = $("datasets");
    for (const [name, info] of Object.entries(catalogue.datasets)) {
      const tile = document.createElement("button");
      tile.type = "button";
      tile.className = "pg-dataset";
      tile.dataset.dataset = name;
      tile.title = info.title;
      tile.setAttribute("role", "radio");
      tile.setAttribute("aria-label", info.title);
      const canvas = document.createElement("canvas");
      canvas.width = canvas.height = 60;
      drawPreview(canvas, info);
      tile.appendChild(canvas);
      const label = document.createElement("span");
      label.textContent = name;
      tile.appendChild(label);
      tile.addEventListener("click", () => change({dataset: name, problem: info.problem}));
      box.appendChild(tile);
    }
    const csvTile = document.createElement("button");
    csvTile.type = "button";
    csvTile.className = "pg-dataset pg-dataset-csv";
    csvTile.dataset.dataset = "csv";
    csvTile.title = "your CSV file";
    csvTile.innerHTML = '<span class="pg-csv-icon">CSV</span><span>csv</span>';
    csvTile.addEventListener("click", () => $("csv-file").click());
    box.appendChild(csvTile);

    $("lr").addEventListener("change", (e) => change({lr: Number(e.target.value)}));
    $("optimizer").addEventListener("change", (e) => change({optimizer: e.target.value}));
    $("l2").addEventListener("change", (e) => change({l2: Number(e.target.value)}));
    $("keep_prob").addEventListener("change", (e) => change({keep_prob: Number(e.target.value)}));
    $("problem").addEventListener("change", (e) => change({problem: e.target.value}));
    const slider = (id, toConfig, label) => {
      const input = $(id);
      input.addEventListener("input", () => { $(id + "-value").textContent = label(Number(input.value)); });
      input.addEventListener("change", () => change({[id]: toConfig(Number(input.value))}));
    };
    slider("train_fraction", (v) => v / 100, (v) => v + "%");
    slider("noise", (v) => v, (v) => String(v));
    slider("batch_size", (v) => v, (v) => String(v));
    $("seed").addEventListener("change", (e) => {
      const v = e.target.value.trim();
      change({seed: /^\d+$/.test(v) ? parseInt(v, 10) : v});
    });
    $("regenerate").addEventListener("click", () => change({seed: Math.floor(Math.random() * 100000)}));
    $("add-layer").addEventListener("click", () => {
      if (config.layers.length >= catalogue.limits.layers) return;
      const act = config.activations.length ? config.activations[config.activations.length - 1] : "tanh";
      change({layers: config.layers.concat([config.layers.length ? config.layers[config.layers.length - 1] : 4]),
              activations: config.activations.concat([act])});
    });
    $("remove-layer").addEventListener("click", () => {
      if (!config.layers.length) return;
      change({layers: config.layers.slice(0, -1), activations: config.activations.slice(0, -1)});
    });
    $("csv-file").addEventListener("change", uploadCsv);
    $("show-test").addEventListener("change", () => { drawPoints(); writeUrl(); });
    $("play").addEventListener("click", () => setPlaying(!playing));
    $("one-step").addEventListener("click", () => { setPlaying(false); stepOnce(1); });
    $("reset").addEventListener("click", reset);
    $("overlay-close").addEventListener("click", closeOverlay);
    $("overlay").addEventListener("click", (e) => { if (e.target === $("overlay")) closeOverlay(); });
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape") { closeOverlay(); return; }
      const tag = (e.target && e.target.tagName) || "";
      if (["INPUT", "SELECT", "TEXTAREA", "BUTTON"].includes(tag) || !$("overlay").hidden) return;
      if (e.key === " " && !hidden.includes("run")) { e.preventDefault(); setPlaying(!playing); }
      else if (e.key === "r" && !hidden.includes("run")) reset();
    });
    window.addEventListener("hashchange", () => {
      if (location.hash === State.serialize(config)) return;
      const parsed = State.parse(location.hash);
      applyFlags(parsed);
      change(parsed.config, true);
    });
    $("error-close").addEventListener("click", () => showError(""));
    setupPlot();
    setupNet();
  }

  function drawPreview(canvas, info) {
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#f7f7f7";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    const pts = info.preview;
    if (info.inputs === 1) {
      ctx.strokeStyle = "#0877bd";
      ctx.fillStyle = "#0877bd";
      for (const [x, t] of pts) {
        ctx.fillRect((x + 6) / 12 * canvas.width - 1, (1 - (t + 1.5) / 3) * canvas.height - 1, 2, 2);
      }
      return;
    }
    for (const [x, y, label] of pts) {
      ctx.fillStyle = label > 0.5 ? "#0877bd" : "#f59322";
      ctx.beginPath();
      ctx.arc((x + 6) / 12 * canvas.width, (1 - (y + 6) / 12) * canvas.height, 1.6, 0, 2 * Math.PI);
      ctx.fill();
    }
  }

  function applyFlags(parsed) {
    hidden = [];
    hideFlags = parsed.hide.slice();
    for (const name of parsed.hide) {
      for (const n of (HIDE_GROUPS[name] || [name])) if (!hidden.includes(n)) hidden.push(n);
    }
    for (const el of document.querySelectorAll("[data-control]")) {
      el.classList.toggle("pg-hidden", hidden.includes(el.dataset.control));
    }
    $("show-test").checked = parsed.showTest;
  }

  /** Show the config in the controls. */
  function showConfig() {
    selectValue($("lr"), config.lr);
    selectValue($("l2"), config.l2, (v) => (Number(v) === 0 ? "none" : String(v)));
    selectValue($("keep_prob"), config.keep_prob);
    $("optimizer").value = config.optimizer;
    $("problem").value = config.problem;
    $("train_fraction").value = String(Math.round(config.train_fraction * 100));
    $("train_fraction-value").textContent = Math.round(config.train_fraction * 100) + "%";
    $("noise").value = String(config.noise);
    $("noise-value").textContent = String(config.noise);
    const batch = $("batch_size");
    if (config.batch_size > Number(batch.max)) batch.max = String(config.batch_size);
    batch.value = String(config.batch_size);
    $("batch_size-value").textContent = String(config.batch_size);
    $("seed").value = String(config.seed);
    for (const tile of document.querySelectorAll(".pg-dataset")) {
      const on = tile.dataset.dataset === config.dataset;
      tile.classList.toggle("pg-selected", on);
      tile.setAttribute("aria-checked", on ? "true" : "false");
    }
    const n = config.layers.length;
    $("layers-label").textContent = n + " hidden layer" + (n === 1 ? "" : "s");
    $("add-layer").disabled = n >= catalogue.limits.layers;
    $("remove-layer").disabled = n === 0;
    const box = $("layer-controls");
    box.innerHTML = "";
    config.layers.forEach((units, i) => {
      const card = document.createElement("div");
      card.className = "pg-layer";
      card.dataset.layer = String(i + 1);
      const minus = document.createElement("button");
      minus.type = "button"; minus.className = "pg-small pg-units-minus"; minus.textContent = "\u2212";
      minus.title = "one unit less"; minus.disabled = units <= 1;
      minus.addEventListener("click", () => setUnits(i, units - 1));
      const plus = document.createElement("button");
      plus.type = "button"; plus.className = "pg-small pg-units-plus"; plus.textContent = "+";
      plus.title = "one unit more"; plus.disabled = units >= catalogue.limits.units;
      plus.addEventListener("click", () => setUnits(i, units + 1));
      const count = document.createElement("span");
      count.className = "pg-units"; count.textContent = units + (units === 1 ? " unit" : " units");
      const act = document.createElement("select");
      act.className = "pg-activation"; act.setAttribute("aria-label", "activation of hidden layer " + (i + 1));
      for (const a of catalogue.activations) {
        const opt = document.createElement("option");
        opt.value = a; opt.textContent = ACTIVATION_TITLES[a] || a;
        act.appendChild(opt);
      }
      act.value = config.activations[i];
      act.addEventListener("change", () => {
        const acts = config.activations.slice(); acts[i] = act.value;
        change({activations: acts});
      });
      const head = document.createElement("div");
      head.className = "pg-layer-title"; head.textContent = "layer " + (i + 1);
      const row = document.createElement("div");
      row.className = "pg-layer-row";
      row.append(minus, count, plus);
      card.append(head, row, act);
      box.appendChild(card);
    });
  }

  function setUnits(i, units) {
    const layers = config.layers.slice();
    layers[i] = units;
    change({layers});
  }

  // ------------------------------------------------------------------ the session
  async function start() {
    try {
      catalogue = await api("/api/datasets");
    } catch (e) {
      showError(e.message);
      return;
    }
    buildControls();
    const parsed = State.parse(location.hash);
    applyFlags(parsed);
    try {
      receive(await api("/api/sessions", {config: parsed.config}), true);
    } catch (e) {
      showError("The link's settings were refused: " + e.message + ". Starting with the defaults.");
      try { receive(await api("/api/sessions", {config: {}}), true); } catch (e2) { showError(e2.message); }
    }
    document.body.dataset.ready = "true";
  }

  /** A change of the config: the server checks it, the run starts again (a link then reproduces it). */
  async function change(fields, fromUrl) {
    setPlaying(false);
    try {
      receive(await withSession((id) => api(sessionPath("config"), {config: fields})), true);
      showError("");
    } catch (e) {
      showError(e.message);
      if (fromUrl) writeUrl();
      showConfig();
    }
  }

  async function reset() {
    setPlaying(false);
    try {
      receive(await withSession(() => api(sessionPath("reset"), {})), true);
      showError("");
    } catch (e) { showError(e.message); }
  }

  /** Run a request of the session; a vanished session (404) is made again from the config. */
  async function withSession(request) {
    try {
      return await request(sessionId);
    } catch (e) {
      if (e.status !== 404 || !config) throw e;
      const csv = config.dataset === "csv";  // a file does not live in the page: it has to come again
      receive(await api("/api/sessions", {config: csv ? {} : config}), true);
      showError(csv ? "The session had expired: a new one started with the default data set; upload the CSV " +
                      "file again." : "The session had expired: a new one started with the same settings.");
      return await request(sessionId);
    }
  }

  async function uploadCsv(e) {
    const file = e.target.files && e.target.files[0];
    const box = $("csv-error");
    box.hidden = true;
    if (!file) return;
    setPlaying(false);
    try {
      if (file.size > catalogue.limits.csv_bytes) {
        throw new Error("the file is " + file.size.toLocaleString("en") + " bytes; the limit is " +
                        catalogue.limits.csv_bytes.toLocaleString("en") + " bytes");
      }
      const text = await file.text();
      receive(await withSession(() => api(sessionPath("csv"), text, true)), true);
      box.textContent = "";
      showError("");
    } catch (err) {
      box.textContent = file.name + ": " + err.message;
      box.hidden = false;
    } finally {
      e.target.value = "";
    }
  }

  /** Take a snapshot (full: with config, points and history) and redraw. */
  function receive(s, full) {
    if (full) {
      sessionId = s.session;
      config = s.config;
      problem = s.problem;
      points = {train: s.train, test: s.test};
      lossHistory = s.history.slice();
      const targets = s.train.concat(s.test).map((p) => p[p.length - 1]);
      targetRange = problem === "classification" ? [0, 1] : [Math.min(...targets), Math.max(...targets)];
      selected = {split: "train", index: 0};
      probe = s.train.length ? s.train[0].slice(0, -1) : null;
      showConfig();
      writeUrl();
    } else {
      frames += 1;
      const last = lossHistory[lossHistory.length - 1];
      if (!last || last[0] !== s.loss.step) lossHistory.push([s.loss.step, s.loss.train, s.loss.test]);
      if (lossHistory.length > 1000) {
        lossHistory = lossHistory.filter((_, i) => i % 2 === 0 || i === lossHistory.length - 1);
      }
    }
    received += 1;
    snap = Object.assign({}, snap && !full ? snap : {}, s);
    if (full && !s.values) delete snap.values;  // the new weights' values come with the next answer
    redraw(s);
    if (full) {
      drawPoints();
      refreshValues();
    }
  }

  // ------------------------------------------------------------------ training
  function stepsPerFrame() {
    const n = points.train.length || 1;
    return Math.max(1, Math.min(MAX_STEPS_PER_FRAME, Math.ceil(n / Math.min(config.batch_size, n))));
  }

  function setPlaying(on) {
    playing = on && !(snap && snap.error);
    const button = $("play");
    button.classList.toggle("pg-playing", playing);
    button.innerHTML = playing ? ICONS.pause : ICONS.play;
    button.setAttribute("aria-label", playing ? "pause" : "run");
    if (playing && !looping) loop();
  }

  /** Train `count` steps: queued after any step request still in flight, so no click is lost. */
  function stepOnce(count) {
    const done = steps.then(async () => {
      try {
        const body = {steps: count};
        if (probe) body.probe = probe;
        receive(await withSession(() => api(sessionPath("step"), body)), false);
        if (snap.error) setPlaying(false);
      } catch (e) {
        showError(e.message);
        setPlaying(false);
      }
    });
    steps = done;
    return done;
  }

  async function loop() {
    looping = true;
    try {
      while (playing) {
        await stepOnce(stepsPerFrame());
        await new Promise((resolve) => requestAnimationFrame(() => resolve()));
      }
    } finally {
      looping = false;
    }
  }

  /** The units' values for the probe (while playing, each step's answer brings them). */
  async function refreshValues() {
    if (valuesInFlight || !probe || playing || !sessionId) return;
    valuesInFlight = true;
    const asked = probe, at = received;
    try {
      const res = await api(sessionPath("values"), {x: asked});
      if (at === received) {  // no newer snapshot meanwhile: these values belong to the weights shown
        snap.values = res.values;
        drawNet();
      }
    } catch (e) { /* a hover is not worth an error banner */ } finally {
      valuesInFlight = false;
      if (probe !== asked || at !== received) refreshValues();  // the pointer moved on, or the weights did
    }
  }

  // ------------------------------------------------------------------ drawing
  function fmt(v, digits) {
    if (v === null || v === undefined) return "\u2013";
    if (!Number.isFinite(v)) return String(v);
    return v.toFixed(digits === undefined ? 3 : digits);
  }
  function num(v) {
    if (v === null || v === undefined) return "\u2013";
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e4) ? v.toExponential(3) : Number(v.toPrecision(5)).toString();
  }

  function redraw(s) {
    $("epoch").textContent = String(s.epoch);
    $("step-count").textContent = String(s.step);
    $("test-loss").textContent = fmt(s.loss.test);
    $("train-loss").textContent = fmt(s.loss.train);
    drawNet();
    drawLossChart();
    drawOutput(s.output);
    drawGradients(s.grad_norm, s.grad_ratio, s.warning);
    if (s.error) showError(s.error);
  }

  function drawNet() {
    const svg = $("net");
    if (typeof window.PBNet === "undefined") { $("net-missing").hidden = false; return; }
    const net = Object.assign({}, snap.net);
    if (snap.values) net.values = snap.values;
    const shape = [net.sizes.join("-"), net.activations.join(","),
                   (net.dropout || []).map((d) => (d ? d.keep_prob : 0)).join(","), net.values ? "v" : ""].join("|");
    if (!view || shape !== viewShape) {
      svg.innerHTML = "";
      view = window.PBNet.render(svg, net, {
        width: 1000, height: 540, onHover: describe,
        edgeId: (l, i, j) => "W" + l + "." + i + "." + j,  // every edge a number: hoverable and focusable
      });
      viewShape = shape;
    } else {
      view.update(net);
    }
  }

  /** The hover line under the drawing for what the pointer or the keyboard focus is on (the drawing's onHover). */
  function describe(info) {
    if (!info || !snap) return;
    const target = info.el;
    const edge = target.closest && target.closest(".pb-edge"), unit = target.closest && target.closest(".pb-unit");
    const box = $("hover-info");
    if (edge) {
      const l = Number(edge.dataset.layer), i = Number(edge.dataset.from), j = Number(edge.dataset.to);
      box.textContent = "weight W" + l + "[" + (i + 1) + "," + (j + 1) + "] from " + unitName(l - 1, i) + " to " +
                        unitName(l, j) + " = " + num(snap.net.W[l - 1][i][j]) + ". Click it (or Enter) for its " +
                        "chain rule, every number plugged in, on " + pointName(selected) + ".";
    } else if (unit) {
      const c = Number(unit.dataset.col), i = Number(unit.dataset.unit);
      let text = unitName(c, i);
      if (snap.values && snap.values[c]) {
        const what = c === 0 ? " = " : c === snap.net.sizes.length - 1 ? " \u0177 = " : " output a = ";
        text += what + num(snap.values[c][i]) + " for the input (" +
                snap.values[0].map((v) => num(v)).join(", ") + ")";
      }
      if (c > 0 && snap.net.b[c - 1]) text += "; bias b = " + num(snap.net.b[c - 1][i]);
      if (c > 0) text += "; activation " + snap.net.activations[c - 1];
      box.textContent = text;
    }
  }

  /** The pointer over any part of a unit or an edge (the drawing's onHover covers its numbers and the focus);
   *  an edge's click or Enter: the step picture of the selected point, at that layer's backward phase. */
  function setupNet() {
    const svg = $("net");
    svg.addEventListener("mouseover", (e) => describe({el: e.target}));
    const open = (target) => {
      const edge = target && target.closest && target.closest(".pb-edge");
      if (edge) openStep(selected.split, selected.index, "backward-" + edge.dataset.layer);
    };
    svg.addEventListener("click", (e) => open(e.target));
    svg.addEventListener("keydown", (e) => {
      if (e.key === "Enter") { open(e.target); e.preventDefault(); }
    });
  }

  function pointName(point) {
    const p = points[point.split][point.index];
    return point.split + " point " + point.index + (p ? " (" + p.slice(0, -1).map((v) => num(v)).join(", ") +
           ") → " + num(p[p.length - 1]) : "");
  }

  function unitName(col, i) {
    if (col === 0) return (snap.columns && snap.columns[i]) || ("x" + (i + 1));
    if (col === snap.net.sizes.length - 1) return "the output";
    return "unit " + (i + 1) + " of layer " + col;
  }

  function colour(t) {  // t in [0, 1]: orange (0) - white (0.5) - blue (1)
    const u = Math.max(0, Math.min(1, t));
    const [a, b, k] = u < 0.5 ? [ORANGE, WHITE, u / 0.5] : [WHITE, BLUE, (u - 0.5) / 0.5];
    return [0, 1, 2].map((c) => Math.round(a[c] + (b[c] - a[c]) * k));
  }
  function scaled(v) {
    if (problem === "classification") return v;
    const [lo, hi] = targetRange;
    return hi > lo ? (v - lo) / (hi - lo) : 0.5;
  }

  let plotTransform = null;  // data -> plot coordinates
  function setupPlot() {
    const svg = $("points");
    svg.addEventListener("click", (e) => {
      const dot = e.target.closest && e.target.closest(".pg-point");
      if (!dot) return;
      choose(dot.dataset.split, Number(dot.dataset.index));
      openStep(selected.split, selected.index);
    });
    svg.addEventListener("keydown", (e) => {  // the keyboard's way to the points: one tab stop, arrows, Enter
      const shown = [...svg.querySelectorAll(".pg-point")];
      if (!shown.length) return;
      const at = shown.findIndex((c) => c.dataset.split === selected.split && Number(c.dataset.index) === selected.index);
      const move = {ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1}[e.key];
      if (move) {
        const next = shown[(Math.max(at, 0) + move + shown.length) % shown.length];
        choose(next.dataset.split, Number(next.dataset.index));
        $("hover-info").textContent = pointName(selected) + ": Enter opens its step picture; the units show its values.";
        e.preventDefault();
      } else if (e.key === "Enter") {
        openStep(selected.split, selected.index);
        e.preventDefault();
      }
    });
    svg.addEventListener("mousemove", (e) => {
      if (!plotTransform || !config) return;
      const box = svg.getBoundingClientRect();
      const px = (e.clientX - box.left) / box.width * PLOT, py = (e.clientY - box.top) / box.height * PLOT;
      const x = plotTransform.invX(px);
      probe = plotTransform.inputs === 1 ? [x] : [x, plotTransform.invY(py)];
      if (!playing) refreshValues();
    });
  }

  function drawOutput(out) {
    const canvas = $("heatmap");
    const ctx = canvas.getContext("2d");
    const [x0, x1, y0, y1] = out.domain;
    if (out.kind === "plane") {
      const n = out.size;
      if (canvas.width !== n) { canvas.width = n; canvas.height = n; }
      const img = ctx.createImageData(n, n);
      for (let k = 0; k < n * n; k++) {
        const v = out.values[k];
        const [r, g, b] = v === null ? [200, 0, 0] : colour(scaled(v));
        img.data[4 * k] = r; img.data[4 * k + 1] = g; img.data[4 * k + 2] = b; img.data[4 * k + 3] = 255;
      }
      ctx.putImageData(img, 0, 0);
      canvas.classList.remove("pg-line");
    } else {
      if (canvas.width !== PLOT) { canvas.width = PLOT; canvas.height = PLOT; }
      ctx.fillStyle = "#f7f7f7";
      ctx.fillRect(0, 0, PLOT, PLOT);
      ctx.strokeStyle = "#0877bd";
      ctx.lineWidth = 2.5;
      ctx.beginPath();
      out.x.forEach((x, k) => {
        const y = out.y[k] === null ? y0 : out.y[k];
        const px = (x - x0) / (x1 - x0) * PLOT, py = (1 - (y - y0) / (y1 - y0)) * PLOT;
        if (k === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
      });
      ctx.stroke();
      canvas.classList.add("pg-line");
    }
  }

  /** Select a point: the units show its values, an edge's click opens the step picture on it. */
  function choose(split, index) {
    selected = {split, index};
    probe = points[split][index].slice(0, -1);
    markSelected();
    refreshValues();
  }
  function markSelected() {
    for (const c of $("points").querySelectorAll(".pg-current")) c.classList.remove("pg-current");
    const dot = $("points").querySelector('.pg-' + selected.split + '[data-index="' + selected.index + '"]');
    if (dot) dot.classList.add("pg-current");
  }

  function drawPoints() {
    if (!snap) return;
    const svg = $("points");
    const [x0, x1, y0, y1] = snap.output.domain;
    const inputs = snap.net.sizes[0];
    plotTransform = {
      inputs,
      x: (x) => (x - x0) / (x1 - x0) * PLOT, y: (y) => (1 - (y - y0) / (y1 - y0)) * PLOT,
      invX: (px) => x0 + px / PLOT * (x1 - x0), invY: (py) => y1 - py / PLOT * (y1 - y0),
    };
    const ns = "http://www.w3.org/2000/svg";
    const frag = document.createDocumentFragment();
    const sets = $("show-test").checked ? ["train", "test"] : ["train"];
    for (const split of sets) {
      points[split].forEach((p, index) => {
        const c = document.createElementNS(ns, "circle");
        const t = p[p.length - 1];
        const yValue = inputs === 1 ? t : p[1];
        c.setAttribute("cx", plotTransform.x(p[0]).toFixed(1));
        c.setAttribute("cy", plotTransform.y(yValue).toFixed(1));
        c.setAttribute("r", "3.5");
        const [r, g, b] = inputs === 1 ? [60, 60, 60] : colour(scaled(t));
        c.setAttribute("fill", "rgb(" + r + "," + g + "," + b + ")");
        c.setAttribute("class", "pg-point pg-" + split);
        c.dataset.split = split;
        c.dataset.index = String(index);
        const title = document.createElementNS(ns, "title");
        title.textContent = split + " point " + index + ": (" + p.slice(0, -1).map((v) => num(v)).join(", ") +
                            ") \u2192 " + num(t) + " \u2014 click for the step picture";
        c.appendChild(title);
        frag.appendChild(c);
      });
    }
    svg.innerHTML = "";
    svg.appendChild(frag);
    markSelected();
  }

  function drawLossChart() {
    const canvas = $("loss-chart");
    const ctx = canvas.getContext("2d");
    const w = canvas.width, h = canvas.height;
    ctx.clearRect(0, 0, w, h);
    const finite = lossHistory.flatMap((r) => [r[1], r[2]]).filter((v) => v !== null && Number.isFinite(v));
    if (!lossHistory.length || !finite.length) return;
    const top = Math.max(...finite) || 1;
    const first = lossHistory[0][0], last = Math.max(lossHistory[lossHistory.length - 1][0], first + 1);
    const line = (k, style, width) => {
      ctx.strokeStyle = style;
      ctx.lineWidth = width;
      ctx.beginPath();
      let started = false;
      for (const r of lossHistory) {
        if (r[k] === null) continue;
        const x = (r[0] - first) / (last - first) * (w - 2) + 1, y = h - 2 - r[k] / top * (h - 6);
        if (started) ctx.lineTo(x, y); else { ctx.moveTo(x, y); started = true; }
      }
      ctx.stroke();
    };
    line(1, "#999", 1.5);   // training loss: grey, as TensorFlow Playground
    line(2, "#222", 2);     // test loss: black
  }

  function drawGradients(norms, ratio, warning) {
    const box = $("grad-bars");
    const lo = -8, hi = 2;  // log10 range of the bars
    if (box.childElementCount !== norms.length) {
      box.innerHTML = "";
      norms.forEach((_, d) => {
        const row = document.createElement("div");
        row.className = "pg-grad-row";
        row.innerHTML = '<span class="pg-grad-name"></span><span class="pg-grad-track"><span class="pg-grad-bar">' +
                        '</span></span><span class="pg-grad-value"></span>';
        row.querySelector(".pg-grad-name").textContent = d === norms.length - 1 ? "output" : "layer " + (d + 1);
        box.appendChild(row);
      });
    }
    norms.forEach((g, d) => {
      const row = box.children[d];
      const v = g === null ? null : Math.log10(Math.max(g, 1e-12));
      const width = v === null ? 100 : Math.max(0, Math.min(1, (v - lo) / (hi - lo))) * 100;
      const bar = row.querySelector(".pg-grad-bar");
      bar.style.width = width.toFixed(1) + "%";
      bar.classList.toggle("pg-bad", g === null);
      row.querySelector(".pg-grad-value").textContent = g === null ? "NaN" : g.toExponential(2);
      row.title = "|dL/dW| of " + (d === norms.length - 1 ? "the output layer" : "hidden layer " + (d + 1)) +
                  " (W and b), averaged over the last steps; the bar is on a log scale from 1e-8 to 100";
    });
    $("grad-ratio").textContent = ratio === null || ratio === undefined ? "" :
      "first layer / output layer: " + ratio.toExponential(2) + " (fit's GradientFlowWarning: below 1e-4 or above 1e4)";
    const warn = $("grad-warning");
    warn.hidden = !warning;
    warn.textContent = warning ? warning.message : "";
    warn.dataset.kind = warning ? warning.kind : "";
  }

  // ------------------------------------------------------------------ the step picture
  /** Open the step picture of one point (at `phase`, e.g. "backward-2", when given). */
  async function openStep(split, index, phase) {
    setPlaying(false);
    try {
      const res = await withSession(() => api(sessionPath("explain"), {split, index}));
      $("overlay-title").textContent = "One step of backpropagation on " + pointName({split, index}) +
        ", with the weights of step " + snap.step + " (plain SGD, lr " + config.lr + ")";
      $("overlay-newtab").href = "/explain/" + encodeURIComponent(sessionId) + "?split=" + split + "&index=" + index +
                                 (phase ? "#" + phase : "");
      const frame = $("step-frame");
      frame.onload = () => {  // the step picture's own API (PBStep), where it has one
        const step = frame.contentWindow && frame.contentWindow.PBStep;
        if (phase && step && step.setPhase) step.setPhase(phase);
      };
      frame.srcdoc = res.html;
      $("overlay").hidden = false;
      document.body.classList.add("pg-overlay-open");
      $("overlay-close").focus();
    } catch (e) { showError(e.message); }
  }
  function closeOverlay() {
    $("overlay").hidden = true;
    document.body.classList.remove("pg-overlay-open");
  }

  window.PBPlayground = {State, get snapshot() { return snap; }, get config() { return config; },
                         get playing() { return playing; }, get frames() { return frames; }, setPlaying};
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
