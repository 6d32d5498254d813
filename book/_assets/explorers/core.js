/* The one arithmetic module of the explorers (window.CnnCore).
 *
 * A JavaScript twin of the parts of cnnmath the explorers show, with cnnmath's conventions
 * (cross-correlation, 0-based indices, dilation counted from 1, (before, after) padding pairs,
 * "same" split as before = total // 2) and cnnmath's error reasons word for word.
 * tests/test_explorers.py checks everything this module renders against cnnmath itself.
 *
 * Arrays are flat, row-major, with a shape array ([n] for 1D, [h, w] for 2D).
 */
(function () {
  "use strict";

  function isInt(v) { return typeof v === "number" && Number.isInteger(v); }
  function pyRepr(v) {                       // Python's repr of an int or a tuple of ints / tuples
    if (Array.isArray(v)) {
      const items = v.map(pyRepr);
      return items.length === 1 ? "(" + items[0] + ",)" : "(" + items.join(", ") + ")";
    }
    if (typeof v === "string") return "'" + v + "'";
    return String(v);
  }
  function fail(msg) { const e = new Error(msg); e.cnnmath = true; throw e; }
  function prod(a) { return a.reduce((p, v) => p * v, 1); }

  // int_tuple: value is an int (same in every dimension) or an array of ints
  function intTuple(value, ndim, name, minimum) {
    if (minimum === undefined) minimum = 1;
    const word = minimum === 1 ? "positive" : (minimum === 0 ? "non-negative" : ">= " + minimum);
    let values;
    if (isInt(value)) values = new Array(ndim).fill(value);
    else if (Array.isArray(value) && value.every(isInt)) {
      if (value.length !== ndim) fail(`${name} must be an int or a tuple of ${ndim} ints (one per spatial dimension), got ${pyRepr(value)}`);
      values = value.slice();
    } else fail(`${name} must be a ${word} int or a tuple of ${ndim} ints, got ${value}`);
    for (const v of values) if (v < minimum) fail(`${name} must be a ${word} int, got ${pyRepr(value)}`);
    return values;
  }

  /* resolve_padding: padding is an int, an array of per-dimension [before, after] pairs,
   * or "valid" / "same" / "full". Returns per-dimension [before, after] pairs. */
  function resolvePadding(padding, ndim, k, s, d) {
    if (typeof padding === "string") {
      const eff = k.map((ki, i) => d[i] * (ki - 1));
      if (padding === "valid") return eff.map(() => [0, 0]);
      if (padding === "same") {
        if (s.some(v => v !== 1)) fail(`padding="same" requires stride 1 in every dimension, got stride=${pyRepr(s)}`);
        return eff.map(e => [Math.floor(e / 2), e - Math.floor(e / 2)]);
      }
      if (padding === "full") return eff.map(e => [e, e]);
      fail(`padding must be an int, a tuple, or one of "valid", "same", "full", got ${pyRepr(padding)}`);
    }
    if (isInt(padding)) {
      if (padding < 0) fail(`padding must be a non-negative int, got ${padding}`);
      return new Array(ndim).fill(0).map(() => [padding, padding]);
    }
    if (!Array.isArray(padding) || padding.length !== ndim) fail(`padding must have one entry per spatial dimension (${ndim}), got ${pyRepr(padding)}`);
    const pairs = padding.map(p => isInt(p) ? [p, p] : p.slice());
    if (pairs.some(pr => pr.length !== 2 || !pr.every(isInt))) fail(`padding entries must be ints or (before, after) pairs of ints, got ${pyRepr(padding)}`);
    if (pairs.some(pr => pr[0] < 0 || pr[1] < 0)) fail(`padding must be non-negative, got ${pyRepr(padding)}`);
    return pairs;
  }

  // padded_output_size
  function paddedOutputSize(sizes, k, s, pads, d, what) {
    return sizes.map((n, i) => {
      const span = d[i] * (k[i] - 1) + 1, padded = n + pads[i][0] + pads[i][1];
      if (span > padded) fail(`${what || "kernel_size"}=${pyRepr(k)} (dilated extent ${span}) is larger than the padded input of size ${padded} (input ${n} + padding ${pads[i][0]}+${pads[i][1]})`);
      return Math.floor((padded - span) / s[i]) + 1;
    });
  }

  /* output_size(n, kernel_size, stride, padding, dilation): n is an int (1D) or an array.
   * Returns {out, pads, k, s, d, sizes, span, padded} (out per dimension). */
  function outputSize(n, kernel, stride, padding, dilation) {
    const sizes = Array.isArray(n) ? n.slice() : [n];
    if (!sizes.every(isInt)) fail(`n must be an int or a tuple of ints, got ${pyRepr(n)}`);
    for (const v of sizes) if (v < 1) fail(`n must be a positive int, got ${pyRepr(n)}`);
    const ndim = sizes.length;
    const k = intTuple(kernel, ndim, "kernel_size");
    const s = intTuple(stride, ndim, "stride");
    const d = intTuple(dilation, ndim, "dilation");
    const pads = resolvePadding(padding, ndim, k, s, d);
    const out = paddedOutputSize(sizes, k, s, pads, d);
    return { sizes, k, s, d, pads, out,
      span: k.map((ki, i) => d[i] * (ki - 1) + 1), padded: sizes.map((v, i) => v + pads[i][0] + pads[i][1]) };
  }

  // transposed_output_size (padding: an int or per-dimension pairs, never a string)
  function transposedOutputSize(n, kernel, stride, padding, outputPadding, dilation) {
    const sizes = Array.isArray(n) ? n.slice() : [n];
    const ndim = sizes.length;
    const k = intTuple(kernel, ndim, "kernel_size");
    const s = intTuple(stride, ndim, "stride");
    const d = intTuple(dilation, ndim, "dilation");
    const op = intTuple(outputPadding, ndim, "output_padding", 0);
    if (typeof padding === "string") fail(`padding of a transposed convolution must be ints, got ${pyRepr(padding)}`);
    const pads = resolvePadding(padding, ndim, k, s, d);
    op.forEach((o, i) => {
      if (o >= s[i] && o >= d[i]) fail(`output_padding must be smaller than stride or dilation, got output_padding=${pyRepr(outputPadding)} with stride=${pyRepr(stride)}, dilation=${pyRepr(dilation)}`);
    });
    const out = sizes.map((ni, i) => {
      const size = (ni - 1) * s[i] - pads[i][0] - pads[i][1] + d[i] * (k[i] - 1) + op[i] + 1;
      if (size < 1) fail(`transposed convolution output would be empty (size ${size}) for n=${pyRepr(n)}, kernel_size=${pyRepr(kernel)}, stride=${pyRepr(stride)}, padding=${pyRepr(padding)}`);
      return size;
    });
    return { sizes, k, s, d, pads, op, out };
  }

  // multi-index helpers (row-major)
  function ndindex(shape) {
    const total = prod(shape), idx = [];
    for (let f = 0; f < total; f++) {
      const m = new Array(shape.length); let r = f;
      for (let a = shape.length - 1; a >= 0; a--) { m[a] = r % shape[a]; r = Math.floor(r / shape[a]); }
      idx.push(m);
    }
    return idx;
  }
  function flat(m, shape) { let f = 0; for (let a = 0; a < shape.length; a++) f = f * shape[a] + m[a]; return f; }
  function inside(m, shape) { return m.every((v, a) => v >= 0 && v < shape[a]); }

  /* The input position (unpadded coordinates, may lie in the padding) that kernel tap j reads
   * for output o: o s + j d - p_before, per dimension. */
  function tapPosition(o, j, g) { return o.map((oi, a) => oi * g.s[a] + j[a] * g.d[a] - g.pads[a][0]); }

  // one window of conv: list of {tap, pos, inPadding}
  function windowOf(o, g) {
    return ndindex(g.k).map(j => { const pos = tapPosition(o, j, g); return { tap: j, pos, inPadding: !inside(pos, g.sizes) }; });
  }

  /* conv (single channel, cross-correlation): y[o] = sum_j xp[o s + j d] w[j]; g from outputSize */
  function conv(x, w, g) {
    const y = new Array(prod(g.out)).fill(0);
    ndindex(g.out).forEach((o, f) => {
      let acc = 0;
      for (const t of windowOf(o, g)) if (!t.inPadding) acc += x[flat(t.pos, g.sizes)] * w[flat(t.tap, g.k)];
      y[f] = acc;
    });
    return y;
  }

  /* conv_backward for one channel: dx[o s + j d - p] += dout[o] w[j], dw[j] += dout[o] xp[o s + j d] */
  function convBackward(dout, x, w, g) {
    const dx = new Array(prod(g.sizes)).fill(0), dw = new Array(prod(g.k)).fill(0);
    ndindex(g.out).forEach((o, f) => {
      const gval = dout[f];
      if (gval === 0) return;
      for (const t of windowOf(o, g)) {
        if (t.inPadding) continue;  // a tap on the padding reads a zero: nothing flows to dw or dx
        dx[flat(t.pos, g.sizes)] += gval * w[flat(t.tap, g.k)];
        dw[flat(t.tap, g.k)] += gval * x[flat(t.pos, g.sizes)];
      }
    });
    return { dx, dw };
  }

  /* conv_transpose (single channel), the scatter form: y[i s + j d - p_before] += x[i] w[j] */
  function convTranspose(x, w, g) {
    const y = new Array(prod(g.out)).fill(0), sources = g.out.map(() => null);
    const src = new Array(prod(g.out)).fill(0).map(() => []);
    ndindex(g.sizes).forEach((i, fi) => {
      ndindex(g.k).forEach((j, fj) => {
        const o = i.map((ii, a) => ii * g.s[a] + j[a] * g.d[a] - g.pads[a][0]);
        if (!inside(o, g.out)) return;
        const fo = flat(o, g.out);
        y[fo] += x[fi] * w[fj];
        if (!src[fo].includes(fi)) src[fo].push(fi);
      });
    });
    void sources;
    return { y, sources: src.map(l => l.sort((a, b) => a - b)) };
  }

  /* The convolution view of conv_transpose: insert s - 1 zeros between inputs, pad with
   * q = d (k - 1) - p_before before (a negative q crops), and read with the flipped kernel
   * at dilation d. Returns z of shape out + d (k - 1) and the flipped kernel. */
  function zeroInserted(x, w, g) {
    const zshape = g.out.map((m, a) => m + g.d[a] * (g.k[a] - 1));
    const q = g.k.map((k, a) => g.d[a] * (k - 1) - g.pads[a][0]);
    const z = new Array(prod(zshape)).fill(0);
    ndindex(g.sizes).forEach((i, fi) => {
      const t = i.map((ii, a) => ii * g.s[a] + q[a]);
      if (inside(t, zshape)) z[flat(t, zshape)] = x[fi];
    });
    const wf = w.slice().reverse();   // row-major reversal flips every axis
    return { z, zshape, q, wflip: wf };
  }

  /* max_pool_backward for one channel: each window's gradient goes to its first maximum in
   * row-major window order (padding is -inf and never wins); overlapping windows add up. */
  function poolGeometry(n, kernel, stride, padding) {
    const sizes = Array.isArray(n) ? n.slice() : [n];
    const ndim = sizes.length;
    const k = intTuple(kernel, ndim, "kernel_size");
    const s = intTuple(stride, ndim, "stride");
    const p = intTuple(padding, ndim, "padding", 0);
    p.forEach((pi, a) => {
      if (pi > Math.floor(k[a] / 2)) fail(`padding must be at most half of kernel_size (kernel_size // 2 = ${Math.floor(k[a] / 2)}), got padding=${pyRepr(padding)} with kernel_size=${pyRepr(kernel)}`);
    });
    const pads = p.map(v => [v, v]), d = new Array(ndim).fill(1);
    const out = paddedOutputSize(sizes, k, s, pads, d);
    return { sizes, k, s, d, pads, out };
  }
  function poolArgmax(x, o, g) {
    let best = -Infinity, where = null;
    for (const t of windowOf(o, g)) {
      const v = t.inPadding ? -Infinity : x[flat(t.pos, g.sizes)];
      if (where === null || v > best) { best = v; where = t; }
    }
    return where;
  }
  function maxPool(x, g) { return ndindex(g.out).map(o => { const t = poolArgmax(x, o, g); return t.inPadding ? -Infinity : x[flat(t.pos, g.sizes)]; }); }
  function maxPoolBackward(dout, x, g) {
    const dx = new Array(prod(g.sizes)).fill(0);
    ndindex(g.out).forEach((o, f) => {
      const t = poolArgmax(x, o, g);
      if (!t.inPadding) dx[flat(t.pos, g.sizes)] += dout[f];
    });
    return dx;
  }

  /* receptive_field_table: layers = [{kernel, stride, dilation, padding}], input first */
  function receptiveFieldTable(layers) {
    const keys = ["kernel", "stride", "dilation", "padding"], mins = [1, 1, 1, 0];
    let r = 1, jump = 1, start = 0;
    return layers.map((layer, i) => {
      keys.forEach((name, a) => {
        const v = layer[name], word = mins[a] ? "positive" : "non-negative";
        if (!isInt(v) || v < mins[a]) fail(`layers[${i}] ${name} must be a ${word} int, got ${v}`);
      });
      const { kernel: k, stride: s, dilation: d, padding: p } = layer;
      const eff = d * (k - 1) + 1;
      r = r + (eff - 1) * jump;
      start = start - p * jump;
      const row = { layer: i + 1, kernel: k, stride: s, dilation: d, padding: p, effective_kernel: eff,
        jump, output_jump: jump * s, receptive_field: r, start, centre: start + (r - 1) / 2 };
      jump *= s;
      return row;
    });
  }

  // accounting: conv_params and conv_macs (square kernels, 2D)
  function checkGroups(groups, cin, cout) {
    if (!isInt(groups) || groups < 1) fail(`groups must be a positive int, got ${groups}`);
    if (cin % groups) fail(`groups=${groups} must divide the input channels C_in=${cin}`);
    if (cout % groups) fail(`groups=${groups} must divide the output channels C_out=${cout}`);
  }
  function convParams(cin, cout, k, groups, bias) { return cout * (cin / groups) * prod(k) + (bias ? cout : 0); }
  function convMacs(outSpatial, cout, cin, k, groups) { return prod(outSpatial) * cout * (cin / groups) * prod(k); }

  /* conv with channels and groups (one image, no batch), as cnnmath.conv: x flat (C_in, *sizes),
   * w flat (C_out, C_in / groups, *k), b (C_out); output channel l of group q = floor(l / (C_out / groups))
   * is b[l] + sum over the group's input channels c of conv(x[c], w[l, c - q C_in / groups]). */
  function convChannels(x, w, b, cin, cout, groups, g) {
    checkGroups(groups, cin, cout);
    const cg = cin / groups, per = cout / groups, nIn = prod(g.sizes), nK = prod(g.k), nOut = prod(g.out);
    const y = new Array(cout * nOut).fill(0);
    for (let l = 0; l < cout; l++) {
      const q = Math.floor(l / per);
      for (let f = 0; f < nOut; f++) y[l * nOut + f] = b[l];
      for (let cc = 0; cc < cg; cc++) {
        const c = q * cg + cc;
        const part = conv(x.slice(c * nIn, (c + 1) * nIn), w.slice((l * cg + cc) * nK, (l * cg + cc + 1) * nK), g);
        for (let f = 0; f < nOut; f++) y[l * nOut + f] += part[f];
      }
    }
    return y;
  }

  /* Small reproducible integer data: a linear congruential generator from a seed, values in [lo, hi] */
  function integers(seed, count, lo, hi) {
    let st = (Math.abs(Math.floor(seed)) * 2654435761 + 12345) >>> 0;
    const out = [];
    for (let i = 0; i < count; i++) {
      st = (Math.imul(st, 1664525) + 1013904223) >>> 0;
      out.push(lo + ((st >>> 8) % (hi - lo + 1)));
    }
    return out;
  }

  window.CnnCore = { isInt, pyRepr, prod, intTuple, resolvePadding, paddedOutputSize, outputSize,
    transposedOutputSize, ndindex, flat, inside, windowOf, tapPosition, conv, convBackward, convTranspose,
    zeroInserted, poolGeometry, poolArgmax, maxPool, maxPoolBackward, receptiveFieldTable, checkGroups,
    convParams, convMacs, convChannels, integers };
})();
