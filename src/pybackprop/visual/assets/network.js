/* pybackprop network drawing (shared by the step picture and the playground).
 *
 *   const view = PBNet.render(svgElement, net, opts)   // builds the drawing
 *   view.update(net, opts?)                            // same shapes, new numbers: no DOM rebuild
 *
 *   net = {
 *     sizes: [n_in, n_1, ..., n_L],        // units per column (inputs first)
 *     activations: ["relu", ...],          // one per Dense layer (length L)
 *     W: [W_1, ..., W_L],                  // nested lists n_{l-1} x n_l (fan_in x fan_out), or for a
 *                                          // large matrix {shape: [n_in, n_out], rows: [row bounds],
 *                                          //   cols: [col bounds], values: [[block mean]]}
 *     b: [b_1 or null, ...],               // biases or null
 *     dropout: [null or {keep_prob, mask: [0/1, ...] or null, scale}, ...],  // on layer l's input
 *     values: optional [[v per unit] per column]   // unit fill (and text unless opts.showValues false)
 *   }
 *   opts = {
 *     edgeValues: optional [M_1..M_L] shaped as W (colour/width by these instead of W; null entry = W),
 *     onHover: optional fn(info or null)  info = {id, kind, el, col, unit, layer, from, to, row, colBlock},
 *     wide: 16 (columns wider than this are strips of heat-map cells, and the layers touching them
 *               are drawn as a heat map of W between the columns),
 *     width, height (user units of the viewBox; default 1000 x 600), margin {left,right,top,bottom},
 *     glyph: fn(c, i) -> text inside a unit, columnTitle: fn(c) -> [line1, line2],
 *     unitLabels: fn(c, i, room) -> [{id, text, cls, line, dx, dy, side, anchor}] numbers written under a unit
 *                 (line: row under it; side: beside it instead; anchor: "start", "end" or the default
 *                 "middle" of the text at dx), room = {lines, spacing, r}: the rows that fit,
 *     edgeLabels: fn(l, i, j) -> [{id, text, cls}] numbers written on an edge,
 *     unitId / edgeId / cellId: fn -> data-id of a unit cell, an edge, a matrix cell
 *   }
 *
 * view.highlight(refs) / view.clearHighlight() light what a number came from; view.refresh() calls
 * onHover again for the hovered element; view.unitPos(c, i), view.columnBox(c) give the geometry.
 *
 * DOM hooks: each unit <g class="pb-unit" data-col data-unit> (col 0 = inputs); each edge
 * <line class="pb-edge" data-layer data-from data-to> (layer 1..L); a strip cell
 * <rect class="pb-cell" data-col data-unit>; a matrix cell <rect class="pb-cell pb-wcell"
 * data-layer data-row data-colblock>; every number shown is an element with class "pb-num",
 * tabindex="0" and data-id, except that a strip or a heat map of cells is one tab stop: its cells have
 * tabindex="-1" but the one last focused (at first the first), and inside it ↑/↓ move one cell, Shift+←/→
 * one column of cells (the event's default is prevented). No modules, no build step, no network.
 */
