"""The interactive explorers compute what cnnmath computes, in a real browser, offline.

Same clean build (tests/book_build.py), local server and Debian Chromium as tests/test_website.py.
One page load per explorer; on it, at least 50 random settings are made through the explorer's own
controls (Playwright fill / select_option / click, which fire the input and change events a reader's
typing fires), and the numbers and grids the page shows (read from the DOM: <output data-value>,
<table class="cnnx-grid"> cells, the error line) are compared with cnnmath called here on the same
settings and on the input values the page shows. Impossible settings must show cnnmath's own reason.
Every control has a label and answers the keyboard; no request leaves the site; no console error.
"""
from __future__ import annotations

import random
from urllib.parse import urlparse

import numpy as np
import pytest

import cnnmath
from cnnmath import accounting
from tests.book_build import book_build  # noqa: F401
from tests.test_website import PageProbe, browser, site  # noqa: F401  (shared fixtures)

pytestmark = [pytest.mark.slow, pytest.mark.browser]

N_SETTINGS = 60

STATE_JS = """(sel) => {
  const r = document.querySelector(sel);
  const o = {grids: {}, outs: {}, error: null, rf: null,
             renders: Number(r.getAttribute('data-renders') || 0)};
  r.querySelectorAll('table.cnnx-grid').forEach(t => {
    o.grids[t.dataset.name] = {shape: t.dataset.shape.split(',').map(Number),
      values: Array.from(t.querySelectorAll('td')).map(td => td.textContent.trim()),
      classes: Array.from(t.querySelectorAll('td')).map(td => td.className)};
  });
  r.querySelectorAll('output[data-name]').forEach(e => { o.outs[e.dataset.name] = JSON.parse(e.dataset.value); });
  r.querySelectorAll('[data-name=formula]').forEach(e => { o.outs.formula = e.textContent; });
  const err = r.querySelector('[data-name=error]');
  o.error = err ? err.textContent : null;
  o.parts = Array.from(r.querySelectorAll('svg[data-name^="part-"]')).map(e => ({
      name: e.dataset.name, offset: e.dataset.offset.split(',').map(Number),
      step: e.dataset.step.split(',').map(Number), values: JSON.parse(e.dataset.values),
      cells: e.querySelectorAll('rect.cnnx-cell').length}));
  const rf = r.querySelector('table[data-name=rf]');
  if (rf) o.rf = Array.from(rf.querySelectorAll('tbody tr')).map(tr =>
      Object.fromEntries(Array.from(tr.querySelectorAll('td')).map(td => [td.dataset.col, td.textContent.trim()])));
  return o;
}"""

PAGES = {
    "conv-arith": "book/05-stride-padding-dilation.html",
    "rf-stack": "book/09-receptive-field.html",
    "transpose": "book/08-transposed-convolution.html",
    "volume": "book/04-conv2d-multichannel.html",
    "pool-routing": "book/06-pooling.html",
    "conv-routing": "book/07-backpropagation.html",
}


class Explorer:
    """One explorer on its page: set controls, read state."""

    def __init__(self, probe: PageProbe, name: str):
        self.probe, self.page, self.name = probe, probe.page, name
        self.sel = f'div.cnnx[data-explorer="{name}"]'
        self.root = self.page.locator(self.sel)
        assert self.root.count() == 1, f"{name}: expected one explorer block on {PAGES[name]}"

    def set(self, **values):
        for name, value in values.items():
            ctl = self.root.locator(f'[data-control="{name}"]').first
            if ctl.evaluate("e => e.tagName") == "SELECT":
                ctl.select_option(str(value))
            else:
                ctl.fill(str(value))

    def state(self) -> dict:
        return self.page.evaluate(STATE_JS, self.sel)


def grid(state, name) -> np.ndarray:
    g = state["grids"][name]
    vals = [float("-inf") if v == "-inf" else float(v) for v in g["values"]]
    return np.array(vals).reshape(g["shape"])


@pytest.fixture(scope="module")
def open_explorer(site, browser):  # noqa: F811
    probes = []

    def _open(name):
        probe = PageProbe(browser, site)
        probes.append(probe)
        probe.open(PAGES[name])
        return Explorer(probe, name)

    yield _open
    for probe in probes:
        probe.close()


