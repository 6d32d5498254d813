"""Speed and memory of cnnmath's convolution against torch CPU, measured in one run on one machine.

For each shape of issue 3 and for float64 and float32 it prints the median time of

* forward: ``cnnmath.conv``            vs ``torch.nn.functional.conv{1,2,3}d``
* dx:      ``cnnmath.conv_input_grad``  vs ``torch.ops.aten.convolution_backward`` (input only)
* dw:      ``cnnmath.conv_weight_grad`` vs ``torch.ops.aten.convolution_backward`` (weight only)

the two libraries timed in alternating rounds (best round kept); their ratio of medians (cnnmath / torch: below 1 means
cnnmath is faster) and of best times (``r(min)``, the steadier figure on a busy machine); and
cnnmath's GFLOP/s as a fraction of NumPy's own matmul peak measured in the same run (``2 M N K``
flops on 1024^3 matrices). Finally the peak memory of one forward call on the 224x224 stem,
measured for both libraries the same way: the rise of the peak resident set (VmHWM, reset just
before the call) in a fresh subprocess, plus tracemalloc for cnnmath.

Usage::

    .venv/bin/python bench/conv.py               # all shapes (~5 min on 2 quiet cores, more on busy ones)
    .venv/bin/python bench/conv.py --quick       # course-sized and 56x56 shapes + memory, about a minute
    .venv/bin/python bench/conv.py --threads 1   # one thread each: steadier ratios on a shared machine
    .venv/bin/python bench/conv.py --threads 1 --paths --shapes 0,3   # every conv path forced, per op
    .venv/bin/python bench/conv.py --threads 1 --paths --shapes 3 --block-bytes 1024,4096,16384   # block sweep

``--paths`` times every path of ``cnnmath._conv_paths`` (forward, dx, dw; the flipped dx with each
inner forward path) on the chosen shapes, each against torch's same op in the same paired rounds,
and marks with ``*`` the path the rule (``route_for``) picks: the evidence for the rule and for
keeping each dx form.
"""


from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

if __name__ == "__main__" and "--threads" in sys.argv:  # BLAS thread count must be set before numpy loads
    _n = sys.argv[sys.argv.index("--threads") + 1]
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = _n

import numpy as np  # noqa: E402

SHAPES = [
    # name, x shape, w shape, kwargs
    ("conv2d course N=1 C=3 32x32 O=8 k3 p1", (1, 3, 32, 32), (8, 3, 3, 3), dict(padding=1)),
    ("conv2d N=8 C=64 56x56 O=64 k3 p1", (8, 64, 56, 56), (64, 64, 3, 3), dict(padding=1)),
    ("conv2d stem N=32 C=3 224x224 O=64 k7 s2 p3", (32, 3, 224, 224), (64, 3, 7, 7), dict(stride=2, padding=3)),
    ("conv3d N=2 C=16 32^3 O=32 k3", (2, 16, 32, 32, 32), (32, 16, 3, 3, 3), dict()),
    ("conv1d N=16 C=32 L=4096 O=64 k9", (16, 32, 4096), (64, 32, 9), dict()),
    # the size of the exercises' hidden tests (solutions/_sources/conv*.nb.txt draw N, C, O in 1-3, k in 1-3,
    # stride 1-3, padding 0-2, a few pixels more than the kernel)
    ("conv2d exercise N=2 C=2 7x6 O=3 k3 s2 p1", (2, 2, 7, 6), (3, 2, 3, 3), dict(stride=2, padding=1)),
]
QUICK = [0, 5, 1]


def paired_times(f_a, f_b, repeat, rounds=3, min_time=0.2, max_calls=2000, pause=0.3):
    """Time ``f_a`` and ``f_b`` in ``rounds`` alternating rounds (so a noisy neighbour hurts both
    alike), each call at least ``repeat`` times and for ``min_time`` seconds per round.

    Calls are grouped per library with a pause between groups instead of alternating call by
    call: both torch's OpenMP workers and OpenBLAS's threads busy-wait for a while after a call,
    and would otherwise steal the cores from the other library's threads.
    Returns the times of the round with the lower median for each function.
    """
    def one_round(f):
        time.sleep(pause)
        f()  # warm-up
        ts = []
        t_end = time.perf_counter() + min_time
        while len(ts) < repeat or (time.perf_counter() < t_end and len(ts) < max_calls):
            t0 = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t0)
        return ts

    best_a = best_b = None
    for _ in range(rounds):
        ta, tb = one_round(f_a), one_round(f_b)
        if best_a is None or statistics.median(ta) < statistics.median(best_a):
            best_a = ta
        if best_b is None or statistics.median(tb) < statistics.median(best_b):
            best_b = tb
    return best_a, best_b


