/* pybackprop step picture: the phases of one SGD step on the drawing of network.js.
 * Reads the payload of pybackprop.visual.trace_payload from the JSON script element #pb-data.
 * Phases: forward-1..L, loss, backward-L..1, update; the phase is the URL hash. */
(function () {
  "use strict";
  var t0 = window.performance ? performance.now() : 0;
  var P = JSON.parse(document.getElementById("pb-data").textContent);
  var N = P.numbers, L = P.net.sizes.length - 1, sizes = P.net.sizes, phases = P.phases;
  var svg = document.getElementById("pb-svg"), tip = document.getElementById("pb-tip");
  var explain = document.getElementById("pb-explain"), legend = document.getElementById("pb-legend");
  var nav = document.getElementById("pb-phases");
  var sub = PBNet.sub;
  var WIDTH = 1360, HEIGHT = 700, LOSSBOX = 190;
  var float32 = P.dtype === "float32";

  function num(id) { return N[id] || null; }
  function text(id) { var r = N[id]; return r ? r.t : "—"; }
  function val(id) { var r = N[id]; return r ? r.v : null; }
  function esc(s) {
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }
  /** The full value as the model stores it (shortest decimal of its float32 or float64). */
  function full(r) {
    var v = r.v;
    if (v === null || v === undefined) return r.t === "—" || r.t === "Jacobian" ? "not computed" : r.t;  // ∞
    if (float32) {
      for (var p = 1; p <= 9; p++) {
        var s = v.toPrecision(p);
        if (Math.fround(+s) === Math.fround(v)) return String(+s).replace("-", "−");
      }
    }
    return String(v).replace("-", "−");
  }

  // ------------------------------------------------------------------ phases
  function parsePhase(name) {
    var m = /^(forward|backward)-(\d+)$/.exec(name);
    if (m) return {kind: m[1], k: +m[2]};
    return {kind: name, k: null};
  }
  var idx = 0;

  // ------------------------------------------------------------------ labels on the drawing
  // Each label: {id, text, cls, line, ph: "f"|"b"|"u", k}
  var labelSpec = {};
  /** The numbers written at unit i of column c, one group per phase kind (f, b, u); a group with more
   *  rows than fit under the unit keeps its main number only, written beside the unit. */
  function unitLabels(c, i, room) {
    var groups = {f: [], b: [], u: []};
    function add(ph, id, name, k, row, dx, anchor) {
      if (!N[id] || (N[id].v === null && ph === "b" && id.charAt(0) !== "d")) return;
      groups[ph].push({id: id, text: name + " = " + text(id), cls: "pb-l" + ph, line: row, dx: dx || 0,
                       anchor: anchor, ph: ph, k: k});
    }
    var drop = c < L && P.layers[c].dropout, row = 0;
    if (c === 0) {
      add("f", "a0." + i, "x", 0, row++);
    } else {
      add("f", "z" + c + "." + i, "z", c, row++);
      add("f", "a" + c + "." + i, "a", c, row++);
      if (N["b" + c + "." + i]) add("f", "b" + c + "." + i, "b", c, row++);
    }
    if (drop) {  // the mask on this unit as an input of layer c+1, and the value layer c+1 sees
      add("f", "m" + (c + 1) + "." + i, "m", c + 1, row, -5, "end");  // side by side, whatever their lengths
      add("f", "ad" + (c + 1) + "." + i, c === 0 ? "x\u0303" : "a\u0303", c + 1, row++, 5, "start");
    }
    if (c === 0) {
      add("b", "dA0." + i, "dL/dx" + (P.layers[0].dropout ? "\u0303" : ""), 1, row++);
    } else {
      row = 0;
      if (N["dA" + c + "." + i] && N["dA" + c + "." + i].v !== null) add("b", "dA" + c + "." + i, "dL/da", c, row++);
      if (N["fp" + c + "." + i] && N["fp" + c + "." + i].v !== null) add("b", "fp" + c + "." + i, P.layers[c - 1].symbol + "\u2032", c, row++);
      add("b", "d" + c + "." + i, "δ", c, row++);
      if (N["db" + c + "." + i]) add("b", "db" + c + "." + i, "dL/db", c, row++);
      if (N["bn" + c + "." + i]) {
        groups.u.push({id: "bn" + c + "." + i, text: "b: " + text("b" + c + "." + i) + " → " + text("bn" + c + "." + i),
                       cls: "pb-lu", line: 0, ph: "u", k: c});
      }
    }
    var out = [], main = {f: c === 0 ? "a0." : "a" + c + ".", b: c === 0 ? "dA0." : "d" + c + ".", u: "bn" + c + "."};
    var rows = c === 0 ? row : 0;
    ["f", "b", "u"].forEach(function (ph) {
      var list = groups[ph];
      var need = c === 0 ? rows : list.reduce(function (m, s) { return Math.max(m, s.line + 1); }, 0);
      if (need <= room.lines) { out = out.concat(list); return; }
      list.forEach(function (s) {
        if (s.id.indexOf(main[ph]) === 0) {
          s.side = true; s.dx = 0; s.dy = c === 0 && ph === "b" ? 8 : (c === 0 ? -7 : 0);
          out.push(s);
        }
      });
    });
    return out;
  }
  function edgeLabels(l, i, j) {
    var w = "W" + l + "." + i + "." + j;
    if (!N[w]) return [];
    return [{id: w, text: text(w), cls: "pb-lf", ph: "f", k: l},
            {id: "dW" + l + "." + i + "." + j, text: text("dW" + l + "." + i + "." + j), cls: "pb-lb", ph: "b", k: l},
            {id: "Wn" + l + "." + i + "." + j, text: text(w) + "→" + text("Wn" + l + "." + i + "." + j), cls: "pb-lu", ph: "u", k: l}];
  }
  function remember(list) { list.forEach(function (s) { labelSpec[s.id] = s; }); return list; }

  function columnTitle(c) {
    if (c === 0) return ["input x", sizes[0] + (sizes[0] === 1 ? " feature" : " features")];
    var ly = P.layers[c - 1];
    return ["layer " + c + (c === L ? " (output)" : ""), ly.units + " " + ly.activation + (ly.bias ? ", bias" : ", no bias")];
  }

  // the output's numbers go beside its units when they do not fit under them: leave room for them
  var TOP = 76, BOTTOM = 30, outN = sizes[L];
  var outSpacing = Math.min(150, (HEIGHT - TOP - BOTTOM) / outN), outR = Math.min(19, outSpacing * 0.36);
  var outBeside = outN <= P.limits.wide && Math.floor((outSpacing - 2 * outR - 6) / 14) < 4;
  var view = PBNet.render(svg, P.net, {
    width: WIDTH, height: HEIGHT, margin: {left: 70, right: (outBeside ? 170 : 70) + LOSSBOX, top: TOP, bottom: BOTTOM},
    wide: P.limits.wide, columnTitle: columnTitle,
    unitLabels: function (c, i, room) { return remember(unitLabels(c, i, room)); },
    edgeLabels: function (l, i, j) { return remember(edgeLabels(l, i, j)); },
    unitId: function (c, i) { return "u" + c + "." + i; },
    edgeId: function (l, i, j) { return "e" + l + "." + i + "." + j; },
    cellId: function (l, r, c, blocks) { return (blocks ? "B" : "e") + l + "." + r + "." + c; },
    onHover: hover
  });

  // ------------------------------------------------------------------ the loss box
  var NS = svg.namespaceURI;
  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  var K = sizes[L];
  var outBox = view.columnBox(L);
  var bw = LOSSBOX - 10, bx = WIDTH - bw - 12;
  var shownOut = Math.min(K, 10);
  var bh = 80 + 26 * shownOut;
  var by = Math.max(60, HEIGHT / 2 - bh / 2 + 10);
  var gLoss = el("g", {"class": "pb-lossbox"}, svg);
  for (var o = 0; o < K && !view.isStrip(L); o++) {
    var up = view.unitPos(L, o);
    el("line", {"class": "pb-lossline", x1: up.x + up.r, y1: up.y, x2: bx, y2: by + 62 + 26 * Math.min(o, shownOut - 1)}, gLoss);
  }
  el("rect", {"class": "pb-lossframe", x: bx, y: by, width: bw, height: bh, rx: 10}, gLoss);
  var lt = el("text", {"class": "pb-losstitle", x: bx + 14, y: by + 24}, gLoss);
  lt.textContent = "loss L";
  var ln = el("text", {"class": "pb-lossname", x: bx + 14, y: by + 24 + 16}, gLoss);
  ln.textContent = P.loss;
  function lossText(id, label, x, y, cls) {
    var t = el("text", {"class": "pb-num pb-losstext " + (cls || ""), x: x, y: y, tabindex: "0", "data-id": id,
      "dominant-baseline": "central"}, gLoss);
    t.textContent = label + " = " + text(id);
    return t;
  }
  for (o = 0; o < shownOut; o++) {
    lossText("yh." + o, "ŷ" + sub(o + 1), bx + 14, by + 62 + 26 * o);
    lossText("y." + o, "y" + sub(o + 1), bx + 108, by + 62 + 26 * o, "pb-target");
  }
  lossText("L", "L", bx + 14, by + bh - 16, "pb-lossvalue");

  // ------------------------------------------------------------------ index of the shown numbers
  var byId = {};
  Array.prototype.forEach.call(svg.querySelectorAll("[data-id]"), function (e) {
    var id = e.getAttribute("data-id");
    (byId[id] = byId[id] || []).push(e);
  });

  // ------------------------------------------------------------------ resolving ids for a phase
  function phaseNow() { return parsePhase(phases[idx]); }
  function unitRecords(c, i, ph) {
    var ids;
    if (c === 0) {
      ids = ph.kind === "backward" && ph.k === 1 ? ["dA0." + i] : ["a0." + i, "m1." + i, "ad1." + i];
    } else if (ph.kind === "forward") {
      ids = c <= ph.k ? ["z" + c + "." + i, "a" + c + "." + i] : [];
    } else if (ph.kind === "loss") {
      ids = ["z" + c + "." + i, "a" + c + "." + i];
    } else if (ph.kind === "backward") {
      ids = c >= ph.k ? ["dA" + c + "." + i, "fp" + c + "." + i, "d" + c + "." + i] : ["a" + c + "." + i];
    } else {
      ids = N["bn" + c + "." + i] ? ["bn" + c + "." + i] : ["a" + c + "." + i];
    }
    return ids.map(num).filter(Boolean);
  }
  function weightKey(l, ph) {
    if (ph.kind === "backward" && l >= ph.k) return "dW";
    if (ph.kind === "update") return "Wn";
    return "W";
  }
  function records(id) {
    var ph = phaseNow(), m;
    if ((m = /^u(\d+)\.(\d+)$/.exec(id))) return unitRecords(+m[1], +m[2], ph);
    if ((m = /^e(\d+)\.(\d+)\.(\d+)$/.exec(id))) return [num(weightKey(+m[1], ph) + m[1] + "." + m[2] + "." + m[3])].filter(Boolean);
    if ((m = /^B(\d+)\.(\d+)\.(\d+)$/.exec(id))) return [num(weightKey(+m[1], ph) + "b" + m[1] + "." + m[2] + "." + m[3])].filter(Boolean);
    return [num(id)].filter(Boolean);
  }
  /** What to light for a source id of a formula. */
  function refsOf(id) {
    var m, out = (byId[id] || []).map(function (e) { return {el: e}; });
    if ((m = /^(a|z|d|dA|fp|b|db|bn)(\d+)\.(\d+|\*)$/.exec(id))) {
      out.push(m[3] === "*" ? {column: +m[2]} : {unit: [+m[2], +m[3]]});
    } else if ((m = /^(m|ad)(\d+)\.(\d+|\*)$/.exec(id))) {
      out.push(m[3] === "*" ? {column: +m[2] - 1} : {unit: [+m[2] - 1, +m[3]]});
    } else if ((m = /^(W|dW|Wn)(\d+)\.(\d+|\*)\.(\d+|\*)$/.exec(id))) {
      var l = +m[2];
      if (m[3] === "*" && m[4] === "*") out.push({layer: l});
      else if (m[3] === "*") out.push({edgesTo: [l, +m[4]]});
      else if (m[4] === "*") out.push({edgesFrom: [l, +m[3]]});
      else out.push({edge: [l, +m[3], +m[4]]});
    } else if ((m = /^(Wb|dWb|Wnb)(\d+)\.(\d+)\.(\d+)$/.exec(id))) {
      (byId["B" + m[2] + "." + m[3] + "." + m[4]] || []).forEach(function (e) { out.push({el: e}); });
    } else if ((m = /^yh\.(\d+|\*)$/.exec(id))) {
      out.push(m[1] === "*" ? {column: L} : {unit: [L, +m[1]]});
    }
    return out;
  }

  // ------------------------------------------------------------------ tooltip
  function hover(info) {
    if (!info) { tip.hidden = true; view.clearHighlight(); return; }
    var recs = records(info.id);
    if (!recs.length) { tip.hidden = true; view.clearHighlight(); return; }
    var html = "";
    var refs = [{el: info.el}];
    recs.forEach(function (r) {
      var parts = r.f.split(" = ");
      html += '<div class="pb-tip-rec"><div class="pb-tip-f"><b>' + esc(parts[0]) + "</b>" +
        (parts.length > 1 ? " = " + esc(parts.slice(1).join(" = ")) : "") + "</div>" +
        '<div class="pb-tip-v">full value: <code>' + esc(full(r)) + "</code></div></div>";
      r.src.forEach(function (s) { refs = refs.concat(refsOf(s)); });
    });
    if (recs.some(function (r) { return r.src.length; })) html += '<div class="pb-tip-note">highlighted: what it was computed from</div>';
    tip.innerHTML = html;
    tip.hidden = false;
    view.highlight(refs);
    var box = info.el.getBoundingClientRect(), tw = tip.offsetWidth, thh = tip.offsetHeight;
    var x = box.right + 14, y = box.top - 6;
    if (x + tw > window.innerWidth - 8) x = Math.max(8, box.left - tw - 14);
    if (y + thh > window.innerHeight - 8) y = Math.max(8, window.innerHeight - thh - 8);
    tip.style.left = (x + window.scrollX) + "px";
    tip.style.top = (y + window.scrollY) + "px";
  }

  // ------------------------------------------------------------------ drawing a phase
  function columnValues(ph) {
    var vals = [];
    for (var c = 0; c <= L; c++) {
      var row = [];
      for (var i = 0; i < sizes[c]; i++) {
        var id = null;
        if (ph.kind === "forward" || ph.kind === "loss") {
          if (c === 0) id = "a0." + i;
          else if (ph.kind === "loss" || c <= ph.k) id = "a" + c + "." + i;
        } else if (ph.kind === "backward") {
          if (c === 0 && ph.k === 1) id = "dA0." + i;
          else if (c > 0 && c >= ph.k) id = "d" + c + "." + i;
        } else if (c === 0) id = "a0." + i;
        row.push(id ? val(id) : null);
      }
      vals.push(row);
    }
    return vals;
  }
  function labelVisible(s, ph) {
    if (s.ph === "f") {
      if (s.k === 0) return true;
      if (ph.kind === "forward") return s.k <= ph.k;
      if (ph.kind === "loss") return true;
      if (ph.kind === "backward") {  // the activations, and the input of this layer as it saw it (dL/dW = ã · δ)
        if (/^(ad|m)\d/.test(s.id)) return s.k === ph.k;
        return s.k < ph.k && s.id.charAt(0) === "a";
      }
      return false;
    }
    if (s.ph === "b") return ph.kind === "backward" && s.k >= ph.k;
    return ph.kind === "update";
  }
  function dimLayer(l, ph) {
    if (ph.kind === "forward") return l > ph.k;
    if (ph.kind === "backward") return l < ph.k;
    return false;
  }

  var buttons = [];
  function describe(ph) {
    var ly, s;
    if (ph.kind === "forward") {
      ly = P.layers[ph.k - 1];
      var input = (ph.k === 1 ? "x" : "a") + (ly.dropout ? "\u0303" : "") + (ph.k === 1 ? "" : sub(ph.k - 1));
      s = "<b>Forward, layer " + ph.k + " of " + L + "</b> (" + ly.units + " " + esc(ly.activation) + "): each unit sums its inputs times the weights, z" +
        sub(ph.k) + " = " + input + " · W" + sub(ph.k) + (ly.bias ? " + b" + sub(ph.k) : "") +
        ", then a" + sub(ph.k) + " = " + esc(ly.activation) + "(z" + sub(ph.k) + "). Edges show the weights W.";
      if (ly.dropout) {
        var d = ly.dropout;
        s += " <span class=\"pb-drop-note\">Dropout on its input: each unit kept with p = " + d.keep_prob +
          " (mask m; dropped units greyed pass nothing), " + (d.scaling === "inverted" ?
            "kept ones scaled by 1/p = " + (+d.scale).toPrecision(4).replace(/\.?0+$/, "") + " (inverted dropout)." :
            "no scaling while training (classic dropout: × p at inference).") + "</span>";
      }
    } else if (ph.kind === "loss") {
      s = "<b>Loss</b> (" + esc(P.loss) + "): the output ŷ = a" + sub(L) + " against the target y gives L = " + esc(text("L")) +
        (P.layers[L - 1].fused ? "; " + esc(P.layers[L - 1].activation) + " and the loss are computed together (fused), so δ" + sub(L) + " comes straight from them." : ".");
    } else if (ph.kind === "backward") {
      ly = P.layers[ph.k - 1];
      var first = ph.k === L;
      s = "<b>Backward, layer " + ph.k + "</b>: " + (first ? (ly.fused ? "δ" + sub(L) + " = dL/dz comes from the fused loss" :
        "dL/da from the loss") : "dL/da" + sub(ph.k) + " = Σ δ" + sub(ph.k + 1) + " · W" + sub(ph.k + 1) + ", what layer " + (ph.k + 1) + " sends back along the edges") +
        (ly.fused ? "" : "; δ" + sub(ph.k) + " = dL/da · " + esc(ly.symbol) + "′(z)" + (ly.activation === "softmax" ? " through softmax's Jacobian" : "")) +
        "; each edge gets dL/dW = (its input) · δ of its unit" + (ph.k === 1 ? "; the inputs get dL/dx" : "") + ". Edges show the gradient dL/dW.";
    } else {
      s = "<b>Update</b> (SGD, η = " + P.lr + "): every weight moves against its gradient, W′ = W − η · dL/dW" +
        (P.layers.some(function (x) { return x.bias; }) ? ", and every bias b′ = b − η · dL/db" : "") + ". Edges show the new weights (old → new).";
    }
    return s;
  }
  function drawLegend(ph) {
    var what = ph.kind === "backward" ? "the gradient dL/dW" : ph.kind === "update" ? "the new weight W′" : "the weight W";
    var fill = ph.kind === "backward" ? "δ = dL/dz" : ph.kind === "update" ? "—" : "the activation a";
    legend.innerHTML =
      '<span class="pb-key"><svg width="46" height="14" aria-hidden="true"><line x1="2" y1="7" x2="44" y2="7" stroke="rgb(' + PBNet.colors.pos + ')" stroke-width="4"/></svg> positive</span>' +
      '<span class="pb-key"><svg width="46" height="14" aria-hidden="true"><line x1="2" y1="7" x2="44" y2="7" stroke="rgb(' + PBNet.colors.neg + ')" stroke-width="4"/></svg> negative</span>' +
      '<span class="pb-key"><svg width="46" height="14" aria-hidden="true"><line x1="2" y1="4" x2="44" y2="4" stroke="#555" stroke-width="1"/><line x1="2" y1="11" x2="44" y2="11" stroke="#555" stroke-width="5"/></svg> edge colour = sign, width = |value| of ' + what + ' (relative to the largest in its layer)</span>' +
      (fill !== "—" ? '<span class="pb-key"><span class="pb-swatch" style="background:' + PBNet.heat(-1, 1) + '"></span><span class="pb-swatch" style="background:' + PBNet.heat(1, 1) + '"></span> unit fill: ' + fill + '</span>' : "") +
      (P.layers.some(function (x) { return x.dropout; }) ? '<span class="pb-key"><span class="pb-swatch pb-swatch-drop"></span> dropped by dropout</span>' : "") +
      (P.layers.some(function (x) { return !x.full; }) ? '<span class="pb-key">large matrices: heat maps of block means (hover a cell)</span>' : "");
  }

  function setPhase(i, fromHash) {
    idx = Math.max(0, Math.min(phases.length - 1, i));
    var name = phases[idx], ph = parsePhase(name);
    svg.setAttribute("data-phase", name);
    document.body.setAttribute("data-phase", name);
    buttons.forEach(function (b, k) {
      b.classList.toggle("pb-current", k === idx);
      b.setAttribute("aria-current", k === idx ? "step" : "false");
    });
    prev.disabled = idx === 0;
    next.disabled = idx === phases.length - 1;
    explain.innerHTML = describe(ph);
    drawLegend(ph);
    var edgeValues = [];
    for (var l = 1; l <= L; l++) {
      var key = weightKey(l, ph);
      edgeValues.push(key === "dW" ? P.edges.dW[l - 1] : key === "Wn" ? P.edges.W_new[l - 1] : null);
    }
    var net = Object.assign({}, P.net, {values: columnValues(ph)});
    view.update(net, {edgeValues: edgeValues, showValues: false});
    for (var id in byId) {
      var s = labelSpec[id];
      if (!s) continue;
      var on = labelVisible(s, ph);
      byId[id].forEach(function (e) { e.classList.toggle("pb-off", !on); if (on) e.removeAttribute("aria-hidden"); else e.setAttribute("aria-hidden", "true"); });
    }
    Array.prototype.forEach.call(svg.querySelectorAll(".pb-layer, .pb-matrix, .pb-bundle"), function (g) {
      g.classList.toggle("pb-dim", dimLayer(+g.getAttribute("data-layer"), ph));
    });
    gLoss.classList.toggle("pb-pending", ph.kind === "forward");
    tip.hidden = true;
    view.clearHighlight();
    view.refresh();  // the number under the pointer or focus, as this phase shows it
    if (!fromHash) {
      try {
        if (location.hash.slice(1) !== name) location.hash = name;
      } catch (e) { /* a document without a URL of its own (srcdoc) */ }
    }
  }

  // ------------------------------------------------------------------ controls
  var prev = document.createElement("button");
  prev.type = "button"; prev.className = "pb-btn pb-prev"; prev.textContent = "◀ previous";
  prev.setAttribute("aria-label", "previous phase");
  nav.appendChild(prev);
  var list = document.createElement("ol");
  list.className = "pb-phase-list";
  phases.forEach(function (name, k) {
    var li = document.createElement("li"), b = document.createElement("button");
    var ph = parsePhase(name);
    b.type = "button"; b.className = "pb-phase pb-phase-" + ph.kind; b.setAttribute("data-phase", name);
    b.textContent = ph.k === null ? name : (ph.kind === "forward" ? "forward " : "backward ") + ph.k;
    b.addEventListener("click", function () { setPhase(k, false); });
    li.appendChild(b); list.appendChild(li); buttons.push(b);
  });
  nav.appendChild(list);
  var next = document.createElement("button");
  next.type = "button"; next.className = "pb-btn pb-next"; next.textContent = "next ▶";
  next.setAttribute("aria-label", "next phase");
  nav.appendChild(next);
  prev.addEventListener("click", function () { setPhase(idx - 1, false); });
  next.addEventListener("click", function () { setPhase(idx + 1, false); });
  document.addEventListener("keydown", function (ev) {
    if (ev.altKey || ev.ctrlKey || ev.metaKey || ev.defaultPrevented) return;  // taken: a strip's arrow keys
    var tag = ev.target && ev.target.tagName;
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") return;
    if (ev.key === "ArrowRight") { setPhase(idx + 1, false); ev.preventDefault(); }
    else if (ev.key === "ArrowLeft") { setPhase(idx - 1, false); ev.preventDefault(); }
    else if (ev.key === "Home") { setPhase(0, false); ev.preventDefault(); }
    else if (ev.key === "End") { setPhase(phases.length - 1, false); ev.preventDefault(); }
    else if (ev.key === "Escape") { tip.hidden = true; view.clearHighlight(); }
  });
  function fromHash() {
    var h = "";
    try { h = decodeURIComponent(location.hash.slice(1)); } catch (e) { h = ""; }
    var k = phases.indexOf(h);
    return k < 0 ? null : k;
  }
  window.addEventListener("hashchange", function () {
    var k = fromHash();
    if (k !== null && k !== idx) setPhase(k, true);
  });
  var start = fromHash();
  setPhase(start === null ? 0 : start, true);  // the first phase leaves the address as it is
  window.PBStep = {payload: P, view: view, setPhase: function (name) { setPhase(phases.indexOf(name), false); },
                   phase: function () { return phases[idx]; }, records: records,
                   renderMs: (window.performance ? performance.now() : 0) - t0};
})();