def check_page_health(ex: Explorer):
    """Labels, keyboard, offline, console: the checks every explorer shares."""
    unlabelled = ex.page.evaluate("""(sel) => Array.from(document.querySelectorAll(sel + ' input, ' + sel + ' select'))
        .filter(e => !(e.id && document.querySelector('label[for="' + e.id + '"]') &&
                       document.querySelector('label[for="' + e.id + '"]').textContent.trim()))
        .map(e => e.outerHTML.slice(0, 80))""", ex.sel)
    assert not unlabelled, f"{ex.name}: controls without a label: {unlabelled}"
    nameless = ex.page.evaluate("""(sel) => Array.from(document.querySelectorAll(sel + ' button'))
        .filter(b => !(b.getAttribute('aria-label') || b.textContent.trim())).length""", ex.sel)
    assert nameless == 0, f"{ex.name}: {nameless} buttons without an accessible name"
    hosts = {urlparse(u).hostname for u, _ in ex.probe.responses}
    assert hosts <= {"127.0.0.1"}, f"{ex.name}: requests left the site: {hosts}"
    assert not ex.probe.failed, f"{ex.name}: failed requests {ex.probe.failed[:5]}"
    assert not ex.probe.console_errors, f"{ex.name}: console errors {ex.probe.console_errors[:5]}"


def check_keyboard(ex: Explorer, control: str, reset: str):
    """Focus a number control, press ArrowUp: its value goes up by one and the explorer re-renders."""
    ex.set(**{control: reset})
    before = ex.state()["renders"]
    ctl = ex.root.locator(f'[data-control="{control}"]').first
    ctl.focus()
    ex.page.keyboard.press("ArrowUp")
    assert ctl.input_value() == str(int(reset) + 1), f"{ex.name}: ArrowUp on {control} did not step it"
    assert ex.state()["renders"] > before, f"{ex.name}: ArrowUp on {control} did not re-render"
    sel = ex.root.locator("select").first
    if sel.count():
        old = sel.input_value()
        sel.focus()
        ex.page.keyboard.press("ArrowDown" if sel.evaluate("s => s.selectedIndex < s.options.length - 1") else "ArrowUp")
        assert sel.input_value() != old, f"{ex.name}: the keyboard did not change a <select>"


def expect_error(state, exc, what):
    assert state["error"] == str(exc), f"{what}: page says {state['error']!r}, cnnmath says {str(exc)!r}"


def check_cases(valid, invalid, name, min_invalid=3):
    assert valid >= 25 and invalid >= min_invalid, f"{name}: too few valid ({valid}) / invalid ({invalid}) settings drawn"


# ------------------------------------------------------------------------------------------------

def test_conv_arithmetic_explorer(open_explorer):
    """ch05: output size, padding, conv output and window equal cnnmath's for 60 random settings."""
    ex = open_explorer("conv-arith")
    rng = random.Random(5)
    modes = ["int", "pair", "valid", "same", "full"]
    valid = invalid = 0
    for i in range(N_SETTINGS):
        dims, mode = rng.choice([1, 2]), modes[i % 5]
        n, k, s, d = rng.randint(1, 8), rng.randint(1, 5), rng.choice([1, 1, 2, 3]), rng.choice([1, 1, 2])
        p, pa, cell, seed = rng.randint(0, 3), rng.randint(0, 3), rng.randint(0, 20), rng.randint(0, 99)
        ex.set(dims=dims, pmode=mode, n=n, k=k, s=s, d=d, cell=cell, seed=seed)
        if mode in ("int", "pair"):  # the padding fields are disabled for the named modes
            ex.set(p=p, **({"pa": pa} if mode == "pair" else {}))
        st = ex.state()
        padding = {"int": p, "pair": tuple((p, pa) for _ in range(dims))}.get(mode, mode)
        n_arg = n if dims == 1 else (n, n)
        what = f"setting {i}: dims={dims} n={n} k={k} s={s} padding={padding!r} d={d}"
        try:
            size = cnnmath.output_size(n_arg, k, s, padding, d)
        except ValueError as exc:
            expect_error(st, exc, what)
            invalid += 1
            continue
        valid += 1
        assert st["error"] is None, f"{what}: unexpected error {st['error']}"
        expected = [size] if dims == 1 else list(size)
        assert st["outs"]["out-size"] == expected, what
        assert st["outs"]["formula"].endswith(f"= {expected[0]}"), f"{what}: {st['outs']['formula']}"
        x, w, y = grid(st, "x"), grid(st, "w"), grid(st, "y")
        assert x.shape == (n,) * dims and w.shape == (k,) * dims, what
        ref = cnnmath.conv(x[None, None], w[None, None], stride=s, padding=padding, dilation=d)[0, 0]
        np.testing.assert_array_equal(y, ref, err_msg=what)
        # the highlighted input cells are those the chosen output reads (cnnmath's routing of a one-hot dout)
        c = min(cell, y.size - 1)
        onehot = np.zeros((1, 1) + y.shape)
        onehot.reshape(-1)[c] = 1
        reach = cnnmath.conv_backward(onehot, x[None, None], np.ones_like(w)[None, None], stride=s,
                                      padding=padding, dilation=d)[0][0, 0]
        shown = np.array(["hit" in cl for cl in st["grids"]["x"]["classes"]]).reshape(x.shape)
        np.testing.assert_array_equal(shown, reach != 0, err_msg=f"{what}: window of cell {c}")
        # the (before, after) pairs shown are the padding cnnmath applies for this mode
        pairs = tuple(tuple(pr) for pr in st["outs"]["padding"])
        np.testing.assert_array_equal(
            cnnmath.conv(x[None, None], w[None, None], stride=s, padding=pairs, dilation=d)[0, 0], ref,
            err_msg=f"{what}: shown padding {pairs}")
    check_cases(valid, invalid, "conv-arith")
    check_keyboard(ex, "k", "2")
    check_page_health(ex)