def matmul_peak(dtype, size=1024, repeat=25):
    """NumPy's best matmul rate on square matrices (GFLOP/s): the fastest of ``repeat`` runs."""
    a = np.random.default_rng(0).standard_normal((size, size)).astype(dtype)
    b = a.T.copy()
    a @ b
    best = float("inf")  # the fastest run: the rate the machine can give, noise aside
    for _ in range(repeat):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * size**3 / best / 1e9


def flops(x_shape, w_shape, out_shape):
    return 2 * int(np.prod(out_shape)) * int(np.prod(w_shape[1:]))


def _case(xs, ws, kw, dtype):
    import torch

    import cnnmath

    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    y = cnnmath.conv(x, w, **kw)
    g = rng.standard_normal(y.shape).astype(dtype)
    ndim = len(xs) - 2
    tf = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d, 3: torch.nn.functional.conv3d}[ndim]
    xt, wt, gt = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(g)
    s = kw.get("stride", 1)
    p = kw.get("padding", 0)
    stride = [s] * ndim if isinstance(s, int) else list(s)
    padding = [p] * ndim if isinstance(p, int) else list(p)

    def t_back(mask):
        return lambda: torch.ops.aten.convolution_backward(gt, xt, wt, None, stride, padding, [1] * ndim,
                                                           False, [0] * ndim, 1, mask)

    torch_ops = {"forward": lambda: tf(xt, wt, **kw), "dx": t_back([True, False, False]),
                 "dw": t_back([False, True, False])}
    return x, w, y, g, torch_ops


GATHER_LIMIT = 32 << 20


def bench_paths(xs, ws, kw, dtype, repeat, block_sizes=(None,)):
    """Every registered path of each op, forced, against torch's op: rows (op, path, picked, t_np, t_torch).

    Paths that cut columns into row blocks run once per size in ``block_sizes`` (None: the default).
    """
    import importlib

    import torch

    from cnnmath._geometry import conv_geometry

    paths = importlib.import_module("cnnmath._conv_paths")
    x, w, y, g, torch_ops = _case(xs, ws, kw, dtype)
    geo = conv_geometry(xs, ws, kw.get("stride", 1), kw.get("padding", 0), 1, 1)
    rule = paths.route_for(geo, xs[0], dtype)
    n = xs[0]
    default = paths.Route("", "", "").block_bytes

    def R(f, i, g, flipped_forward=None, block=None):
        return paths.Route(f, i, g, default if block is None else block, flipped_forward)

    def sizes(blocked):
        return block_sizes if blocked else (None,)

    def tag(label, block):
        return label if block is None else f"{label}@{block >> 10}K"

    # The gather paths' im2col matrix has prod(spatial) prod(k) prod(out) entries: past GATHER_LIMIT
    # bytes (the 56x56 layer's would take 700 MB) they are not timed.
    gather_ok = paths.is_gathered(geo, np.dtype(dtype), GATHER_LIMIT)
    stride_1_only = {"flipped", "shifted"}  # the forms that refuse other strides
    forward_paths = [f for f in paths.FORWARD_PATHS if (gather_ok or f != "gather")
                     and (geo.unit_stride or f not in stride_1_only)]
    chunked = {"blocked", "shifted"}  # the paths whose work is cut into blocks of about block_bytes
    candidates = [("forward", tag(name, b), rule.forward == name and b in (None, default),
                   (lambda r: lambda: paths.forward(x, w, geo, dtype, r))(R(name, "", "", block=b)))
                  for name in forward_paths for b in sizes(name in chunked)]
    for name in paths.INPUT_GRAD_PATHS:
        if (name in stride_1_only and not geo.unit_stride) or (name == "gather" and not gather_ok):
            continue
        for inner, b in ((i, b) for i in (forward_paths if name == "flipped" else [None])
                         for b in sizes(bool(chunked & {name, i}))):
            route = R("", name, "", flipped_forward=inner, block=b)
            label = tag(name if inner is None else f"{name}({inner})", b)
            picked = rule.input_grad == name and (inner is None or inner == paths.route_for(
                conv_geometry(g.shape, (ws[1], ws[0]) + ws[2:], 1, tuple(
                    (d * (k - 1) - pb, d * (k - 1) - pa) for k, d, (pb, pa) in zip(geo.k, geo.d, geo.pads)), geo.d, 1),
                n, dtype).forward) if name == "flipped" else rule.input_grad == name
            picked = picked and b in (None, default)
            candidates.append(("dx", label, picked, (lambda r: lambda: paths.input_grad(g, w, geo, n, dtype, r))(route)))
    candidates += [("dw", tag(name, b), rule.weight_grad == name and b in (None, default),
                    (lambda r: lambda: paths.weight_grad(g, x, geo, dtype, r))(R("", "", name, block=b)))
                   for name in paths.WEIGHT_GRAD_PATHS if (gather_ok or name != "gather")
                   and (geo.unit_stride or name not in stride_1_only)
                   for b in sizes(name in chunked)]
    rows = []
    with torch.no_grad():
        for op, label, picked, f in candidates:
            tn, tt = paired_times(f, torch_ops[op], repeat)
            rows.append((op, label, picked, statistics.median(tn), statistics.median(tt)))
    return rows


