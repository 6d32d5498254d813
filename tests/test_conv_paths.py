"""Every convolution path of ``cnnmath._conv_paths`` forced, against torch, and the rule that picks them.

``cnnmath._conv_paths`` keeps its paths in three registries (forward, input gradient, kernel
gradient) and names a choice of them with a ``Route``. These tests

* run every registered path on every case of ``tests/test_conv.py`` against torch's forward and
  autograd, with each block-size side (one output row per block / the whole image in one block)
  and, for the flipped-kernel input gradient, each forward path of the convolution it runs;
* check the rule (``route_for``) with each heuristic set to each side, and that over the cases
  it picks every registered path (no dead path);
* fail when a path function, a heuristic of the rule or a field of ``Route`` is added to the
  module without this file forcing it, or when the cases stop covering a geometry branch inside
  the paths (1x1 identity columns, padding, strides, widening of the stride-1 scatter...).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import itertools

import numpy as np
import pytest

from cnnmath._columns import takes_wide_columns
from cnnmath._conv_shifted import copied_axes, weight_grad_copied_axes
from cnnmath._geometry import conv_geometry
from tests.helpers import assert_array_close, make_conv_case
from tests.test_conv import CASES, IDS, torch_conv

paths = importlib.import_module("cnnmath._conv_paths")
Route = paths.Route

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")

# The two sides of the block size: 1 byte gives one output row per block (several blocks as soon
# as the output has more than one row), 2**40 the whole image in one block.
BLOCK_SIDES = (1, 1 << 40)
# The heuristics of the rule, each with a value below and above every case's measure.
HEURISTIC_SIDES = {"lean_bytes": (-1, 1 << 40), "small_columns": (-1, 1 << 40), "gather_bytes": (-1, 1 << 40)}
# The fields of a Route this file sets.
ROUTE_FIELDS = {"forward", "input_grad", "weight_grad", "block_bytes", "flipped_forward"}
# The input-gradient forms defined for stride 1 only (they refuse other strides).
STRIDE_1_ONLY = {"flipped": "needs stride 1", "shifted": "needs stride 1"}
STRIDE_1_WEIGHT_GRADS = {"shifted"}


def _geometry(x, w, kw):
    return conv_geometry(x.shape, w.shape, kw.get("stride", 1), kw.get("padding", 0), kw.get("dilation", 1),
                         kw.get("groups", 1))


def forward_routes():
    return [Route(f, "", "", block_bytes=b) for f in paths.FORWARD_PATHS for b in BLOCK_SIDES]


def input_grad_routes():
    routes = []
    for name, block in itertools.product(paths.INPUT_GRAD_PATHS, BLOCK_SIDES):
        inner = paths.FORWARD_PATHS if name == "flipped" else [None]
        routes += [Route("", name, "", block_bytes=block, flipped_forward=f) for f in inner]
    return routes


def weight_grad_routes():
    return [Route("", "", g, block_bytes=b) for g in paths.WEIGHT_GRAD_PATHS for b in BLOCK_SIDES]


def _case_and_truth(case, n=2):
    x, w, _, kw = make_conv_case(case, n=n)
    geo = _geometry(x, w, kw)
    dout = np.random.default_rng(1).standard_normal((n, geo.c_out) + geo.out)
    t_out, t_dx, t_dw, _ = torch_conv(x, w, None, grad=dout, **kw)
    return x, w, geo, dout, t_out, t_dx, t_dw


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_every_path_forced_matches_torch(case):
    """Each registered forward, dx and dw path, each block side and each inner forward of the
    flipped dx, equals torch on this case; the flipped and shifted forms refuse strides other than 1."""
    x, w, geo, dout, t_out, t_dx, t_dw = _case_and_truth(case)
    n, f64 = x.shape[0], np.float64
    for route in forward_routes():
        assert_array_close(paths.forward(x, w, geo, f64, route), t_out, rtol=1e-10, atol=1e-10,
                           what=f"forward {route}")
    for route in input_grad_routes():
        if route.input_grad in STRIDE_1_ONLY and not geo.unit_stride:
            with pytest.raises(ValueError, match=STRIDE_1_ONLY[route.input_grad]):
                paths.input_grad(dout, w, geo, n, f64, route)
            continue
        assert_array_close(paths.input_grad(dout, w, geo, n, f64, route), t_dx, rtol=1e-10, atol=1e-10,
                           what=f"dx {route}")
    for route in weight_grad_routes():
        if route.weight_grad in STRIDE_1_WEIGHT_GRADS and not geo.unit_stride:
            with pytest.raises(ValueError, match="needs stride 1"):
                paths.weight_grad(dout, x, geo, f64, route)
            continue
        assert_array_close(paths.weight_grad(dout, x, geo, f64, route), t_dw, rtol=1e-10, atol=1e-10,
                           what=f"dw {route}")


@pytest.mark.parametrize("case", [CASES[0], CASES[7], CASES[9], CASES[18]], ids=[IDS[0], IDS[7], IDS[9], IDS[18]])
def test_every_path_forced_float32(case):
    """float32 stays float32 on every path and is within float32 rounding of torch."""
    x, w, geo, dout, t_out, t_dx, t_dw = _case_and_truth(case)
    x, w, dout, f32 = x.astype(np.float32), w.astype(np.float32), dout.astype(np.float32), np.float32
    for route in forward_routes():
        assert_array_close(paths.forward(x, w, geo, f32, route), t_out.astype(np.float32), rtol=1e-4, atol=1e-4,
                           what=f"forward float32 {route}")
    for route in input_grad_routes():
        if route.input_grad not in STRIDE_1_ONLY or geo.unit_stride:
            assert_array_close(paths.input_grad(dout, w, geo, x.shape[0], f32, route), t_dx.astype(np.float32),
                               rtol=1e-4, atol=1e-4, what=f"dx float32 {route}")
    for route in weight_grad_routes():
        if route.weight_grad in STRIDE_1_WEIGHT_GRADS and not geo.unit_stride:
            continue
        assert_array_close(paths.weight_grad(dout, x, geo, f32, route), t_dw.astype(np.float32),
                           rtol=1e-4, atol=1e-3, what=f"dw float32 {route}")


@pytest.mark.parametrize("stride", [1, 2], ids=["s1", "s2"])
def test_empty_batch_on_every_path(stride):
    """N = 0 gives empty outputs and dx and a zero dw on every path."""
    x, w = np.zeros((0, 3, 8, 8)), np.ones((4, 3, 3, 3))
    geo = conv_geometry(x.shape, w.shape, stride, 1, 1, 1)
    dout = np.zeros((0, 4) + geo.out)
    for route in forward_routes():
        assert paths.forward(x, w, geo, np.float64, route).shape == dout.shape, route
    for route in input_grad_routes():
        if route.input_grad not in STRIDE_1_ONLY or stride == 1:
            assert paths.input_grad(dout, w, geo, 0, np.float64, route).shape == x.shape, route
    for route in weight_grad_routes():
        if route.weight_grad in STRIDE_1_WEIGHT_GRADS and stride != 1:
            continue
        dw = paths.weight_grad(dout, x, geo, np.float64, route)
        assert dw.shape == w.shape and not dw.any(), route


def test_registries_hold_every_path_function():
    """Every path function of the module (forward_*, input_grad_*, weight_grad_*) is registered, so the
    tests above force it; every registered path is a function of that module."""
    registries = {"forward_": paths.FORWARD_PATHS, "input_grad_": paths.INPUT_GRAD_PATHS,
                  "weight_grad_": paths.WEIGHT_GRAD_PATHS}
    for prefix, registry in registries.items():
        defined = {f for name, f in inspect.getmembers(paths, inspect.isfunction)
                   if name.startswith(prefix) and f.__module__ == paths.__name__}
        assert defined == set(registry.values()), (
            f"{prefix}* functions of cnnmath._conv_paths {sorted(f.__name__ for f in defined)} != "
            f"registered {sorted(f.__name__ for f in registry.values())}")
        for name, f in registry.items():
            assert f.__name__ == prefix + name, f"registry name {name!r} holds {f.__name__}"


def test_every_knob_is_forced_by_these_tests():
    """The rule's heuristics and the Route's fields are exactly the ones this file sets to each side."""
    params = list(inspect.signature(paths.route_for).parameters)
    assert params[:3] == ["geo", "n", "dtype"]
    assert set(params[3:]) == set(HEURISTIC_SIDES), f"route_for heuristics {params[3:]} not all forced here"
    assert {f.name for f in dataclasses.fields(Route)} == ROUTE_FIELDS


def test_block_sides_really_split_the_rows():
    """The small block side gives one output row per block, the large side the whole image."""
    from cnnmath._columns import RowBlockColumns

    geo = conv_geometry((2, 3, 9, 9), (4, 3, 3, 3), 1, 1, 1, 1)
    small, large = (RowBlockColumns(geo, 3, np.float64, b) for b in BLOCK_SIDES)
    assert small.blocks == [(r, r + 1) for r in range(geo.out[0])]
    assert large.blocks == [(0, geo.out[0])]


def _expected_route(geo, n, lean_bytes, small_columns, gather_bytes):
    """The rule of the module docstring, written out again from its text."""
    if np.prod(geo.spatial) * np.prod(geo.k) * np.prod(geo.out) * 8 <= gather_bytes:
        return ("gather", "gather", "gather")
    columns = n * geo.c_in * np.prod(geo.k) * np.prod(geo.out) * 8
    if columns <= lean_bytes:
        return ("lean", "lean", "lean")
    stride1 = all(s == 1 for s in geo.s)
    if stride1 and len(geo.spatial) == 3:
        return ("blocked", "shifted", "shifted")
    dout_columns = n * geo.c_out * np.prod(geo.out) * np.prod(geo.k)
    flipped = stride1 and (geo.c_out <= geo.c_in or dout_columns <= small_columns)
    return ("blocked", "flipped" if flipped else "blocked", "blocked")


def test_rule_each_heuristic_each_side_and_no_dead_path():
    """route_for follows its documented rule for every case with every heuristic on each side, and
    over the cases it picks every registered path."""
    picked = {"forward": set(), "input_grad": set(), "weight_grad": set()}
    for case in CASES:
        x, w, _, kw = make_conv_case(case)
        geo = _geometry(x, w, kw)
        for sides in itertools.product(*HEURISTIC_SIDES.values()):
            knobs = dict(zip(HEURISTIC_SIDES, sides))
            r = paths.route_for(geo, x.shape[0], np.float64, **knobs)
            assert (r.forward, r.input_grad, r.weight_grad) == _expected_route(geo, x.shape[0], **knobs), \
                (case, knobs)
            assert r.flipped_forward is None  # the flipped dx's convolution is routed afresh
            for field in picked:
                picked[field].add(getattr(r, field))
    assert picked == {"forward": set(paths.FORWARD_PATHS), "input_grad": set(paths.INPUT_GRAD_PATHS),
                      "weight_grad": set(paths.WEIGHT_GRAD_PATHS)}
    # The default thresholds send the exercises' few-pixel calls to the gather paths, course-sized calls
    # to the lean paths and the large layer to the others.
    tiny_geo = conv_geometry((2, 2, 7, 6), (3, 2, 3, 3), 2, 1, 1, 1)
    small_geo = conv_geometry((1, 3, 32, 32), (8, 3, 3, 3), 1, 1, 1, 1)
    big_geo = conv_geometry((8, 64, 56, 56), (64, 64, 3, 3), 1, 1, 1, 1)
    for dtype in (np.float64, np.float32):
        assert paths.route_for(tiny_geo, 2, dtype) == Route("gather", "gather", "gather")
    assert paths.route_for(small_geo, 1, np.float64).forward == "lean"
    assert paths.route_for(big_geo, 8, np.float64) == Route("blocked", "flipped", "blocked")
    volume_geo = conv_geometry((2, 16, 32, 32, 32), (32, 16, 3, 3, 3), 1, 0, 1, 1)
    assert paths.route_for(volume_geo, 2, np.float32) == Route("blocked", "shifted", "shifted")


# Geometry branches inside the paths, each of which some case must take and some case must not.
GEOMETRY_BRANCHES = {
    "1x1 stride-1 unpadded (identity columns)": lambda g: g.identity,
    "unit stride (flat scatter / flipped form)": lambda g: g.unit_stride,
    "3-D stride 1 (shifted products: more than one tap outside the last axis)":
        lambda g: g.unit_stride and g.ndim == 3,
    "last-axis kernel of one tap (shifted products: a single copy)": lambda g: g.k[-1] == 1,
    "shifted dw copies more than the last axis's taps":
        lambda g: weight_grad_copied_axes(g.k, g.c_out // g.groups, g.c_in // g.groups) > 1,
    "shifted dx copies more than the last axis's taps":
        lambda g: copied_axes(g.k, g.c_out // g.groups, g.c_in // g.groups) > 1,
    "unpadded": lambda g: g.unpadded,
    "stride-1 scatter needs no widening": lambda g: g.unit_stride and g.out[1:] == g.padded[1:],
    "padding wider than the dilated kernel (flipped form crops dout)":
        lambda g: any(p > d * (k - 1) for (pb, pa), k, d in zip(g.pads, g.k, g.d) for p in (pb, pa)),
    "groups > 1": lambda g: g.groups > 1,
    "dilation > 1": lambda g: any(d > 1 for d in g.d),
    "one output row": lambda g: g.out[0] == 1,
    "blocked forward on wide stride-1 columns": lambda g: takes_wide_columns(g),
    "wide columns over a padded input": lambda g: takes_wide_columns(g) and not g.unpadded,
}


@pytest.mark.parametrize("branch", GEOMETRY_BRANCHES)
def test_cases_cover_each_geometry_branch(branch):
    """Some case takes the branch and some case does not, so the forced-path test runs both sides."""
    sides = set()
    for case in CASES:
        x, w, _, kw = make_conv_case(case)
        sides.add(bool(GEOMETRY_BRANCHES[branch](_geometry(x, w, kw))))
    assert sides == {True, False}, f"the cases of tests/test_conv.py only take the {branch!r} side {sides}"
