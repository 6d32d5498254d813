"""Benchmark: how long a setting change takes to render in each explorer, measured in the browser.

For every explorer (book/_assets/explorers/), in Debian Chromium: set a random value in one of its
number controls and fire the "input" event a reader's typing fires, then time with performance.now()

* ``render``: until the explorer's synchronous re-render returns (new grids, SVG and outputs in the DOM);
* ``frame``:  until the second requestAnimationFrame after the change (style, layout and paint done);
* ``idle``:   the same two animation frames with no change at all, the peer measured in the same run,
              so that ``frame / idle`` says what the change costs beyond the browser's frame clock.

The issue's goal is a change rendered in under 100 ms; this prints the figures and never asserts them.

    .venv/bin/python bench/explorers.py [--site _build/html] [--changes 200]

Without ``--site`` the book is built clean into a temporary directory first (about a minute or more).
"""
from __future__ import annotations

import argparse
import functools
import http.server
import random
import statistics
import sys
import tempfile
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PAGES = {
    "conv-arith": ("book/05-stride-padding-dilation.html", {"n": (1, 16), "k": (1, 5), "s": (1, 3), "d": (1, 2)}),
    "rf-stack": ("book/09-receptive-field.html", {"kernel": (1, 7), "stride": (1, 3), "dilation": (1, 3), "padding": (0, 3)}),
    "transpose": ("book/08-transposed-convolution.html", {"n": (1, 10), "k": (1, 5), "s": (1, 3), "p": (0, 2)}),
    "volume": ("book/04-conv2d-multichannel.html", {"cin": (1, 16), "n": (1, 64), "k": (1, 7), "cout": (1, 16)}),
    "pool-routing": ("book/06-pooling.html", {"n": (2, 12), "k": (1, 4), "s": (1, 3)}),
    "conv-routing": ("book/07-backpropagation.html", {"n": (2, 12), "k": (1, 4), "s": (1, 3), "d": (1, 2)}),
}

MEASURE_JS = """async ([sel, control, value]) => {
  const root = document.querySelector(sel);
  const inp = root.querySelector('[data-control="' + control + '"]');
  const frames = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  await frames();
  const t0 = performance.now();
  if (inp) { inp.value = String(value); inp.dispatchEvent(new Event('input', {bubbles: true})); }
  const t1 = performance.now();
  await frames();
  return [t1 - t0, performance.now() - t0];
}"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _stats(values):
    values = sorted(values)
    return statistics.median(values), values[int(0.95 * (len(values) - 1))], values[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--site", type=Path, help="a built site (the _build/html folder); default: build one")
    ap.add_argument("--changes", type=int, default=200, help="setting changes per explorer")
    args = ap.parse_args()
    site = args.site
    if site is None:
        from tests.book_build import run_build
        out = Path(tempfile.mkdtemp(prefix="bench-explorers-"))
        build = run_build(out)
        if build.returncode:
            print(build.log[-3000:])
            sys.exit(f"book build failed (exit {build.returncode})")
        site = build.html
    handler = functools.partial(_Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    from playwright import sync_api
    rng = random.Random(0)
    rows = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        for name, (rel, controls) in PAGES.items():
            page.goto(base + rel, wait_until="load")
            sel = f'div.cnnx[data-explorer="{name}"]'
            page.locator(sel).scroll_into_view_if_needed()
            render, frame, idle = [], [], []
            for i in range(args.changes):
                control = rng.choice(sorted(controls))
                value = rng.randint(*controls[control])
                r, f = page.evaluate(MEASURE_JS, [sel, control, value])
                render.append(r)
                frame.append(f)
                idle.append(page.evaluate(MEASURE_JS, [sel, "(none)", 0])[1])
            rows.append((name, _stats(render), _stats(frame), _stats(idle)))
        browser.close()
    server.shutdown()
    print(f"{args.changes} random setting changes per explorer, Chromium headless; times in ms (median / p95 / max)")
    print(f"{'explorer':<14} {'render':>22} {'frame':>22} {'idle (peer)':>22} {'frame/idle':>10}  < 100 ms?")
    for name, r, f, i in rows:
        fmt = lambda t: f"{t[0]:6.2f} /{t[1]:6.2f} /{t[2]:6.1f}"  # noqa: E731
        print(f"{name:<14} {fmt(r):>22} {fmt(f):>22} {fmt(i):>22} {f[0] / i[0]:10.2f}  {'yes' if f[1] < 100 else 'NO'} (p95)")


if __name__ == "__main__":
    main()