def bench_shape(name, xs, ws, kw, dtype, repeat):
    import torch

    import cnnmath

    x, w, y, g, torch_ops = _case(xs, ws, kw, dtype)
    ops = {
        "forward": (lambda: cnnmath.conv(x, w, **kw), torch_ops["forward"]),
        "dx": (lambda: cnnmath.conv_input_grad(g, xs, w, **kw), torch_ops["dx"]),
        "dw": (lambda: cnnmath.conv_weight_grad(g, x, ws, **kw), torch_ops["dw"]),
    }
    rows = []
    fl = flops(xs, ws, y.shape)
    with torch.no_grad():
        for op, (f_np, f_t) in ops.items():
            tn, tt = paired_times(f_np, f_t, repeat)
            rows.append((op, statistics.median(tn), statistics.median(tt), min(tn) / min(tt), fl))
    return rows


MEM_SCRIPT = r"""
import json, sys, tracemalloc
import numpy as np
lib, dtype = sys.argv[1], sys.argv[2]
xs, ws, kw = (32, 3, 224, 224), (64, 3, 7, 7), dict(stride=2, padding=3)

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024

rng = np.random.default_rng(0)
x = rng.standard_normal(xs, dtype=dtype)
w = rng.standard_normal(ws, dtype=dtype)
if lib == "torch":
    import torch
    torch.set_num_threads(int(sys.argv[3]))
    xt, wt = torch.from_numpy(x), torch.from_numpy(w)
    run = lambda: torch.nn.functional.conv2d(xt, wt, **kw)
    torch.set_grad_enabled(False)
else:
    import cnnmath
    run = lambda: cnnmath.conv(x, w, **kw)
# warm up on one image (kernels, imports, caches) without a large peak
if lib == "torch":
    torch.nn.functional.conv2d(xt[:1], wt, **kw)
else:
    cnnmath.conv(x[:1], w, **kw)
with open("/proc/self/clear_refs", "w") as f:   # reset the peak-RSS mark (VmHWM) to the current RSS
    f.write("5")
before = status("VmRSS:")
y = run()
rise = status("VmHWM:") - before
out_bytes = y.numel() * y.element_size() if lib == "torch" else y.nbytes
del y
traced = None
if lib == "cnnmath":
    tracemalloc.start()
    y = run()
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
print(json.dumps(dict(rss_rise=rise, out_bytes=out_bytes, traced_peak=traced)))
"""