def test_receptive_field_explorer(open_explorer):
    """ch09: after 60 random edits (add, remove, reorder, set k/s/d/p) the table equals receptive_field_table."""
    ex = open_explorer("rf-stack")
    rng = random.Random(9)
    keys = ["kernel", "stride", "dilation", "padding"]
    model = [{key: int(ex.root.locator(f'li[data-layer="{i}"] [data-control="{key}"]').input_value()) for key in keys}
             for i in range(ex.root.locator("li[data-layer]").count())]
    ops = {"add": 0, "remove": 0, "up": 0, "down": 0, "set": 0}
    for step in range(N_SETTINGS):
        op = rng.choice(["add", "remove", "up", "down", "set", "set", "set"]) if model else "add"
        if op == "add" and len(model) > 7:
            op = "remove"
        if op == "add":
            ex.root.locator('button[data-action="add"]').click()
            model.append({"kernel": 3, "stride": 1, "dilation": 1, "padding": 0})
        elif op in ("remove", "up", "down"):
            i = rng.randrange(len(model))
            btn = ex.root.locator(f'li[data-layer="{i}"] button[data-action="{op}"]')
            if step % 2:
                btn.click()
            else:  # the keyboard route: focus and Enter
                btn.focus()
                ex.page.keyboard.press("Enter")
            if op == "remove":
                model.pop(i)
            elif op == "up" and i > 0:
                model[i - 1], model[i] = model[i], model[i - 1]
            elif op == "down" and i < len(model) - 1:
                model[i + 1], model[i] = model[i], model[i + 1]
        else:
            i, key = rng.randrange(len(model)), rng.choice(keys)
            value = rng.randint(1, 5) if key != "padding" else rng.randint(0, 3)
            ex.root.locator(f'li[data-layer="{i}"] [data-control="{key}"]').fill(str(value))
            model[i][key] = value
        ops[op] += 1
        st = ex.state()
        shown_layers = [{key: int(ex.root.locator(f'li[data-layer="{j}"] [data-control="{key}"]').input_value())
                         for key in keys} for j in range(ex.root.locator("li[data-layer]").count())]
        assert shown_layers == model, f"step {step} ({op}): controls show {shown_layers}, expected {model}"
        table = cnnmath.receptive_field_table([(m["kernel"], m["stride"], m["dilation"], m["padding"]) for m in model])
        assert len(st["rf"]) == len(table), f"step {step}: {len(st['rf'])} rows for {len(table)} layers"
        for row, ref in zip(st["rf"], table):
            for col, val in ref.as_dict().items():
                assert float(row[col]) == float(val), f"step {step}: layer {ref.layer} {col} shows {row[col]}, cnnmath {val}"
        assert st["outs"]["rf"] == (table[-1].receptive_field if table else 1)
    assert all(v >= 3 for v in ops.values()), f"too few of some edit: {ops}"
    if not model:
        ex.root.locator('button[data-action="add"]').click()
    check_keyboard(ex, "kernel", "2")
    check_page_health(ex)


