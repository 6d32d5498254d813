/* The interactive explorers of the book (one file; the arithmetic lives in core.js).
 *
 * Every explorer is a <div class="cnnx" data-explorer="NAME"> in its chapter. Controls are labelled
 * <input>/<select>/<button> elements; every number and grid shown is also in the DOM for the tests:
 * grids are <table class="cnnx-grid" data-name=... data-shape="h,w"> with one <td> per value,
 * scalars are <output data-name=... data-value=...>, the reason of an impossible setting is
 * <p data-name="error" role="alert">. Drawing uses d3 (vendored in _static/d3/).
 */
(function () {
  "use strict";
  if (window.CnnExplorers) return;
  const C = window.CnnCore;
  let uid = 0;

  // ---------------------------------------------------------------- shared UI helpers
  function el(parent, tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function control(ex, parent, spec) {
    const id = `cnnx-${++uid}`;
    const wrap = el(parent, "span", { class: "cnnx-control" });
    el(wrap, "label", { for: id }, spec.label);
    let input;
    if (spec.options) {
      input = el(wrap, "select", { id, name: spec.name, "data-control": spec.name });
      for (const [value, text] of spec.options) el(input, "option", { value }, text);
      input.value = spec.value;
    } else {
      input = el(wrap, "input", { id, name: spec.name, "data-control": spec.name, type: "number",
        min: spec.min, max: spec.max, step: 1, value: spec.value, inputmode: "numeric" });
    }
    changed(input, () => ex.update());
    ex.controls[spec.name] = input;
    return input;
  }
  /* Re-render on "input" and "change", but only when the value really changed: the "change" fired
   * by leaving a field must not rebuild the view under a click that is landing on it. */
  function changed(input, fn) {
    input.dataset.rendered = input.value;
    const fire = () => { if (input.value !== input.dataset.rendered) { input.dataset.rendered = input.value; fn(); } };
    input.addEventListener("input", fire);
    input.addEventListener("change", fire);
  }
  function intOf(input) { const v = input.value.trim(); return v === "" ? NaN : Number(v); }
  function fmt(v) { return v === -Infinity ? "-inf" : (Number.isInteger(v) ? String(v) : String(+v.toFixed(6))); }
  function shapeText(shape) { return shape.join(" × "); }

  /* A grid as a table: one <td data-index=flat> per value; cls(flat) gives extra classes. */
  function gridTable(parent, name, caption, values, shape, cls) {
    const rows = shape.length === 1 ? 1 : shape[0], cols = shape[shape.length - 1];
    const t = el(parent, "table", { class: "cnnx-grid", "data-name": name, "data-shape": shape.join(",") });
    el(t, "caption", {}, caption);
    const body = el(t, "tbody");
    for (let r = 0; r < rows; r++) {
      const tr = el(body, "tr");
      for (let c = 0; c < cols; c++) {
        const f = r * cols + c;
        el(tr, "td", { "data-index": f, class: cls ? cls(f) || null : null }, fmt(values[f]));
      }
    }
    return t;
  }
  function out(parent, name, label, value, text) {
    const p = el(parent, "p", { class: "cnnx-out" });
    el(p, "span", {}, label + " ");
    el(p, "output", { "data-name": name, "data-value": JSON.stringify(value) }, text === undefined ? String(value) : text);
    return p;
  }
  function errorBox(parent, message) {
    return el(parent, "p", { class: "cnnx-error", "data-name": "error", role: "alert" }, message || "");
  }

  /* An SVG picture of a grid (d3): cells get classes from cls(row, col) and show text(row, col). */
  function gridSvg(parent, title, rows, cols, cls, text, opts) {
    const size = (opts && opts.size) || (cols > 14 || rows > 14 ? 18 : 26);
    const svg = d3.select(parent).append("svg")
      .attr("class", "cnnx-svg").attr("role", "img").attr("aria-label", title)
      .attr("width", cols * size + 2).attr("height", rows * size + 2);
    const cells = [];
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) cells.push({ r, c });
    const g = svg.selectAll("g").data(cells).join("g")
      .attr("transform", d => `translate(${d.c * size + 1},${d.r * size + 1})`);
    g.append("rect").attr("width", size - 1).attr("height", size - 1).attr("class", d => "cnnx-cell " + (cls(d.r, d.c) || ""));
    if (text) g.append("text").attr("x", size / 2).attr("y", size / 2 + 4).attr("text-anchor", "middle")
      .attr("font-size", size > 20 ? 11 : 9).text(d => text(d.r, d.c));
    return svg;
  }

  function base(root, title) {
    root.innerHTML = "";
    root.classList.add("cnnx-live");
    el(root, "p", { class: "cnnx-title" }, title);
    const ex = { root, controls: {}, form: el(root, "div", { class: "cnnx-controls", role: "group", "aria-label": title + ": settings" }),
      view: el(root, "div", { class: "cnnx-view", "aria-live": "polite" }) };
    return ex;
  }
  function timed(ex, render) {
    ex.update = () => {
      const t0 = performance.now();
      ex.view.innerHTML = "";
      try { render(); } catch (e) {
        if (!e.cnnmath) throw e;
        ex.view.innerHTML = "";
        errorBox(ex.view, e.message);
      }
      ex.root.setAttribute("data-render-ms", (performance.now() - t0).toFixed(3));
      ex.root.setAttribute("data-renders", String(Number(ex.root.getAttribute("data-renders") || 0) + 1));
    };
  }
  const DIMS = [["1", "1D"], ["2", "2D"]];

  // ---------------------------------------------------------------- 1. convolution arithmetic (ch05)
  function convArith(root) {
    const ex = base(root, "Convolution arithmetic");
    control(ex, ex.form, { name: "dims", label: "dimensions", options: DIMS, value: "2" });
    control(ex, ex.form, { name: "n", label: "input size n", value: 5, min: 1, max: 16 });
    control(ex, ex.form, { name: "k", label: "kernel k", value: 3, min: 1, max: 9 });
    control(ex, ex.form, { name: "s", label: "stride s", value: 2, min: 1, max: 5 });
    control(ex, ex.form, { name: "pmode", label: "padding", options: [["int", "p on both sides"], ["pair", "(before, after)"],
      ["valid", "valid"], ["same", "same"], ["full", "full"]], value: "int" });
    control(ex, ex.form, { name: "p", label: "p (before)", value: 1, min: 0, max: 8 });
    control(ex, ex.form, { name: "pa", label: "p after", value: 0, min: 0, max: 8 });
    control(ex, ex.form, { name: "d", label: "dilation d", value: 1, min: 1, max: 4 });
    control(ex, ex.form, { name: "cell", label: "output cell (row-major)", value: 0, min: 0, max: 255 });
    control(ex, ex.form, { name: "seed", label: "values (seed)", value: 1, min: 0, max: 999 });
    timed(ex, () => {
      const c = ex.controls, dims = Number(c.dims.value), mode = c.pmode.value;
      c.pa.disabled = mode !== "pair";
      c.p.disabled = mode !== "int" && mode !== "pair";
      const n = intOf(c.n), k = intOf(c.k), s = intOf(c.s), d = intOf(c.d), p = intOf(c.p), pa = intOf(c.pa);
      const padding = mode === "int" ? p : (mode === "pair" ? new Array(dims).fill(0).map(() => [p, pa]) : mode);
      const nArg = dims === 1 ? n : [n, n];
      const g = C.outputSize(nArg, k, s, padding, d);
      const [pb, pA] = g.pads[0], span = g.span[0], m = g.out[0];
      out(ex.view, "padding", "padding (before, after) per dimension:", g.pads, C.pyRepr(g.pads));
      const f = el(ex.view, "p", { class: "cnnx-formula", "data-name": "formula" });
      f.textContent = `n_out = ⌊(n + p_before + p_after − d(k − 1) − 1) / s⌋ + 1 = ⌊(${n} + ${pb} + ${pA} − ${d}·(${k} − 1) − 1) / ${s}⌋ + 1 = ⌊${n + pb + pA - span} / ${s}⌋ + 1 = ${m}`;
      out(ex.view, "out-size", "output size:", g.out, shapeText(g.out));
      const x = C.integers(intOf(c.seed), C.prod(g.sizes), -3, 4), w = C.integers(intOf(c.seed) + 7, C.prod(g.k), -2, 2);
      const y = C.conv(x, w, g);
      const total = C.prod(g.out);
      let cell = intOf(c.cell);
      c.cell.max = String(total - 1);
      if (!(cell >= 0 && cell < total)) cell = Math.max(0, Math.min(total - 1, cell || 0));
      const o = C.ndindex(g.out)[cell];
      const win = C.windowOf(o, g);
      const hit = new Set(win.map(t => t.pos.join(",")));
      out(ex.view, "cell", "window for output cell", o, `(${o.join(", ")}) = ${fmt(y[cell])}`);
      el(ex.view, "p", { class: "cnnx-note" }, "Padded input (grey: padding, blue: the window's taps); output (orange: the cell it fills).");
      const pics = el(ex.view, "div", { class: "cnnx-row" });
      const rows = dims === 1 ? 1 : g.padded[0], cols = g.padded[dims - 1];
      const pos = (r, cc) => dims === 1 ? [cc - g.pads[0][0]] : [r - g.pads[0][0], cc - g.pads[1][0]];
      gridSvg(pics, "padded input with the window", rows, cols,
        (r, cc) => { const q = pos(r, cc); return (C.inside(q, g.sizes) ? "" : "pad ") + (hit.has(q.join(",")) ? "hit" : ""); },
        (r, cc) => { const q = pos(r, cc); return C.inside(q, g.sizes) ? fmt(x[C.flat(q, g.sizes)]) : "0"; });
      const orow = dims === 1 ? 1 : g.out[0], ocol = g.out[dims - 1];
      gridSvg(pics, "output", orow, ocol, (r, cc) => (r * ocol + cc === cell ? "sel" : ""), (r, cc) => fmt(y[r * ocol + cc]));
      const tabs = el(ex.view, "div", { class: "cnnx-row" });
      const inIdx = C.ndindex(g.sizes);   // once: looking it up per cell made a 16 x 16 grid quadratic
      gridTable(tabs, "x", "input x", x, g.sizes, fi => hit.has(inIdx[fi].join(",")) ? "hit" : "");
      gridTable(tabs, "w", "kernel w", w, g.k);
      gridTable(tabs, "y", "output y = conv(x, w)", y, g.out, fi => fi === cell ? "sel" : "");
    });
    ex.update();
    return ex;
  }

  /* The scatter view of conv_transpose: input sample i adds x[i]·w to the output, tap j landing on
   * i·s + j·d − p_before (outside the output: cropped). One small picture per input sample, each an
   * <svg data-name="part-FLAT" data-offset="r,c" data-step="d" data-values="[x[i]·w, row-major]">
   * drawn over the output's frame; their sum is the output table y below. */
  function scatterView(view, x, w, y, g, cell, dims) {
    const s = g.s, p = g.pads.map(pr => pr[0]);
    el(view, "p", { class: "cnnx-note" }, `Scatter: input sample i adds x[i]·w to the output, its tap j landing on i·s + j·d − p` +
      ` (s = ${s[0]}, d = ${g.d[0]}, p = ${p[0]}); taps outside the output are cropped. The output is the sum of all ${x.length} copies.`);
    const orows = dims === 1 ? 1 : g.out[0], ocols = g.out[dims - 1];
    const taps = C.ndindex(g.k), size = Math.max(8, Math.min(16, Math.floor(220 / Math.max(orows, ocols))));
    const sel = dims === 1 ? [0, cell] : [Math.floor(cell / ocols), cell % ocols];
    const wrap = el(view, "div", { class: "cnnx-scatter" });
    C.ndindex(g.sizes).forEach((i, fi) => {
      const origin = i.map((ii, a) => ii * s[a] - p[a]);               // where tap (0, 0) lands
      const values = taps.map((_, fj) => x[fi] * w[fj]);
      const at = taps.map(j => { const q = j.map((jj, a) => origin[a] + jj * g.d[a]); return dims === 1 ? [0, q[0]] : q; });
      const fig = el(wrap, "figure", { class: "cnnx-part" });
      el(fig, "figcaption", {}, `x[${i.join(", ")}] = ${fmt(x[fi])}`);
      const svg = d3.select(fig).append("svg").attr("class", "cnnx-svg").attr("role", "img")
        .attr("aria-label", `input sample (${i.join(", ")}): ${fmt(x[fi])} times the kernel, placed at (${origin.join(", ")})`)
        .attr("data-name", `part-${fi}`).attr("data-offset", origin.join(",")).attr("data-step", g.d.join(","))
        .attr("data-values", JSON.stringify(values))
        .attr("width", ocols * size + 2).attr("height", orows * size + 2);
      svg.append("rect").attr("class", "cnnx-frame").attr("x", 0.5).attr("y", 0.5).attr("width", ocols * size + 1).attr("height", orows * size + 1);
      const shown = at.map((q, t) => ({ q, v: values[t] })).filter(d => d.q[0] >= 0 && d.q[0] < orows && d.q[1] >= 0 && d.q[1] < ocols);
      const gg = svg.selectAll("g").data(shown).join("g").attr("transform", d => `translate(${d.q[1] * size + 1},${d.q[0] * size + 1})`);
      gg.append("rect").attr("width", size - 1).attr("height", size - 1)
        .attr("class", d => "cnnx-cell " + (d.q[0] === sel[0] && d.q[1] === sel[1] ? "sel" : "hit"));
      if (size >= 14) gg.append("text").attr("x", size / 2).attr("y", size / 2 + 3).attr("text-anchor", "middle").attr("font-size", 8).text(d => fmt(d.v));
    });
    gridSvg(el(view, "div", { class: "cnnx-row" }), "the sum of the copies: the output", orows, ocols,
      (r, c) => (r * ocols + c === cell ? "sel" : ""), (r, c) => fmt(y[r * ocols + c]));
  }

  // ---------------------------------------------------------------- 3. transposed convolution (ch08)
  function transposeExplorer(root) {
    const ex = base(root, "Transposed convolution");
    control(ex, ex.form, { name: "dims", label: "dimensions", options: DIMS, value: "1" });
    control(ex, ex.form, { name: "view", label: "view", options: [["conv", "zero insertion + convolution"], ["scatter", "scatter"]], value: "conv" });
    control(ex, ex.form, { name: "n", label: "input size n", value: 3, min: 1, max: 10 });
    control(ex, ex.form, { name: "k", label: "kernel k", value: 3, min: 1, max: 6 });
    control(ex, ex.form, { name: "s", label: "stride s", value: 2, min: 1, max: 4 });
    control(ex, ex.form, { name: "p", label: "padding p", value: 1, min: 0, max: 6 });
    control(ex, ex.form, { name: "op", label: "output_padding", value: 0, min: 0, max: 3 });
    control(ex, ex.form, { name: "d", label: "dilation d", value: 1, min: 1, max: 3 });
    control(ex, ex.form, { name: "cell", label: "output sample (row-major)", value: 0, min: 0, max: 400 });
    control(ex, ex.form, { name: "seed", label: "values (seed)", value: 1, min: 0, max: 999 });
    timed(ex, () => {
      const c = ex.controls, dims = Number(c.dims.value);
      const n = intOf(c.n), k = intOf(c.k), s = intOf(c.s), p = intOf(c.p), op = intOf(c.op), d = intOf(c.d);
      const g = C.transposedOutputSize(dims === 1 ? n : [n, n], k, s, p, op, d);
      const m = g.out[0];
      el(ex.view, "p", { class: "cnnx-formula", "data-name": "formula" },
        `m = (n − 1)s − 2p + d(k − 1) + output_padding + 1 = (${n} − 1)·${s} − 2·${p} + ${d}·(${k} − 1) + ${op} + 1 = ${m}`);
      out(ex.view, "out-size", "output size:", g.out, shapeText(g.out));
      const x = C.integers(intOf(c.seed), C.prod(g.sizes), -2, 3), w = C.integers(intOf(c.seed) + 3, C.prod(g.k), -2, 2);
      const { y, sources } = C.convTranspose(x, w, g);
      const total = C.prod(g.out);
      let cell = intOf(c.cell);
      c.cell.max = String(total - 1);
      if (!(cell >= 0 && cell < total)) cell = Math.max(0, Math.min(total - 1, cell || 0));
      const src = new Set(sources[cell]);
      const mi = C.ndindex(g.sizes);
      out(ex.view, "sources", `output sample (${C.ndindex(g.out)[cell].join(", ")}) = ${fmt(y[cell])} came from inputs`, sources[cell],
        sources[cell].length ? sources[cell].map(fi => "(" + mi[fi].join(", ") + ")").join(", ") : "none (only zeros reach it)");
      const tabs = el(ex.view, "div", { class: "cnnx-row" });
      gridTable(tabs, "x", "input x", x, g.sizes, fi => src.has(fi) ? "hit" : "");
      gridTable(tabs, "w", "kernel w", w, g.k);
      const zi = C.zeroInserted(x, w, g);
      if (c.view.value === "conv") {
        el(ex.view, "p", { class: "cnnx-note" }, `Insert s − 1 = ${s - 1} zeros between inputs, pad d(k − 1) − p = ${zi.q[0]} on each side` +
          (zi.q[0] < 0 ? " (negative: crop)" : "") + `${op ? ` plus output_padding = ${op} at the end` : ""}, then correlate with the flipped kernel at dilation ${d}.`);
        const rows = dims === 1 ? 1 : zi.zshape[0], cols = zi.zshape[dims - 1];
        const o = C.ndindex(g.out)[cell];
        const taps = new Set(C.ndindex(g.k).map(j => o.map((oi, a) => oi + j[a] * g.d[a]).join(",")));
        const pics = el(ex.view, "div", { class: "cnnx-row" });
        gridSvg(pics, "zero-inserted, padded input with the flipped kernel's window", rows, cols,
          (r, cc) => (taps.has((dims === 1 ? [cc] : [r, cc]).join(",")) ? "hit" : "") + (zi.z[r * cols + cc] === 0 ? " zero" : ""),
          (r, cc) => fmt(zi.z[r * cols + cc]));
        const t2 = el(ex.view, "div", { class: "cnnx-row" });
        gridTable(t2, "z", "zero-inserted, padded input z", zi.z, zi.zshape);
        gridTable(t2, "wflip", "flipped kernel", zi.wflip, g.k);
      } else {
        scatterView(ex.view, x, w, y, g, cell, dims);
      }
      gridTable(el(ex.view, "div", { class: "cnnx-row" }), "y", "output y = conv_transpose(x, w)", y, g.out, fi => fi === cell ? "sel" : "");
    });
    ex.update();
    return ex;
  }

  // ---------------------------------------------------------------- 4. receptive field stack (ch09)
  function rfStack(root) {
    const ex = base(root, "Receptive field of a stack");
    ex.layers = [{ kernel: 3, stride: 1, dilation: 1, padding: 1 }, { kernel: 2, stride: 2, dilation: 1, padding: 0 },
      { kernel: 3, stride: 1, dilation: 1, padding: 1 }];
    const list = el(ex.form, "ol", { class: "cnnx-layers", "data-name": "layers" });
    const add = el(ex.form, "button", { type: "button", "data-action": "add" }, "Add layer");
    add.addEventListener("click", () => { ex.layers.push({ kernel: 3, stride: 1, dilation: 1, padding: 0 }); buildList(); ex.update(); });
    function buildList() {
      list.innerHTML = "";
      ex.controls = {};
      ex.layers.forEach((L, i) => {
        const li = el(list, "li", { "data-layer": i });
        for (const [key, label, min] of [["kernel", "k", 1], ["stride", "s", 1], ["dilation", "d", 1], ["padding", "p", 0]]) {
          const id = `cnnx-${++uid}`;
          const wrap = el(li, "span", { class: "cnnx-control" });
          el(wrap, "label", { for: id }, `layer ${i + 1} ${label}`);
          const inp = el(wrap, "input", { id, type: "number", min, max: 9, step: 1, value: L[key], "data-control": key, name: `${key}-${i}` });
          changed(inp, () => { L[key] = intOf(inp); ex.update(); });
        }
        const btn = (action, text, label, fn) => {
          const b = el(li, "button", { type: "button", "data-action": action, "aria-label": `${label} layer ${i + 1}` }, text);
          b.addEventListener("click", () => { fn(); buildList(); ex.update(); const nb = list.querySelector(`li[data-layer="${Math.min(i, ex.layers.length - 1)}"] button[data-action="${action}"]`); if (nb) nb.focus(); });
        };
        btn("up", "↑", "move up", () => { if (i > 0) [ex.layers[i - 1], ex.layers[i]] = [ex.layers[i], ex.layers[i - 1]]; });
        btn("down", "↓", "move down", () => { if (i < ex.layers.length - 1) [ex.layers[i + 1], ex.layers[i]] = [ex.layers[i], ex.layers[i + 1]]; });
        btn("remove", "✕", "remove", () => { ex.layers.splice(i, 1); });
      });
    }
    buildList();
    timed(ex, () => {
      const rows = C.receptiveFieldTable(ex.layers);
      const cols = ["layer", "kernel", "stride", "dilation", "padding", "effective_kernel", "jump", "output_jump", "receptive_field", "start", "centre"];
      const t = el(ex.view, "table", { class: "cnnx-table", "data-name": "rf" });
      el(t, "caption", {}, "per layer: jump j_l = ∏_{i<l} s_i, r_l = r_{l−1} + d_l(k_l − 1) j_l, start_l = start_{l−1} − p_l j_l");
      const hr = el(el(t, "thead"), "tr");
      cols.forEach(cn => el(hr, "th", { scope: "col" }, cn));
      const body = el(t, "tbody");
      rows.forEach(r => { const tr = el(body, "tr"); cols.forEach(cn => el(tr, "td", { "data-col": cn }, fmt(r[cn]))); });
      const last = rows.length ? rows[rows.length - 1] : null;
      out(ex.view, "rf", "receptive field of the last layer:", last ? last.receptive_field : 1);
      if (!rows.length) return;
      const lo = Math.min(0, ...rows.map(r => r.start)), hi = Math.max(...rows.map(r => r.start + r.receptive_field)) + 1;
      const width = hi - lo, size = width > 40 ? 10 : 18;
      const svg = d3.select(ex.view).append("svg").attr("class", "cnnx-svg").attr("role", "img")
        .attr("aria-label", "receptive field of output 0 of each layer on the input positions")
        .attr("width", width * size + 70).attr("height", (rows.length + 1) * (size + 4) + 4);
      const xs = v => 60 + (v - lo) * size;
      const cells = d3.range(lo, hi);
      svg.selectAll("rect.in").data(cells).join("rect").attr("class", v => "in cnnx-cell " + (v < 0 ? "pad" : ""))
        .attr("x", v => xs(v)).attr("y", 2).attr("width", size - 1).attr("height", size);
      svg.append("text").attr("x", 2).attr("y", size - 2).attr("font-size", 10).text("input");
      svg.selectAll("g.layer").data(rows).join("g").attr("class", "layer").each(function (r, li) {
        const gg = d3.select(this), y = (li + 1) * (size + 4) + 2;
        gg.append("text").attr("x", 2).attr("y", y + size - 4).attr("font-size", 10).text(`layer ${r.layer}`);
        gg.append("rect").attr("class", "cnnx-bar").attr("x", xs(r.start)).attr("y", y).attr("width", r.receptive_field * size - 1).attr("height", size);
      });
    });
    ex.update();
    return ex;
  }

  /* A computed example of the volume explorer's layer: integer input channels, filters and biases from
   * the seed, and the output volume y = conv(x, w, b) channel by channel (core.js convChannels).
   * x and y are grid tables per channel (x-0, ..., y-0, ...); w and b are <output data-name="w" / "b">. */
  const VOLUME_EXAMPLE_MAX = 16;
  function numericVolume(view, cin, cout, groups, cg, k, g, bias, seed) {
    const box = el(view, "div", { class: "cnnx-example", "data-name": "example" });
    if (Math.max(...g.sizes, ...g.out) > VOLUME_EXAMPLE_MAX) {
      el(box, "p", { class: "cnnx-note" }, `Computed example: shown for inputs and outputs of at most ${VOLUME_EXAMPLE_MAX} × ${VOLUME_EXAMPLE_MAX} (here ${shapeText(g.sizes)} → ${shapeText(g.out)}).`);
      return;
    }
    const nIn = C.prod(g.sizes), nOut = C.prod(g.out), nK = C.prod(g.k);
    const x = C.integers(seed, cin * nIn, 0, 2), w = C.integers(seed + 11, cout * cg * nK, -1, 1);
    const b = bias ? C.integers(seed + 5, cout, -1, 1) : new Array(cout).fill(0);
    const y = C.convChannels(x, w, b, cin, cout, groups, g);
    el(box, "p", { class: "cnnx-note" }, `Computed example (values from the seed): y[l] = b[l] + Σ over the ${cg} input channel${cg > 1 ? "s" : ""} of l's group of x[c] ⋆ w[l, c].`);
    const nest = (flat, shape) => shape.length === 1 ? flat.slice(0, shape[0]) :
      Array.from({ length: shape[0] }, (_, i) => nest(flat.slice(i * flat.length / shape[0], (i + 1) * flat.length / shape[0]), shape.slice(1)));
    const wNested = nest(w, [cout, cg, k, k]);
    const ins = el(box, "div", { class: "cnnx-row" });
    for (let c = 0; c < cin; c++) gridTable(ins, `x-${c}`, `x[${c}]`, x.slice(c * nIn, (c + 1) * nIn), g.sizes);
    const wb = el(box, "div", { class: "cnnx-weights" });
    out(wb, "w", `filters w (${cout}, ${cg}, ${k}, ${k}):`, wNested, wNested.map((f, l) => `w[${l}] = ${JSON.stringify(f)}`).join("; "));
    out(wb, "b", "biases b:", b, JSON.stringify(b));
    const outs = el(box, "div", { class: "cnnx-row" });
    for (let l = 0; l < cout; l++) gridTable(outs, `y-${l}`, `y[${l}]`, y.slice(l * nOut, (l + 1) * nOut), g.out);
  }

  // ---------------------------------------------------------------- 2. multichannel volume (ch04)
  function volume(root) {
    const ex = base(root, "Channels, filters and groups");
    control(ex, ex.form, { name: "cin", label: "input channels C_in", value: 4, min: 1, max: 16 });
    control(ex, ex.form, { name: "n", label: "input size H = W", value: 8, min: 1, max: 64 });
    control(ex, ex.form, { name: "k", label: "kernel k × k", value: 3, min: 1, max: 7 });
    control(ex, ex.form, { name: "cout", label: "filters C_out", value: 6, min: 1, max: 16 });
    control(ex, ex.form, { name: "groups", label: "groups", value: 2, min: 1, max: 16 });
    control(ex, ex.form, { name: "s", label: "stride", value: 1, min: 1, max: 4 });
    control(ex, ex.form, { name: "p", label: "padding", value: 1, min: 0, max: 4 });
    control(ex, ex.form, { name: "bias", label: "bias", options: [["1", "with bias"], ["0", "no bias"]], value: "1" });
    control(ex, ex.form, { name: "seed", label: "example values (seed)", value: 1, min: 0, max: 999 });
    timed(ex, () => {
      const c = ex.controls;
      const cin = intOf(c.cin), n = intOf(c.n), k = intOf(c.k), cout = intOf(c.cout), groups = intOf(c.groups);
      const s = intOf(c.s), p = intOf(c.p), bias = c.bias.value === "1";
      // the checks of cnnmath.conv_macs, in its order
      const bad = msg => { const e = new Error(msg); e.cnnmath = true; throw e; };
      if (![cin, n].every(C.isInt)) bad(`in_shape must be a tuple of ints (channels-first, no batch), got ${C.pyRepr([cin, n, n])}`);
      if (cin < 1 || n < 1) bad(`in_shape must contain positive sizes, got ${C.pyRepr([cin, n, n])}`);
      if (!C.isInt(cout) || cout < 1) bad(`out_channels must be a positive int, got ${cout}`);
      C.intTuple(k, 2, "kernel_size"); C.intTuple(s, 2, "stride");
      C.checkGroups(groups, cin, cout);
      const g = C.outputSize([n, n], [k, k], s, p, 1);
      const shape = [cout, ...g.out], cg = cin / groups, params = C.convParams(cin, cout, [k, k], groups, bias);
      const macs = C.convMacs(g.out, cout, cin, [k, k], groups);
      out(ex.view, "out-shape", "output volume (C_out, H_out, W_out):", shape, "(" + shape.join(", ") + ")");
      out(ex.view, "params", `parameters = C_out · (C_in / groups) · k² ${bias ? "+ C_out" : ""} = ${cout} · ${cg} · ${k * k}${bias ? ` + ${cout}` : ""} =`, params);
      out(ex.view, "macs", `multiply-adds = H_out · W_out · C_out · (C_in / groups) · k² = ${g.out[0]} · ${g.out[1]} · ${cout} · ${cg} · ${k * k} =`, macs);
      out(ex.view, "filter-shape", "each filter (C_in / groups, k, k):", [cg, k, k], `(${cg}, ${k}, ${k})`);
      // picture: input channels, filters and output channels as slabs coloured by group
      const colour = d3.scaleOrdinal(d3.schemeTableau10);
      const slab = 12, gap = 3, h = 60;
      const svg = d3.select(ex.view).append("svg").attr("class", "cnnx-svg").attr("role", "img")
        .attr("aria-label", "input channels, filters and output channels coloured by group")
        .attr("width", 620).attr("height", h + 40 + Math.max(cin, cout) * 0);
      const col = (x0, count, per, label, key) => {
        const gg = svg.append("g").attr("transform", `translate(${x0},20)`);
        gg.append("text").attr("y", -6).attr("font-size", 11).text(label);
        gg.selectAll("rect").data(d3.range(count)).join("rect").attr("class", key)
          .attr("x", i => i * (slab + gap)).attr("y", 0).attr("width", slab).attr("height", h)
          .attr("fill", i => colour(Math.floor(i / per))).attr("opacity", 0.8);
        return x0 + count * (slab + gap) + 30;
      };
      let x0 = col(0, Math.min(cin, 16), cg, `x: ${cin} × ${n} × ${n}`, "in");
      x0 = col(x0, Math.min(cout, 16), cout / groups, `${cout} filters, each ${cg} × ${k} × ${k}`, "filter");
      col(x0, Math.min(cout, 16), cout / groups, `y: ${shape.join(" × ")}`, "outc");
      numericVolume(ex.view, cin, cout, groups, cg, k, g, bias, intOf(c.seed));
    });
    ex.update();
    return ex;
  }

  // ---------------------------------------------------------------- 5. gradient routing (ch07 conv, ch06 max pool)
  function routing(root, pool) {
    const ex = base(root, pool ? "Max-pool gradient routing" : "Convolution gradient routing");
    control(ex, ex.form, { name: "dims", label: "dimensions", options: DIMS, value: pool ? "2" : "1" });
    control(ex, ex.form, { name: "n", label: "input size n", value: pool ? 4 : 7, min: 1, max: 12 });
    control(ex, ex.form, { name: "k", label: "kernel k", value: pool ? 2 : 3, min: 1, max: 5 });
    control(ex, ex.form, { name: "s", label: "stride s", value: 2, min: 1, max: 4 });
    control(ex, ex.form, { name: "p", label: "padding p", value: 0, min: 0, max: 3 });
    if (!pool) control(ex, ex.form, { name: "d", label: "dilation d", value: 1, min: 1, max: 3 });
    control(ex, ex.form, { name: "grad", label: "output gradient", options: [["cell", "1 at the chosen cell"], ["all", "1 at every cell"]], value: "cell" });
    control(ex, ex.form, { name: "seed", label: "values (seed)", value: 1, min: 0, max: 999 });
    ex.cell = 0;
    timed(ex, () => {
      const c = ex.controls, dims = Number(c.dims.value);
      const n = intOf(c.n), k = intOf(c.k), s = intOf(c.s), p = intOf(c.p), d = pool ? 1 : intOf(c.d);
      const nArg = dims === 1 ? n : [n, n];
      const g = pool ? C.poolGeometry(nArg, k, s, p) : C.outputSize(nArg, k, s, p, d);
      const total = C.prod(g.out);
      if (ex.cell >= total) ex.cell = 0;
      const x = pool ? C.integers(intOf(c.seed), C.prod(g.sizes), 0, 3) : C.integers(intOf(c.seed), C.prod(g.sizes), -3, 4);
      const w = pool ? null : C.integers(intOf(c.seed) + 5, C.prod(g.k), -2, 2);
      const all = c.grad.value === "all";
      const dout = new Array(total).fill(0).map((_, f) => (all || f === ex.cell ? 1 : 0));
      const o = C.ndindex(g.out)[ex.cell];
      out(ex.view, "cell", "chosen output-gradient cell:", o, "(" + o.join(", ") + ")");
      out(ex.view, "out-size", "output size:", g.out, shapeText(g.out));
      // the output-gradient grid: one button per cell
      const gt = el(ex.view, "table", { class: "cnnx-grid cnnx-buttons", "data-name": "dout", "data-shape": g.out.join(",") });
      el(gt, "caption", {}, "output gradient G (choose a cell)");
      const rows = dims === 1 ? 1 : g.out[0], cols = g.out[dims - 1], tb = el(gt, "tbody");
      for (let r = 0; r < rows; r++) {
        const tr = el(tb, "tr");
        for (let cc = 0; cc < cols; cc++) {
          const f = r * cols + cc, td = el(tr, "td", { "data-index": f, class: f === ex.cell ? "sel" : null });
          const b = el(td, "button", { type: "button", "data-cell": f, "aria-pressed": String(f === ex.cell),
            "aria-label": `output cell ${C.ndindex(g.out)[f].join(", ")}` }, fmt(dout[f]));
          b.addEventListener("click", () => { ex.cell = f; ex.update(); const nb = ex.view.querySelector(`button[data-cell="${f}"]`); if (nb) nb.focus(); });
        }
      }
      const tabs = el(ex.view, "div", { class: "cnnx-row" });
      if (pool) {
        const arg = C.poolArgmax(x, o, g);
        const hit = arg.inPadding ? -1 : C.flat(arg.pos, g.sizes);
        const win = new Set(C.windowOf(o, g).filter(t => !t.inPadding).map(t => C.flat(t.pos, g.sizes)));
        gridTable(tabs, "x", "input x (blue: the window, orange: its first maximum)", x, g.sizes, fi => fi === hit ? "sel" : (win.has(fi) ? "hit" : ""));
        gridTable(tabs, "y", "max_pool(x)", C.maxPool(x, g), g.out, fi => fi === ex.cell ? "sel" : "");
        gridTable(tabs, "dx", "dL/dX", C.maxPoolBackward(dout, x, g), g.sizes, fi => fi === hit ? "sel" : "");
      } else {
        const win = C.windowOf(o, g);
        const hitX = new Set(win.filter(t => !t.inPadding).map(t => C.flat(t.pos, g.sizes)));
        const hitW = new Set(win.filter(t => !t.inPadding).map(t => C.flat(t.tap, g.k)));
        const { dx, dw } = C.convBackward(dout, x, w, g);
        gridTable(tabs, "x", "input x", x, g.sizes, fi => hitX.has(fi) ? "hit" : "");
        gridTable(tabs, "w", "kernel w", w, g.k, fj => hitW.has(fj) ? "hit" : "");
        const t2 = el(ex.view, "div", { class: "cnnx-row" });
        gridTable(t2, "dx", "dL/dX (blue: cells the chosen gradient reaches)", dx, g.sizes, fi => hitX.has(fi) ? "hit" : "");
        gridTable(t2, "dw", "dL/dW (blue: taps it reaches)", dw, g.k, fj => hitW.has(fj) ? "hit" : "");
      }
    });
    ex.update();
    return ex;
  }

  const KINDS = { "conv-arith": convArith, "transpose": transposeExplorer, "rf-stack": rfStack, "volume": volume,
    "conv-routing": r => routing(r, false), "pool-routing": r => routing(r, true) };
  function start() {
    document.querySelectorAll("div.cnnx[data-explorer]").forEach(root => {
      if (root.classList.contains("cnnx-live")) return;
      const make = KINDS[root.getAttribute("data-explorer")];
      if (make) make(root);
    });
  }
  window.CnnExplorers = { start, KINDS };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