def memory(dtype, threads=2):
    res = {}
    for lib in ("cnnmath", "torch"):
        out = subprocess.run([sys.executable, "-c", MEM_SCRIPT, lib, dtype, str(threads)], capture_output=True,
                             text=True, check=True)
        res[lib] = json.loads(out.stdout.strip().splitlines()[-1])
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats, two shapes, still prints everything")
    ap.add_argument("--shapes", type=str, default=None, help=f"comma-separated shape indices (0-{len(SHAPES) - 1})")
    ap.add_argument("--paths", action="store_true",
                    help="time every conv path, forced, against torch (instead of the public functions)")
    ap.add_argument("--block-bytes", type=str, default=None,
                    help="with --paths: comma-separated column-block sizes in KiB for the blocked paths (a sweep)")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--threads", type=int, default=2,
                    help="threads for both libraries (default 2; 1 gives steadier ratios on a busy machine)")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    repeat = 3 if args.quick else 5
    idx = [int(i) for i in args.shapes.split(",")] if args.shapes else (QUICK if args.quick else range(len(SHAPES)))
    print(f"numpy {np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f}")
    peaks = {dt: matmul_peak(dt) for dt in (np.float64, np.float32)}
    for dt, pk in peaks.items():
        print(f"numpy matmul peak ({np.dtype(dt).name}, 1024^3): {pk:.1f} GFLOP/s")
    print()
    if args.paths:
        print(f"{'shape':44s} {'dtype':7s} {'op':7s} {'path':24s} {'cnnmath ms':>10s} {'torch ms':>9s} {'ratio':>6s}")
        for dt in (np.float64, np.float32):
            for i in idx:
                name, xs, ws, kw = SHAPES[i]
                blocks = tuple(int(v) << 10 for v in args.block_bytes.split(",")) if args.block_bytes else (None,)
                for op, label, picked, tn, tt in bench_paths(xs, ws, kw, dt, repeat, blocks):
                    mark = "*" if picked else " "
                    print(f"{name:44s} {np.dtype(dt).name:7s} {op:7s} {mark}{label:23s} {tn * 1e3:10.3f} "
                          f"{tt * 1e3:9.3f} {tn / tt:6.2f}", flush=True)
        return
    header = f"{'shape':44s} {'dtype':7s} {'op':7s} {'cnnmath ms':>10s} {'torch ms':>9s} {'ratio':>6s} " \
             f"{'r(min)':>6s} {'GFLOP/s':>8s} {'% peak':>6s}"
    print(header)
    print("-" * len(header))
    for dt in (np.float64, np.float32):
        for i in idx:
            name, xs, ws, kw = SHAPES[i]
            for op, tn, tt, rmin, fl in bench_shape(name, xs, ws, kw, dt, repeat):
                gf = fl / tn / 1e9
                print(f"{name:44s} {np.dtype(dt).name:7s} {op:7s} {tn * 1e3:10.3f} {tt * 1e3:9.3f} "
                      f"{tn / tt:6.2f} {rmin:6.2f} {gf:8.1f} {100 * gf / peaks[dt]:5.0f}%", flush=True)
    if not args.no_memory:
        print("\npeak memory of one forward call, conv2d stem N=32 C=3 224x224 O=64 k7 s2 p3: rise of the peak RSS "
              "(VmHWM, reset just before the call) in a fresh process, so it includes the output; 'extra' = rise - output")
        for dt in ("float32", "float64"):
            m = memory(dt, args.threads)
            c, t = m["cnnmath"], m["torch"]
            mib = 2**20
            ce, te = c["rss_rise"] - c["out_bytes"], t["rss_rise"] - t["out_bytes"]
            print(f"  {dt}: output {c['out_bytes'] / mib:.1f} MiB; rise cnnmath {c['rss_rise'] / mib:.1f} MiB "
                  f"(tracemalloc peak {c['traced_peak'] / mib:.1f} MiB), torch {t['rss_rise'] / mib:.1f} MiB, "
                  f"ratio {c['rss_rise'] / max(t['rss_rise'], 1):.2f}; extra beyond the output: cnnmath "
                  f"{ce / mib:.1f} MiB, torch {te / mib:.1f} MiB", flush=True)


if __name__ == "__main__":
    main()