def check_scatter(st, x, w, y, s, p, op, d, what):
    """The scatter view: one picture per input sample i holding x[i] * w placed at i s - p (taps d apart,
    cropped to the output); each equals cnnmath.conv_transpose of x[i] alone, and their sum is y."""
    parts = sorted(st["parts"], key=lambda part: int(part["name"].split("-")[1]))
    assert [int(part["name"].split("-")[1]) for part in parts] == list(range(x.size)), f"{what}: one picture per input"
    total = np.zeros_like(y)
    for fi, part in enumerate(parts):
        index = np.unravel_index(fi, x.shape)
        np.testing.assert_array_equal(np.array(part["values"]).reshape(w.shape), x[index] * w,
                                      err_msg=f"{what}: values of input {index}'s copy")
        placed = np.zeros_like(y)
        for j in np.ndindex(w.shape):
            at = tuple(o + jj * st_ for o, jj, st_ in zip(part["offset"], j, part["step"]))
            if all(0 <= a < m for a, m in zip(at, y.shape)):
                placed[at] += part["values"][int(np.ravel_multi_index(j, w.shape))]
        alone = np.zeros_like(x)
        alone[index] = x[index]
        ref = cnnmath.conv_transpose(alone[None, None], w[None, None], stride=s, padding=p,
                                     output_padding=op, dilation=d)[0, 0]
        np.testing.assert_array_equal(placed, ref, err_msg=f"{what}: input {index}'s copy as placed")
        inside = sum(all(0 <= o + jj * st_ < m for o, jj, st_, m in zip(part["offset"], j, part["step"], y.shape))
                     for j in np.ndindex(w.shape))
        assert part["cells"] == inside, f"{what}: input {index}'s picture draws {part['cells']} cells, {inside} land"
        total += placed
    np.testing.assert_array_equal(total, y, err_msg=f"{what}: the copies do not add up to the output")


def test_transposed_convolution_explorer(open_explorer):
    """ch08: size, output, zero-insertion view and sources equal cnnmath's for 60 random settings."""
    ex = open_explorer("transpose")
    rng = random.Random(8)
    valid = invalid = scatter = scatter_2d = 0
    for i in range(N_SETTINGS):
        dims, view = rng.choice([1, 1, 2]), ("conv", "scatter")[i % 2]
        n, k, s, p = rng.randint(1, 5), rng.randint(1, 4), rng.randint(1, 3), rng.randint(0, 3)
        op, d, cell, seed = rng.choice([0, 0, 1, 2]), rng.choice([1, 1, 2]), rng.randint(0, 12), rng.randint(0, 99)
        ex.set(dims=dims, view=view, n=n, k=k, s=s, p=p, op=op, d=d, cell=cell, seed=seed)
        st = ex.state()
        n_arg = n if dims == 1 else (n, n)
        what = f"setting {i}: dims={dims} n={n} k={k} s={s} p={p} output_padding={op} d={d}"
        try:
            size = cnnmath.transposed_output_size(n_arg, k, s, p, op, d)
        except ValueError as exc:
            expect_error(st, exc, what)
            invalid += 1
            continue
        valid += 1
        assert st["error"] is None, f"{what}: unexpected error {st['error']}"
        expected = [size] if dims == 1 else list(size)
        assert st["outs"]["out-size"] == expected, what
        x, w, y = grid(st, "x"), grid(st, "w"), grid(st, "y")
        ref = cnnmath.conv_transpose(x[None, None], w[None, None], stride=s, padding=p, output_padding=op, dilation=d)[0, 0]
        np.testing.assert_array_equal(y, ref, err_msg=what)
        c = min(cell, y.size - 1)
        sources = [fi for fi in range(x.size) if cnnmath.conv_transpose(
            np.eye(x.size)[fi].reshape((1, 1) + x.shape), np.ones_like(w)[None, None], stride=s, padding=p,
            output_padding=op, dilation=d)[0, 0].reshape(-1)[c] != 0]
        assert st["outs"]["sources"] == sources, f"{what}: sources of output {c}"
        if view == "conv":
            z, wf = grid(st, "z"), grid(st, "wflip")
            np.testing.assert_array_equal(wf, np.flip(w), err_msg=what)
            # zero insertion: x at multiples of s, shifted by q = d (k - 1) - p (cropped when negative)
            q = d * (k - 1) - p
            up = np.zeros(((n - 1) * s + 1,) * dims)
            up[(slice(None, None, s),) * dims] = x
            big = np.pad(up, [(max(q, 0), max(q, 0) + op + k * d)] * dims)
            expect_z = big[(slice(max(-q, 0), max(-q, 0) + z.shape[0]),) * dims]
            np.testing.assert_array_equal(z, expect_z, err_msg=f"{what}: zero-inserted input")
            np.testing.assert_array_equal(cnnmath.conv(z[None, None], wf[None, None], dilation=d)[0, 0], y, err_msg=what)
            assert not st["parts"], f"{what}: scatter pictures in the convolution view"
        else:
            check_scatter(st, x, w, y, s, p, op, d, what)
            scatter += 1
            scatter_2d += dims == 2
    check_cases(valid, invalid, "transpose")
    assert scatter >= 15 and scatter_2d >= 4, f"only {scatter} valid settings in the scatter view ({scatter_2d} in 2D)"
    check_keyboard(ex, "n", "2")
    check_page_health(ex)