(function (global) {
  "use strict";

  var POS = [37, 99, 235], NEG = [234, 88, 12], ZERO = [246, 247, 249];
  var SUB = "₀₁₂₃₄₅₆₇₈₉";
  var GLYPH = {identity: "id", relu: "ReLU", leaky_relu: "LReLU", noisy_relu: "NReLU", sigmoid: "σ",
               tanh: "tanh", elu: "ELU", softplus: "s+", gelu: "GELU", softmax: "smax"};

  function sub(n) {
    return String(n).replace(/[0-9]/g, function (d) { return SUB[+d]; });
  }

  function mix(a, b, t) {
    return "rgb(" + Math.round(a[0] + (b[0] - a[0]) * t) + "," + Math.round(a[1] + (b[1] - a[1]) * t) + "," +
      Math.round(a[2] + (b[2] - a[2]) * t) + ")";
  }

  /** Fill colour of a value on a diverging scale: blue positive, orange negative, |v|/max as intensity. */
  function heat(v, max, strength) {
    if (v === null || v === undefined || isNaN(v)) return "#f1f3f5";
    var t = max > 0 ? Math.min(1, Math.abs(v) / max) : 0;
    return mix(ZERO, v >= 0 ? POS : NEG, Math.sqrt(t) * (strength || 1));
  }

  function isBlocks(M) { return M && !Array.isArray(M) && M.values; }

  function matrixMax(M) {
    var rows = isBlocks(M) ? M.values : (M || []), m = 0;
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i];
      for (var j = 0; j < r.length; j++) { var a = Math.abs(r[j]); if (a > m && isFinite(a)) m = a; }
    }
    return m;
  }

  function vecMax(v) {
    var m = 0;
    if (!v) return 0;
    for (var i = 0; i < v.length; i++) { var a = Math.abs(v[i]); if (a > m && isFinite(a)) m = a; }
    return m;
  }

  function render(svg, net, opts) {
    opts = opts || {};
    var NS = svg.namespaceURI;
    var doc = svg.ownerDocument;
    var W = opts.width || 1000, H = opts.height || 600;
    var margin = Object.assign({left: 56, right: 56, top: 64, bottom: 24}, opts.margin || {});
    var wide = opts.wide || 16;
    var sizes = net.sizes, C = sizes.length, L = C - 1;
    var innerH = H - margin.top - margin.bottom;
    var state = {net: net, opts: opts};

    function el(name, attrs, parent) {
      var e = doc.createElementNS(NS, name);
      if (attrs) for (var k in attrs) if (attrs[k] !== undefined && attrs[k] !== null) e.setAttribute(k, attrs[k]);
      if (parent) parent.appendChild(e);
      return e;
    }

    // A strip or a heat map is one tab stop (a roving tabindex: the cell last focused has tabindex 0, the
    // others -1); inside it ↑/↓ move one cell along a column of cells and Shift+←/→ one column across,
    // so that Tab walks the drawing's few groups, not its thousand cells.
    var gridOfCell = new Map();
    function grid(list, rows, place) {  // place(k) -> [row, column] of the k-th cell as drawn
      var at = {};
      list.forEach(function (cell, k) { var rc = place(k); at[rc[0] + "," + rc[1]] = cell; });
      var info = {list: list, at: at, place: place, rows: rows};
      list.forEach(function (cell, k) { gridOfCell.set(cell, {grid: info, k: k}); });
    }
    function gridKey(ev) {
      var hit = gridOfCell.get(ev.target);
      if (!hit) return;
      var at = hit.grid.at, rc = hit.grid.place(hit.k), r = rc[0], c = rc[1], to = null;
      if (ev.key === "ArrowDown" && !ev.shiftKey) to = at[(r + 1) + "," + c] || at["0," + (c + 1)];
      else if (ev.key === "ArrowUp" && !ev.shiftKey) to = at[(r - 1) + "," + c] || at[(hit.grid.rows - 1) + "," + (c - 1)];
      else if (ev.shiftKey && ev.key === "ArrowRight") to = at[r + "," + (c + 1)];
      else if (ev.shiftKey && ev.key === "ArrowLeft") to = at[r + "," + (c - 1)];
      else return;
      ev.preventDefault();  // the page's own arrow keys (scrolling, the step's phases) stay out of it
      if (to) to.focus();
    }
    function gridFocus(ev) {  // the focused cell becomes its grid's tab stop
      var hit = gridOfCell.get(ev.target);
      if (!hit) return;
      hit.grid.list.forEach(function (cell) { if (cell.getAttribute("tabindex") === "0") cell.setAttribute("tabindex", "-1"); });
      ev.target.setAttribute("tabindex", "0");
    }

    while (svg.firstChild) svg.removeChild(svg.firstChild);
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    svg.classList.add("pb-svg");

    // ---------------------------------------------------------------- geometry
    var strip = sizes.map(function (n) { return n > wide; });
    var matrixMode = [false];
    for (var l = 1; l <= L; l++) matrixMode.push(strip[l - 1] || strip[l]);
    var colX = [];
    for (var c = 0; c < C; c++) colX.push(C === 1 ? W / 2 : margin.left + (W - margin.left - margin.right) * c / (C - 1));
    var geo = [];  // per column: units positions and extent
    var radius = opts.radius || 19;
    for (c = 0; c < C; c++) {
      var n = sizes[c], g = {x: colX[c], units: [], strip: strip[c]};
      if (strip[c]) {
        var k = 1, rows, s;
        for (;;) {
          rows = Math.ceil(n / k);
          s = Math.min(14, innerH / rows);
          if (s >= 7 || k * 7 > 150) break;
          k++;
        }
        g.k = k; g.rows = rows; g.s = s;
        g.x0 = colX[c] - k * s / 2; g.x1 = colX[c] + k * s / 2;
        g.y0 = margin.top + (innerH - rows * s) / 2; g.y1 = g.y0 + rows * s;
        for (var i = 0; i < n; i++) {
          var cc = Math.floor(i / rows), rr = i % rows;
          g.units.push({x: g.x0 + (cc + 0.5) * s, y: g.y0 + (rr + 0.5) * s, cx: g.x0 + cc * s, cy: g.y0 + rr * s});
        }
      } else {
        var spacing = Math.min(opts.maxSpacing || 150, innerH / Math.max(n, 1));
        g.spacing = spacing;
        g.r = Math.min(radius, spacing * 0.36);
        for (i = 0; i < n; i++) g.units.push({x: colX[c], y: margin.top + innerH / 2 + (i - (n - 1) / 2) * spacing});
        g.x0 = colX[c] - g.r; g.x1 = colX[c] + g.r;
        g.y0 = g.units[0].y - g.r; g.y1 = g.units[n - 1].y + g.r;
      }
      geo.push(g);
    }

    // ---------------------------------------------------------------- layers of the drawing
    var gBundles = el("g", {"class": "pb-bundles"}, svg);
    var gEdges = el("g", {"class": "pb-edges"}, svg);
    var gMatrices = el("g", {"class": "pb-matrices"}, svg);
    var gUnits = el("g", {"class": "pb-units"}, svg);
    var gHeads = el("g", {"class": "pb-heads"}, svg);
    var gLabels = el("g", {"class": "pb-elabels"}, svg);

    var edges = [null], matrices = [null], units = [], columns = [], valueTexts = [];
    var elabelT = [null];

    // column titles
    for (c = 0; c < C; c++) {
      var title = opts.columnTitle ? opts.columnTitle(c) :
        (c === 0 ? ["input", sizes[0] + (sizes[0] === 1 ? " feature" : " features")] :
          ["layer " + c, sizes[c] + " " + (net.activations[c - 1] || "")]);
      var th = el("text", {"class": "pb-colhead", x: colX[c], y: 22, "text-anchor": "middle"}, gHeads);
      th.textContent = title[0];
      if (title[1]) {
        var th2 = el("text", {"class": "pb-colsub", x: colX[c], y: 40, "text-anchor": "middle"}, gHeads);
        th2.textContent = title[1];
      }
    }

    // edges or matrices
    for (l = 1; l <= L; l++) {
      var a = geo[l - 1], b = geo[l];
      if (!matrixMode[l]) {
        var list = [];
        var gl = el("g", {"class": "pb-layer", "data-layer": l}, gEdges);
        // where the numbers of an edge can sit without overlapping: a fraction t along it
        var t = null;
        if (opts.edgeLabels) {
          var sa = a.spacing, sb = b.spacing, nb = sizes[l], lineH = 14;
          var tmax = nb > 1 ? (sa - lineH) / ((nb - 1) * sb + sa) : 0.3;
          var tt = Math.min(0.3, tmax * 0.92);
          var room = (b.x - a.x) * tt - a.r;
          if ((nb === 1 || tt * sb >= lineH) && room >= 42) t = tt;
        }
        elabelT.push(t);
        for (i = 0; i < sizes[l - 1]; i++) {
          var row = [];
          for (var j = 0; j < sizes[l]; j++) {
            var p = a.units[i], q = b.units[j];
            var id = opts.edgeId ? opts.edgeId(l, i, j) : null;
            var line = el("line", {"class": "pb-edge", "data-layer": l, "data-from": i, "data-to": j,
              x1: p.x + a.r, y1: p.y, x2: q.x - b.r, y2: q.y, "data-id": id}, gl);
            if (id && t === null) { line.classList.add("pb-num"); line.setAttribute("tabindex", "0"); }
            row.push(line);
            if (t !== null) {
              var labels = opts.edgeLabels(l, i, j) || [];
              var x = p.x + a.r + (q.x - b.r - p.x - a.r) * t, y = p.y + (q.y - p.y) * t;
              for (var m = 0; m < labels.length; m++) {
                var lab = el("text", {"class": "pb-num pb-elabel " + (labels[m].cls || ""), x: x, y: y,
                  "text-anchor": "middle", "dominant-baseline": "central", tabindex: "0", "data-id": labels[m].id,
                  "data-layer": l, "data-from": i, "data-to": j}, gLabels);
                lab.textContent = labels[m].text;
              }
            }
          }
          list.push(row);
        }
        edges.push(list);
        matrices.push(null);
      } else {
        edges.push(null);
        elabelT.push(null);
        var M = net.W[l - 1];
        var blocks = isBlocks(M);
        var R = blocks ? M.values.length : sizes[l - 1], Cc = blocks ? M.values[0].length : sizes[l];
        var left = a.x1 + 26, right = b.x0 - 26;
        var cs = Math.min(14, (right - left) / Cc, innerH / R);
        var mw = Cc * cs, mh = R * cs;
        var mx = (left + right) / 2 - mw / 2, my = margin.top + (innerH - mh) / 2;
        var gm = el("g", {"class": "pb-matrix", "data-layer": l}, gMatrices);
        el("polygon", {"class": "pb-bundle", "data-layer": l,
          points: [a.x1 + 4, a.y0, mx - 3, my, mx - 3, my + mh, a.x1 + 4, a.y1].join(" ")}, gBundles);
        el("polygon", {"class": "pb-bundle", "data-layer": l,
          points: [mx + mw + 3, my, b.x0 - 4, b.y0, b.x0 - 4, b.y1, mx + mw + 3, my + mh].join(" ")}, gBundles);
        el("rect", {"class": "pb-matrix-frame", x: mx - 1, y: my - 1, width: mw + 2, height: mh + 2}, gm);
        var cap = el("text", {"class": "pb-matrix-cap", x: mx + mw / 2, y: my + mh + 16, "text-anchor": "middle"}, gm);
        cap.textContent = "W" + sub(l) + " " + sizes[l - 1] + "×" + sizes[l] +
          (blocks ? " · " + R + "×" + Cc + " block means" : "");
        var cells = [];
        for (var r = 0; r < R; r++) {
          var crow = [];
          for (var q2 = 0; q2 < Cc; q2++) {
            var cid = opts.cellId ? opts.cellId(l, r, q2, !!blocks) : (blocks ? "B" : "e") + l + "." + r + "." + q2;
            var attrs = {"class": "pb-cell pb-wcell pb-num", x: mx + q2 * cs, y: my + r * cs, width: cs, height: cs,
              "data-layer": l, "data-row": r, "data-colblock": q2, tabindex: r + q2 === 0 ? "0" : "-1", "data-id": cid};
            if (!blocks) { attrs["data-from"] = r; attrs["data-to"] = q2; }
            crow.push(el("rect", attrs, gm));
          }
          cells.push(crow);
        }
        grid([].concat.apply([], cells), R, (function (width) {  // the cells row by row
          return function (k) { return [Math.floor(k / width), k % width]; };
        })(Cc));
        matrices.push({el: gm, cells: cells, blocks: blocks ? {rows: M.rows, cols: M.cols} : null});
      }
    }

    // units
    for (c = 0; c < C; c++) {
      g = geo[c];
      var gc = el("g", {"class": "pb-col" + (g.strip ? " pb-strip" : ""), "data-col": c}, gUnits);
      columns.push(gc);
      var us = [], vt = [];
      if (g.strip) {
        el("rect", {"class": "pb-strip-frame", x: g.x0 - 2, y: g.y0 - 2, width: g.x1 - g.x0 + 4, height: g.y1 - g.y0 + 4}, gc);
        for (i = 0; i < sizes[c]; i++) {
          var u = g.units[i];
          var uid = opts.unitId ? opts.unitId(c, i) : "u" + c + "." + i;
          us.push(el("rect", {"class": "pb-cell pb-num", "data-col": c, "data-unit": i, x: u.cx, y: u.cy,
            width: g.s - 0.6, height: g.s - 0.6, tabindex: i === 0 ? "0" : "-1", "data-id": uid}, gc));
          vt.push(null);
        }
        grid(us, g.rows, (function (rows) {  // the units go down the strip's columns of cells
          return function (k) { return [k % rows, Math.floor(k / rows)]; };
        })(g.rows));
        var sc = el("text", {"class": "pb-strip-cap", x: colX[c], y: g.y1 + 16, "text-anchor": "middle"}, gc);
        sc.textContent = sizes[c] + " units, " + g.k + "×" + g.rows + " cells";
      } else {
        for (i = 0; i < sizes[c]; i++) {
          u = g.units[i];
          var gu = el("g", {"class": "pb-unit", "data-col": c, "data-unit": i,
            transform: "translate(" + u.x + "," + u.y + ")"}, gc);
          el("circle", {"class": "pb-node", r: g.r}, gu);
          var glyph = opts.glyph ? opts.glyph(c, i) : (c === 0 ? "x" + sub(i + 1) : (GLYPH[net.activations[c - 1]] || ""));
          var gt = el("text", {"class": "pb-glyph" + (glyph.length > 3 ? " pb-glyph-small" : ""), "text-anchor": "middle",
            "dominant-baseline": "central"}, gu);
          gt.textContent = glyph;
          var room = {lines: Math.max(0, Math.floor((g.spacing - 2 * g.r - 6) / 14)), spacing: g.spacing, r: g.r};
          var labs = opts.unitLabels ? (opts.unitLabels(c, i, room) || []) : [];
          for (m = 0; m < labs.length; m++) {
            var lb = labs[m], side = !!lb.side;
            var tx = el("text", {"class": "pb-num pb-ulabel " + (lb.cls || "") + (side ? " pb-side" : ""),
              x: side ? g.r + 6 + (lb.dx || 0) : (lb.dx || 0),
              y: side ? (lb.dy || 0) : g.r + 13 + 14 * (lb.line || 0) + (lb.dy || 0),
              "text-anchor": side ? "start" : (lb.anchor || "middle"), "dominant-baseline": "central", tabindex: "0",
              "data-id": lb.id}, gu);
            tx.textContent = lb.text;
          }
          var v = null;
          if (net.values && opts.showValues !== false) {
            v = el("text", {"class": "pb-num pb-value", x: 0, y: g.r + 13, "text-anchor": "middle",
              "dominant-baseline": "central", tabindex: "0", "data-id": "v" + c + "." + i}, gu);
          }
          vt.push(v);
          us.push(gu);
        }
      }
      units.push(us);
      valueTexts.push(vt);
      // a Dropout on this column's output (the input of layer c+1)
      var drop = net.dropout && net.dropout[c];
      if (drop) {
        var badge = el("text", {"class": "pb-dropbadge", x: colX[c], y: 56, "text-anchor": "middle"}, gHeads);
        badge.textContent = "dropout, keep p = " + (+drop.keep_prob).toPrecision(3).replace(/\.?0+$/, "");
      }
    }

    // ---------------------------------------------------------------- numbers → styles
    function fmt(v) {
      if (v === null || v === undefined || isNaN(v)) return "—";
      if (v === 0) return "0";
      var a = Math.abs(v);
      var s = (a >= 1e-3 && a < 1e5) ? String(+v.toPrecision(3)) : v.toExponential(2);
      return s.replace("-", "−");
    }

    function update(newNet, newOpts) {
      net = state.net = newNet || state.net;
      if (newOpts) opts = state.opts = Object.assign({}, state.opts, newOpts);
      var ev = opts.edgeValues || [];
      for (var l = 1; l <= L; l++) {
        var M = ev[l - 1] || net.W[l - 1];
        var max = matrixMax(M);
        var drop = net.dropout && net.dropout[l - 1];
        var mask = drop && drop.mask;
        if (edges[l]) {
          for (var i = 0; i < edges[l].length; i++) {
            for (var j = 0; j < edges[l][i].length; j++) {
              var e = edges[l][i][j], v = M && M[i] ? M[i][j] : null;
              var na = v === null || v === undefined || isNaN(v);
              var t = na || !(max > 0) ? 0 : Math.min(1, Math.abs(v) / max);
              e.setAttribute("stroke", na || v === 0 ? "#adb5bd" : (v > 0 ? "rgb(" + POS + ")" : "rgb(" + NEG + ")"));
              e.setAttribute("stroke-width", (0.6 + 5.4 * t).toFixed(2));
              e.setAttribute("stroke-opacity", (0.28 + 0.72 * t).toFixed(2));
              e.classList.toggle("pb-dropped", !!(mask && mask[i] === 0));
            }
          }
        } else if (matrices[l]) {
          var cells = matrices[l].cells, vals = isBlocks(M) ? M.values : M;
          for (var r = 0; r < cells.length; r++) {
            for (var q = 0; q < cells[r].length; q++) {
              var cv = vals && vals[r] ? vals[r][q] : null;
              cells[r][q].setAttribute("fill", heat(cv, max));
            }
          }
        }
      }
      for (var c = 0; c < C; c++) {
        var vals2 = net.values ? net.values[c] : null, vmax = vecMax(vals2);
        var dr = net.dropout && net.dropout[c], mk = dr && dr.mask;
        for (i = 0; i < units[c].length; i++) {
          var u = units[c][i], val = vals2 ? vals2[i] : null;
          var dropped = !!(mk && mk[i] === 0);
          u.classList.toggle("pb-dropped", dropped);
          if (geo[c].strip) {
            u.setAttribute("fill", dropped ? "#dee2e6" : heat(val, vmax));
          } else {
            var circle = u.firstChild;
            circle.setAttribute("fill", dropped ? "#e9ecef" : (vals2 ? heat(val, vmax, 0.6) : "#ffffff"));
            if (valueTexts[c][i]) valueTexts[c][i].textContent = fmt(val);
          }
        }
      }
    }

    // ---------------------------------------------------------------- hover, focus, highlight
    var current = null;
    function info(target) {
      var d = target.dataset || {};
      return {id: d.id || null, el: target, kind: target.classList.contains("pb-edge") ? "edge" :
        target.classList.contains("pb-wcell") ? "matrix" : target.classList.contains("pb-cell") ? "cell" : "number",
        col: d.col !== undefined ? +d.col : null, unit: d.unit !== undefined ? +d.unit : null,
        layer: d.layer !== undefined ? +d.layer : null, from: d.from !== undefined ? +d.from : null,
        to: d.to !== undefined ? +d.to : null, row: d.row !== undefined ? +d.row : null,
        colBlock: d.colblock !== undefined ? +d.colblock : null};
    }
    function enter(ev) {
      var target = ev.target.closest ? ev.target.closest("[data-id]") : null;
      if (!target || target === current || !svg.contains(target)) return;
      current = target;
      if (state.opts.onHover) state.opts.onHover(info(target), ev);
    }
    function leave(ev) {
      if (!current) return;
      var to = ev.relatedTarget && ev.relatedTarget.closest ? ev.relatedTarget.closest("[data-id]") : null;
      if (to === current) return;
      current = null;
      if (state.opts.onHover) state.opts.onHover(null, ev);
    }
    svg.addEventListener("mouseover", enter);
    svg.addEventListener("focusin", enter);
    svg.addEventListener("mouseout", leave);
    svg.addEventListener("focusout", leave);
    svg.addEventListener("keydown", gridKey);
    svg.addEventListener("focusin", gridFocus);

    var lit = [];
    function light(e) { if (e) { e.classList.add("pb-hl"); lit.push(e); } }
    function inBlock(bounds, idx) {
      for (var k = 0; k + 1 < bounds.length; k++) if (idx >= bounds[k] && idx < bounds[k + 1]) return k;
      return -1;
    }
    function cellsOf(l, i, j) {  // matrix cells holding weight (i, j); i or j null = a whole row/column
      var mt = matrices[l], out = [];
      if (!mt) return out;
      var R = mt.cells.length, Cc = mt.cells[0].length;
      var r0 = i === null ? 0 : (mt.blocks ? inBlock(mt.blocks.rows, i) : i);
      var c0 = j === null ? 0 : (mt.blocks ? inBlock(mt.blocks.cols, j) : j);
      var r1 = i === null ? R : r0 + 1, c1 = j === null ? Cc : c0 + 1;
      for (var r = r0; r < r1; r++) for (var c = c0; c < c1; c++) if (mt.cells[r] && mt.cells[r][c]) out.push(mt.cells[r][c]);
      return out;
    }
    function clearHighlight() {
      for (var k = 0; k < lit.length; k++) lit[k].classList.remove("pb-hl");
      lit = [];
      svg.classList.remove("pb-highlighting");
    }
    /** Highlight refs: {unit: [c, i]}, {edge: [l, i, j]}, {edgesTo: [l, j]}, {edgesFrom: [l, i]},
     *  {column: c}, {layer: l}, {el: element}. */
    function highlight(refs) {
      clearHighlight();
      for (var k = 0; k < refs.length; k++) {
        var ref = refs[k], l, i, j;
        if (ref.el) light(ref.el);
        else if (ref.unit) { if (units[ref.unit[0]]) light(units[ref.unit[0]][ref.unit[1]]); }
        else if (ref.column !== undefined) { if (columns[ref.column]) light(columns[ref.column]); }
        else if (ref.layer !== undefined) {
          l = ref.layer;
          if (edges[l]) edges[l].forEach(function (row) { row.forEach(light); });
          else if (matrices[l]) light(matrices[l].el);
        } else if (ref.edge || ref.edgesTo || ref.edgesFrom) {
          l = (ref.edge || ref.edgesTo || ref.edgesFrom)[0];
          i = ref.edge ? ref.edge[1] : (ref.edgesFrom ? ref.edgesFrom[1] : null);
          j = ref.edge ? ref.edge[2] : (ref.edgesTo ? ref.edgesTo[1] : null);
          if (edges[l]) {
            for (var a = 0; a < edges[l].length; a++) {
              if (i !== null && a !== i) continue;
              for (var b = 0; b < edges[l][a].length; b++) if (j === null || b === j) light(edges[l][a][b]);
            }
          } else cellsOf(l, i, j).forEach(light);
        }
      }
      if (lit.length) svg.classList.add("pb-highlighting");
    }

    /** Call onHover again for the element under the pointer or focus (its numbers may have changed). */
    function refresh() {
      if (!current) return;
      var box = current.getBoundingClientRect();
      if (!box.width && !box.height) { current = null; if (state.opts.onHover) state.opts.onHover(null); return; }
      if (state.opts.onHover) state.opts.onHover(info(current));
    }

    update(net, null);
    return {
      refresh: refresh,
      svg: svg, update: update, highlight: highlight, clearHighlight: clearHighlight,
      unitPos: function (c, i) { var u = geo[c].units[i]; return {x: u.x, y: u.y, r: geo[c].r || 0}; },
      columnBox: function (c) { var g = geo[c]; return {x0: g.x0, x1: g.x1, y0: g.y0, y1: g.y1, strip: g.strip}; },
      isStrip: function (c) { return strip[c]; },
      isMatrix: function (l) { return !!matrixMode[l]; },
      edgeLabelsShown: function (l) { return elabelT[l] !== null && elabelT[l] !== undefined; },
      size: {width: W, height: H}
    };
  }

  global.PBNet = {render: render, heat: heat, sub: sub, colors: {pos: POS, neg: NEG, zero: ZERO}};
})(typeof window !== "undefined" ? window : this);