def test_volume_explorer(open_explorer):
    """ch04: output volume, parameters and multiply-adds equal cnnmath.accounting's for 60 random settings."""
    ex = open_explorer("volume")
    rng = random.Random(4)
    valid = invalid = examples = 0
    for i in range(N_SETTINGS):
        cin, cout, groups = rng.randint(1, 8), rng.randint(1, 8), rng.choice([1, 1, 2, 3, 4])
        n, k, s, p, bias = rng.randint(1, 12), rng.randint(1, 5), rng.randint(1, 3), rng.randint(0, 2), rng.choice([0, 1])
        ex.set(cin=cin, cout=cout, groups=groups, n=n, k=k, s=s, p=p, bias=bias, seed=rng.randint(0, 99))
        st = ex.state()
        what = f"setting {i}: C_in={cin} C_out={cout} groups={groups} n={n} k={k} s={s} p={p} bias={bias}"
        try:
            macs = accounting.conv_macs((cin, n, n), cout, k, s, p, 1, groups)
        except ValueError as exc:
            expect_error(st, exc, what)
            invalid += 1
            continue
        valid += 1
        assert st["error"] is None, f"{what}: unexpected error {st['error']}"
        assert st["outs"]["macs"] == macs, what
        assert st["outs"]["params"] == accounting.conv_params(cin, cout, k, groups, bool(bias)), what
        assert st["outs"]["out-shape"] == list(accounting.conv_output_shape((cin, n, n), cout, k, s, p)), what
        assert st["outs"]["filter-shape"] == [cin // groups, k, k], what
        # the computed example: the output volume shown equals cnnmath.conv on the values shown
        x = np.stack([grid(st, f"x-{c}") for c in range(cin)])
        w, b = np.array(st["outs"]["w"], dtype=float), np.array(st["outs"]["b"], dtype=float)
        assert x.shape == (cin, n, n) and w.shape == (cout, cin // groups, k, k) and b.shape == (cout,), what
        assert bias or not b.any(), f"{what}: biases shown without bias"
        y = np.stack([grid(st, f"y-{c}") for c in range(cout)])
        ref = cnnmath.conv(x[None], w, b, stride=s, padding=p, groups=groups)[0]
        np.testing.assert_array_equal(y, ref, err_msg=f"{what}: computed example")
        examples += 1
    check_cases(valid, invalid, "volume")
    assert examples == valid
    check_keyboard(ex, "cin", "2")
    check_page_health(ex)


def _choose_cell(ex, st, rng, step):
    cells = int(np.prod(st["grids"]["dout"]["shape"]))
    c = rng.randrange(cells)
    btn = ex.root.locator(f'button[data-cell="{c}"]')
    if step % 2:
        btn.click()
    else:  # keyboard: focus the cell's button and press Enter
        btn.focus()
        ex.page.keyboard.press("Enter")
    return c


def test_conv_gradient_routing_explorer(open_explorer):
    """ch07: dL/dX and dL/dW for a chosen (or every) output-gradient cell equal cnnmath.conv_backward's."""
    ex = open_explorer("conv-routing")
    rng = random.Random(7)
    valid = invalid = 0
    for i in range(N_SETTINGS):
        dims, n, k, s = rng.choice([1, 2]), rng.randint(1, 7), rng.randint(1, 4), rng.randint(1, 3)
        p, d, mode, seed = rng.randint(0, 2), rng.choice([1, 1, 2]), rng.choice(["cell", "cell", "all"]), rng.randint(0, 99)
        ex.set(dims=dims, n=n, k=k, s=s, p=p, d=d, grad=mode, seed=seed)
        st = ex.state()
        what = f"setting {i}: dims={dims} n={n} k={k} s={s} p={p} d={d} gradient={mode}"
        try:
            cnnmath.output_size(n if dims == 1 else (n, n), k, s, p, d)
        except ValueError as exc:
            expect_error(st, exc, what)
            invalid += 1
            continue
        valid += 1
        c = _choose_cell(ex, st, rng, i)
        st = ex.state()
        assert st["error"] is None, f"{what}: unexpected error {st['error']}"
        x, w, dout = grid(st, "x"), grid(st, "w"), grid(st, "dout")
        expect_dout = np.ones(dout.shape) if mode == "all" else np.eye(dout.size)[c].reshape(dout.shape)
        np.testing.assert_array_equal(dout, expect_dout, err_msg=f"{what}: the gradient shown after choosing cell {c}")
        dx, dw, _ = cnnmath.conv_backward(dout[None, None], x[None, None], w[None, None], stride=s, padding=p, dilation=d)
        np.testing.assert_array_equal(grid(st, "dx"), dx[0, 0], err_msg=f"{what}: dX")
        np.testing.assert_array_equal(grid(st, "dw"), dw[0, 0], err_msg=f"{what}: dW")
    check_cases(valid, invalid, "conv-routing")
    check_keyboard(ex, "n", "3")
    check_page_health(ex)


def test_max_pool_routing_explorer(open_explorer):
    """ch06: max_pool and its arg-max routing (first maximum on ties) equal cnnmath's; ties do occur."""
    ex = open_explorer("pool-routing")
    rng = random.Random(6)
    valid = invalid = ties = 0
    for i in range(N_SETTINGS):
        dims, n, k, s = rng.choice([1, 2, 2]), rng.randint(1, 7), rng.randint(1, 4), rng.randint(1, 3)
        p, mode, seed = rng.randint(0, 2), rng.choice(["cell", "cell", "all"]), rng.randint(0, 99)
        ex.set(dims=dims, n=n, k=k, s=s, p=p, grad=mode, seed=seed)
        st = ex.state()
        what = f"setting {i}: dims={dims} n={n} k={k} s={s} p={p} gradient={mode}"
        try:
            cnnmath.max_pool(np.zeros((1, 1) + (n,) * dims), k, s, p)
        except ValueError as exc:
            expect_error(st, exc, what)
            invalid += 1
            continue
        valid += 1
        c = _choose_cell(ex, st, rng, i)
        st = ex.state()
        assert st["error"] is None, f"{what}: unexpected error {st['error']}"
        x, dout = grid(st, "x"), grid(st, "dout")
        expect_dout = np.ones(dout.shape) if mode == "all" else np.eye(dout.size)[c].reshape(dout.shape)
        np.testing.assert_array_equal(dout, expect_dout, err_msg=f"{what}: the gradient shown after choosing cell {c}")
        np.testing.assert_array_equal(grid(st, "y"), cnnmath.max_pool(x[None, None], k, s, p)[0, 0], err_msg=what)
        dx = cnnmath.max_pool_backward(dout[None, None], x[None, None], k, s, p)[0, 0]
        np.testing.assert_array_equal(grid(st, "dx"), dx, err_msg=f"{what}: dX")
        # a tie in the chosen window: several window cells hold its maximum, exactly one gets the gradient
        window = np.array(["hit" in cl or "sel" in cl for cl in st["grids"]["x"]["classes"]])
        vals = x.reshape(-1)[window]
        if vals.size and (vals == vals.max()).sum() > 1:
            ties += 1
    check_cases(valid, invalid, "pool-routing")
    assert ties >= 5, f"only {ties} settings had a tie in the chosen window"
    check_keyboard(ex, "n", "3")
    check_page_health(ex)
