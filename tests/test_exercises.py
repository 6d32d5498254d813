"""The graded exercises: sources, releases, validation and real autograding.

For every assignment ``a`` with a source ``solutions/_sources/<a>.nb.txt``:

* the committed ``solutions/<a>/<a>.ipynb`` is what the builder makes of the source;
* ``nbgrader generate_assignment`` in a temporary course directory reproduces the committed
  ``exercises/<a>/<a>.ipynb`` byte for byte (so nobody hand-edits the student version);
* ``nbgrader validate`` passes on every solution and ``nbgrader validate --invert`` on every
  release (each graded cell fails while unanswered);
* a real ``nbgrader autograde`` in that temporary course gives the solution (submitted as a
  student) full marks and the unanswered release 0 on every graded cell;
* each wrong-but-plausible answer (flipped kernel, off-by-one size, forgotten padding, stride
  ignored in the backward pass, ...) injected into the solution fails the graded part it
  belongs to (visible or hidden tests; run without a Jupyter kernel, to stay fast).

Cost is kept low by batching: one temporary course directory, one ``generate_assignment`` and one
``autograde`` call for all assignments (a module fixture), one ``validate`` call for all solutions
and one ``validate --invert`` for all releases, run side by side. Tests share nothing else, so
pytest-xdist may spread them (each worker then builds its own course).

Sources are written as ``solutions/_sources/<a>.nb.txt``; ``make release`` rebuilds everything.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "solutions" / "_sources"

_spec = importlib.util.spec_from_file_location("exercise_build", SOURCES / "build.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)

ASSIGNMENTS = build.available()
NBGRADER = [sys.executable, "-m", "nbgrader"]

# Wrong-but-plausible answers: (label, answer cell id, text in the reference solution, replacement,
# graded part that must fail). Each is injected into a copy of the solution notebook.
WRONG = {
    "conv2d": [
        ("flipped-kernel", "conv2d", "w = w.astype(dtype)\n", "w = w.astype(dtype)[:, :, ::-1, ::-1]\n",
         "test_conv2d_multichannel_bias"),
        ("padding-ignored", "conv2d", "(padding, padding), (padding, padding)", "(0, 0), (0, 0)",
         "test_conv2d_stride_padding"),
        ("weight-layout-transposed", "conv2d", 'np.einsum("nchw,oc->nohw"', 'np.einsum("nchw,co->nohw"',
         "test_conv2d_multichannel_bias"),
        ("stride-off-by-one", "conv2d", "h_out = (h - kh) // stride + 1", "h_out = (h - kh + 1) // stride",
         "test_conv2d_stride_padding"),
        ("params-without-bias", "conv2d_params", "return (f * f * c_in + 1) * c_out",
         "return f * f * c_in * c_out", "test_conv2d_params"),
        # passes every visible test; only the hidden tests catch it
        ("hard-coded-visible-answers", "conv2d_params", "return (f * f * c_in + 1) * c_out",
         "return {(3, 3, 8): 224, (3, 8, 16): 1168, (1, 1, 1): 2, (5, 2, 3): 153}.get((f, c_in, c_out), 0)",
         "test_conv2d_params"),
    ],
    "full_network": [
        ("relu-forgotten", "forward", "p = np.maximum(z, 0.0).reshape(-1)", "p = z.reshape(-1)",
         "test_forward_seed_example"),
        ("flatten-column-major", "forward", "p = np.maximum(z, 0.0).reshape(-1)",
         "p = np.maximum(z, 0.0).T.reshape(-1)", "test_forward_seed_example"),
        ("gradient-sign-flipped", "mse", "d = float(yhat) - float(t)", "d = float(t) - float(yhat)",
         "test_mse_seed_example"),
        ("relu-mask-ignored", "kernel_backward", " * (z > 0)", "", "test_kernel_backward"),
        ("gradient-ascent", "sgd_update", "- lr * np.asarray(dw", "+ lr * np.asarray(dw",
         "test_sgd_update_seed_example"),
    ],
    "conv1d": [
        ("flipped-kernel", "cross_correlate1d", "* k[tau]", "* k[m - 1 - tau]", "test_cross_correlate1d_modes"),
        ("full-padding-off-by-one", "cross_correlate1d", '"full": m - 1', '"full": m',
         "test_cross_correlate1d_modes"),
        ("convolution-not-flipped", "convolve1d", "np.asarray(k)[::-1]", "np.asarray(k)",
         "test_convolve1d_flip_and_commutativity"),
        ("output-length-off-by-one", "conv1d_layer", "l_out = (xp.shape[2] - k) // stride + 1",
         "l_out = (xp.shape[2] - k + 1) // stride", "test_conv1d_layer"),
        ("padding-forgotten", "conv1d_layer", "(padding, padding)))", "(0, 0)))", "test_conv1d_layer"),
    ],
    "output_size": [
        ("padding-on-one-side-only", "output_size", "n + 2 * padding", "n + padding", "test_output_size_seed_table"),
        ("dilation-ignored", "output_size", "dilation * (k - 1)", "(k - 1)", "test_output_size_seed_table"),
        # passes every visible test; only the hidden tests catch it
        ("hard-coded-visible-answers", "output_size", "return (n + 2 * padding - dilation * (k - 1) - 1) // stride + 1",
         "return {(16, 3, 1, 1, 1): 16, (16, 2, 2, 0, 1): 8, (8, 3, 1, 0, 1): 6, (6, 2, 2, 0, 1): 3, (7, 3, 2, 0, 1): 3, "
         "(8, 3, 2, 0, 1): 3, (7, 3, 1, 0, 2): 3, (5, 3, 1, 2, 2): 5, (224, 7, 2, 3, 1): 112}"
         ".get((n, k, stride, padding, dilation), n)", "test_output_size_seed_table"),
        ("same-extra-zero-before", "padding_for_mode", "(total // 2, total - total // 2)",
         "(total - total // 2, total // 2)", "test_padding_for_mode"),
        ("axes-swapped", "output_shape_2d", "// s[axis] + 1", "// s[1 - axis] + 1", "test_output_shape_2d"),
        ("uncovered-off-by-one", "uncovered", "- dilation * (k - 1) - 1) % stride", "- dilation * (k - 1)) % stride",
         "test_uncovered"),
    ],
    "pooling": [
        ("stride-defaults-to-1", "max_pool2d", "s = k if stride is None else stride",
         "s = 1 if stride is None else stride", "test_max_pool2d"),
        ("max-pads-with-zeros", "max_pool2d", "constant_values=-np.inf)", "constant_values=0)", "test_max_pool2d"),
        ("average-over-k-not-k2", "avg_pool2d", "return y / (k * k)", "return y / k", "test_avg_pool2d"),
        ("overlaps-overwrite", "max_pool2d_backward",
         "np.add.at(dxp, (nn, cc, i * s + a, j * s + b), dout[:, :, i, j])",
         "dxp[nn, cc, i * s + a, j * s + b] = dout[:, :, i, j]", "test_max_pool2d_backward"),
        ("no-1-over-k2", "avg_pool2d_backward", "+= dout / (k * k)", "+= dout", "test_avg_pool2d_backward"),
    ],
    "conv_backward": [
        ("bias-grad-not-summed-over-batch", "conv2d_grad_bias", "axis=(0, 2, 3)", "axis=(2, 3)",
         "test_conv2d_grad_bias"),
        ("stride-ignored-in-weight-grad", "conv2d_grad_weight",
         "patch = xp[:, :, i:i + stride * (h_out - 1) + 1:stride, j:j + stride * (w_out - 1) + 1:stride]",
         "patch = xp[:, :, i:i + h_out, j:j + w_out]", "test_conv2d_grad_weight"),
        ("transposed-weight-grad", "conv2d_grad_weight", "dw[:, :, i, j] =", "dw[:, :, j, i] =",
         "test_conv2d_grad_weight"),
        ("input-grad-kernel-flipped", "conv2d_grad_input", "w[:, :, i, j].astype(dtype)",
         "w[:, :, kh - 1 - i, kw - 1 - j].astype(dtype)", "test_conv2d_grad_input"),
        ("padding-not-cropped", "conv2d_grad_input", "return dxp[:, :, padding:padding + h, padding:padding + wd]",
         "return dxp[:, :, :h, :wd]", "test_conv2d_grad_input"),
        ("one-sided-difference-scale", "numeric_grad_weight", "(plus - minus) / (2 * eps)", "(plus - minus) / eps",
         "test_numeric_gradient_check"),
    ],
    "conv_transpose": [
        ("padding-adds-instead-of-removes", "transposed_output_size", "- 2 * padding", "+ 2 * padding",
         "test_transposed_output_size"),
        ("kernel-flipped-in-stamps", "conv_transpose2d", "w[:, :, i, j].astype(dtype)",
         "w[:, :, kh - 1 - i, kw - 1 - j].astype(dtype)", "test_conv_transpose2d_stamps"),
        ("padding-cut-only-at-the-end", "conv_transpose2d", "y = full[:, :, p:p + h_out, p:p + w_out]",
         "y = full[:, :, :h_out, :w_out]", "test_conv_transpose2d_padding"),
        ("kernel-not-flipped-in-conv-form", "conv_transpose2d_via_conv", "wf = w[:, :, ::-1, ::-1]", "wf = w[:, :, :, :]",
         "test_conv_transpose2d_via_conv"),
        ("decoder-input-grad-kernel-flipped", "conv_transpose2d_backward", 'patch, w[:, :, i, j])',
         'patch, w[:, :, kh - 1 - i, kw - 1 - j])', "test_conv_transpose2d_backward"),
        ("decoder-gradient-padding-at-one-end", "conv_transpose2d_backward", "(p, p), (p, p)))",
         "(0, 2 * p), (0, 2 * p)))", "test_conv_transpose2d_backward"),
        ("decoder-weight-grad-stride-ignored", "conv_transpose2d_backward",
         "patch = gp[:, :, i:i + s * (h - 1) + 1:s, j:j + s * (wd - 1) + 1:s]", "patch = gp[:, :, i:i + h, j:j + wd]",
         "test_conv_transpose2d_backward"),
    ],
    "receptive_field": [
        ("dilation-ignored", "receptive_field_table", "r = r + d * (k - 1) * jump", "r = r + (k - 1) * jump",
         "test_receptive_field_table"),
        ("strides-not-accumulated", "receptive_field_table", "jump *= s", "jump = s", "test_receptive_field_table"),
        ("padding-counted-once", "network_summary", "(h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1",
         "(h + p - k) // s + 1, (w + p - k) // s + 1", "test_network_summary_seed_table"),
        ("conv-bias-forgotten", "network_summary", "params = (k * k * c_in + 1) * c_out",
         "params = k * k * c_in * c_out", "test_network_summary_seed_table"),
        ("dense-bias-forgotten", "network_summary", "params = (shape[0] + 1) * n_out", "params = shape[0] * n_out",
         "test_network_summary_seed_table"),
        ("rf-off-by-one", "stack_vs_single", "rf = 1 + n_layers * (k - 1)", "rf = n_layers * (k - 1)",
         "test_totals_and_vgg"),
        ("macs-on-input-size", "layer_costs", "macs = int(np.prod(out_shape)) * shape[0] * k * k",
         "macs = int(np.prod(shape)) * out_shape[0] * k * k", "test_layer_costs_macs"),
        ("activation-memory-without-the-input", "activation_memory", "return stored + sum", "return sum",
         "test_activation_memory"),
        ("batch-size-ignored", "layer_costs", "* batch_size * bytes_per_value))", "* bytes_per_value))",
         "test_activation_memory"),
    ],
    "conv3d": [
        ('output-size-off-by-one', 'conv3d_output_shape', 'int((n + 2 * p[a] - k) // s[a] + 1)', 'int((n + 2 * p[a] - k + 1) // s[a])',
         'test_conv3d_output_shape'),
        ('padding-on-one-side-only', 'conv3d_output_shape', 'n + 2 * p[a] - k', 'n + p[a] - k',
         'test_conv3d_output_shape'),
        ('depth-kernel-flipped', 'conv3d', 'w[:, :, a, c, e])', 'w[:, :, -1 - a, c, e])',
         'test_conv3d'),
        ('stride-axes-reversed', 'conv3d', 's = (stride,) * 3 if np.ndim(stride) == 0 else tuple(stride)', 's = (stride,) * 3 if np.ndim(stride) == 0 else tuple(stride)[::-1]',
         'test_conv3d'),
        ('2plus1d-without-biases', 'conv2plus1d_params', 'return (k * k * c_in * m + m) + (t * m * c_out + c_out)', 'return k * k * c_in * m + t * m * c_out',
         'test_parameter_counts'),
        ('3d-kernel-k-cubed-ignoring-t', 'conv3d_params', 'return t * k * k * c_in * c_out + c_out', 'return k * k * k * c_in * c_out + c_out',
         'test_parameter_counts'),
        ('matching-channels-rounded-up', 'matching_channels', 'return (t * k * k * c_in * c_out) // (k * k * c_in + t * c_out)', 'return -(-(t * k * k * c_in * c_out) // (k * k * c_in + t * c_out))',
         'test_matching_channels'),
        ('macs-on-input-size', 'conv3d_macs', 'return d_out * h_out * w_out * t * k * k * c_in * c_out', 'return d * h * w * t * k * k * c_in * c_out',
         'test_macs'),
        ('2plus1d-spatial-stage-on-output-depth', 'conv2plus1d_macs', 'return d * h_out * w_out * k * k * c_in * m', 'return d_out * h_out * w_out * k * k * c_in * m',
         'test_macs'),
        ('window-never-shrinks', 'conv3d_stream_push', 'window = window[min(stride, kd):]', 'window = window',
         'test_conv3d_stream_push'),
        ('output-one-slice-late', 'conv3d_stream_push', 'if index == z * stride + kd - 1:', 'if index == z * stride + kd:',
         'test_conv3d_stream_push'),
        ('unneeded-slices-kept', 'conv3d_stream_push', 'if index >= z * stride:', 'if True:',
         'test_conv3d_stream_push'),
        ('stream-stops-after-first-output', 'conv3d_stream', '            yield out', '            yield out\n            return',
         'test_conv3d_stream'),
    ],
    "local_tiled": [
        ('tile-index-floor-division', 'tiled_conv2d', 'rows = np.arange(h_out) % th', 'rows = np.minimum(np.arange(h_out) // th, th - 1)',
         'test_tiled_conv2d'),
        ('tile-sizes-swapped', 'tiled_conv2d', 'cols = np.arange(w_out) % tw', 'cols = np.arange(w_out) % th',
         'test_tiled_conv2d'),
        ('stride-ignored', 'locally_connected2d', 'patch = xp[:, :, a:a + stride * (h_out - 1) + 1:stride, c:c + stride * (w_out - 1) + 1:stride]', 'patch = xp[:, :, a:a + h_out, c:c + w_out]',
         'test_locally_connected2d'),
        ('weights-shared-across-positions', 'locally_connected2d', 'w[:, :, :, :, a, c].astype(dtype)', 'np.broadcast_to(w[:, :1, :1, :, a, c], w.shape[:4]).astype(dtype)',
         'test_locally_connected2d'),
        ('tile-kernels-floor-division', 'tile_kernels', 'np.arange(out_w) % tw', 'np.minimum(np.arange(out_w) // tw, tw - 1)',
         'test_tile_kernels'),
        ('params-without-bias', 'tiled_conv_params', 'return c_out * t * t * c_in * k * k + c_out', 'return c_out * t * t * c_in * k * k',
         'test_parameter_counts'),
        ('local-params-kernel-not-squared', 'locally_connected_params', 'c_in * k * k + c_out', 'c_in * k + c_out',
         'test_parameter_counts'),
    ],
    "activations_losses": [
        ("sigmoid-derivative-without-1-minus-s", "sigmoid_backward", "s * (1 - s)", "s", "test_sigmoid"),
        ("softmax-not-stabilised", "softmax", "x.astype(dtype) - x.astype(dtype).max(axis=-1, keepdims=True)",
         "x.astype(dtype)", "test_softmax"),
        ("softmax-backward-diagonal-only", "softmax_backward", "(g - (g * y).sum(axis=-1, keepdims=True))",
         "g * (1 - y)", "test_softmax"),
        ("cross-entropy-gradient-sign-flipped", "cross_entropy_from_logits_backward",
         "y * t.sum(axis=-1, keepdims=True) - t", "t - y * t.sum(axis=-1, keepdims=True)", "test_cross_entropy"),
        ("cross-entropy-mean-over-rows", "cross_entropy_from_logits", "return float(-(t * log_y).sum())",
         "return float(-(t * log_y).sum(axis=-1).mean())", "test_cross_entropy"),
        ("depthwise-kernels-of-other-channels", "depthwise_separable_conv2d", "wd[:, 0, i, j][None, :, None, None]",
         "wd[::-1, 0, i, j][None, :, None, None]", "test_depthwise_separable_conv2d"),
        ("separable-params-of-the-standard-conv", "separable_params", "return c_in * k * k + c_in * c_out",
         "return c_in * c_out * k * k", "test_separable_counts"),
        # passes every visible test; only the hidden tests catch it
        ("hard-coded-visible-answers", "separable_params", "return c_in * k * k + c_in * c_out",
         "return {(32, 64, 3): 2336, (1, 1, 1): 2}.get((c_in, c_out, k), 0)", "test_separable_counts"),
        ("fgsm-descends-the-loss", "fgsm_step", "x + dtype(eps)", "x - dtype(eps)", "test_fgsm_step"),
        ("fgsm-not-clipped", "fgsm_step", "np.clip(x + dtype(eps) * np.sign(np.asarray(grad, dtype=dtype)), 0, 1)",
         "(x + dtype(eps) * np.sign(np.asarray(grad, dtype=dtype)))", "test_fgsm_step"),
        ("shift-wraps-around", "shift", "    return y\n", "    return np.roll(x, m).astype(float_dtype(x))\n",
         "test_shift_equivariance_boundary"),
        ("dense-bias-forgotten", "dense_params", "return (d_in + 1) * d_out", "return d_in * d_out",
         "test_fully_connected_counts"),
        ("connections-without-channels", "connections_per_output", "return k * k * c_in", "return k * k",
         "test_fully_connected_counts"),
        ("riemann-sum-without-dx", "riemann_convolution", "return (out * dx).astype(f.dtype)",
         "return out.astype(f.dtype)", "test_riemann_convolution"),
    ],
    "derivations": [
        ("missing-plus-one", "output_size_formula", ") / s) + 1", ") / s)", "test_output_size_formula_stride1"),
        ("ceiling-instead-of-floor", "output_size_formula", "sp.floor(", "sp.ceiling(", "test_output_size_formula_stride"),
        ("dilation-ignored", "output_size_formula", "d * (k - 1) - 1", "(k - 1) - 1", "test_output_size_formula_dilation"),
        ("a-number-not-a-formula", "output_size_formula", "return sp.floor((n + 2 * p - d * (k - 1) - 1) / s) + 1",
         "return 16", "test_output_size_formula_stride1"),
        ("a-string-not-a-formula", "transposed_output_size_formula", "return (n - 1) * s - 2 * p + k + a",
         'return "(n - 1) * s - 2 * p + k + a"', "test_transposed_size_formula_stride1"),
        ("transposed-n-times-s", "transposed_output_size_formula", "(n - 1) * s", "n * s",
         "test_transposed_size_formula_stride1"),
        ("rf-dilation-ignored", "receptive_field_stride1", "1 + L * d * (k - 1)", "1 + L * (k - 1)",
         "test_receptive_field_stride1_dilation"),
        ("rf-last-stride-counted", "receptive_field_strided", "(k - 1) * (s ** L - 1)", "(k - 1) * s * (s ** L - 1)",
         "test_receptive_field_strided_formula"),
        ("kernel-gradient-rows-and-columns-swapped", "kernel_gradient_entry", "x_[i, j + 1]", "x_[i + 1, j]",
         "test_kernel_gradient_entry"),
        ("input-gradient-kernel-not-flipped", "input_gradient_entry",
         "return sum(g_[1 - m, 2 - q] * K_[m, q] for m in range(3) for q in range(3) if 0 <= 1 - m < 2 and 0 <= 2 - q < 2)",
         "return g_[0, 0] * K_[0, 1] + g_[0, 1] * K_[0, 2] + g_[1, 0] * K_[1, 1] + g_[1, 1] * K_[1, 2]",
         "test_input_gradient_entry"),
        ("matching-channels-rounded-up", "matching_channels_formula", "sp.floor(", "sp.ceiling(",
         "test_matching_channels_formula"),
        ("float-coefficients", "separable_cost_ratio_formula",
         "return (C_in * k ** 2 + C_in * C_out) / (C_in * C_out * k ** 2)", "return 1.0 / C_out + 1.0 / k ** 2",
         "test_separable_cost_ratio_formula"),
        ("box-not-convolved", "box_convolution_formula",
         "return sp.Piecewise((0, x <= 0), (x, x <= 1), (2 - x, x <= 2), (0, True))",
         "return sp.Piecewise((1, (x >= 0) & (x < 1)), (0, True))", "test_box_convolution_formula"),
        ("triangle-twice-as-wide", "box_convolution_formula", "(2 - x, x <= 2)", "(2 - x / 2, x <= 4)",
         "test_box_convolution_formula"),
    ],
    "im2col": [
        ('rows-in-kernel-then-channel-order', 'im2col', 'return cols.reshape(n, c * kh * kw, h_out * w_out)', 'return cols.transpose(0, 2, 3, 1, 4, 5).reshape(n, c * kh * kw, h_out * w_out)',
         'test_im2col_layout'),
        ('dilation-ignored', 'im2col', 'top, left = i * dilation, j * dilation', 'top, left = i, j',
         'test_im2col_layout'),
        ('col2im-overlaps-overwrite', 'col2im', '+= blocks[:, :, i, j]', '= blocks[:, :, i, j]',
         'test_col2im_adjoint'),
        ('col2im-padding-not-cropped', 'col2im', 'return xp[:, :, padding:padding + h, padding:padding + w]', 'return xp[:, :, :h, :w]',
         'test_col2im_adjoint'),
        ('weight-rows-in-wrong-order', 'conv2d_gemm', 'w.astype(dtype).reshape(c_out, -1) @ cols', 'w.astype(dtype).transpose(0, 2, 3, 1).reshape(c_out, -1) @ cols',
         'test_conv2d_gemm'),
        ('bias-grad-not-summed-over-batch', 'conv2d_gemm_backward', 'db = g.sum(axis=(0, 2))', 'db = g[0].sum(axis=1)',
         'test_conv2d_gemm_backward'),
        ('input-grad-without-transpose', 'conv2d_gemm_backward', 'dcols = w.astype(dtype).reshape(c_out, -1).T @ g', 'dcols = w.astype(dtype)[:, :, ::-1, ::-1].reshape(c_out, -1).T @ g',
         'test_conv2d_gemm_backward'),
    ],
    "aliasing_gp_invertibility": [
        ("conv-zero-padded-not-circular", "circular_conv2d", "rows = (np.arange(h) + a - p) % h",
         "rows = np.clip(np.arange(h) + a - p, 0, h - 1)", "test_global_pooling_gives_invariance"),
        ("conv-kernel-flipped", "circular_conv2d", "w[:, :, a, q])", "w[:, :, k - 1 - a, k - 1 - q])",
         "test_global_pooling_gives_invariance"),
        ("windows-not-wrapped", "circular_max_pool2d", "+ np.arange(k)[None, :]) % h",
         "+ np.arange(k)[None, :]).clip(max=h - 1)", "test_circular_max_pool2d"),
        ("windows-not-strided", "circular_max_pool2d", "rows = (stride * np.arange(h // stride)[:, None]",
         "rows = (np.arange(h // stride)[:, None]", "test_circular_max_pool2d"),
        ("defect-without-the-shift-search", "equivariance_defect", "np.roll(y, (r1, r2), axis=(2, 3))", "y",
         "test_stride_breaks_equivariance"),
        ("blur-skipped", "blur_pool2d", "dense = circular_max_pool2d(x, 2, 1)",
         "return circular_max_pool2d(x, 2, stride)", "test_blur_pool2d"),
        ("blur-not-normalized", "blur_pool2d", "b = np.array([1.0, 2.0, 1.0]) / 4", "b = np.array([1.0, 2.0, 1.0])",
         "test_blur_pool2d"),
        ("blur-not-centred", "blur_pool2d", "+ a - 1) % h", "+ a) % h", "test_blur_pool2d"),
        ("gp-bias-variance-missing", "conv_gp_kernel", "np.full((la, lb), sigma_b2, dtype=dtype)",
         "np.zeros((la, lb), dtype=dtype)", "test_conv_gp_kernel"),
        ("gp-std-for-variance", "conv_gp_kernel", "kernel += sigma_w2 *", "kernel += np.sqrt(sigma_w2) *",
         "test_conv_gp_kernel"),
        ("gp-windows-misaligned", "conv_gp_kernel", "xb[:, j:j + lb])", "xb[:, k - 1 - j:k - 1 - j + lb])",
         "test_conv_gp_kernel"),
        ("gp-product-of-means", "monte_carlo_gp_kernel", "return (fa.T @ fb / len(w)).astype(dtype)",
         "return np.outer(fa.mean(axis=0), fb.mean(axis=0)).astype(dtype)", "test_monte_carlo_gp_kernel"),
        ("gp-divides-by-s-minus-1", "monte_carlo_gp_kernel", "/ len(w)", "/ (len(w) - 1)", "test_monte_carlo_gp_kernel"),
        ("matrix-not-flipped", "convolution_matrix", "w = np.asarray(w, dtype=float_dtype(w))",
         "w = np.asarray(w, dtype=float_dtype(w))[::-1]", "test_convolution_matrix"),
        ("circular-not-wrapped", "convolution_matrix",
         'if mode == "circular":\n                a[r, (t - j) % n] += w[j]\n            elif 0 <= t - j < n:',
         "if 0 <= t - j < n:", "test_convolution_matrix"),
        ("matrix-stride-ignored", "convolution_matrix", "return a[::stride]", "return a", "test_convolution_matrix"),
        ("divides-by-erased-frequencies", "circular_deconvolve",
         "np.where(kept, np.fft.fft(y) / np.where(kept, w_hat, 1.0), 0.0)", "np.fft.fft(y) / w_hat",
         "test_circular_deconvolve"),
        ("deconvolve-not-flipped", "circular_deconvolve", "/ np.where(kept, w_hat, 1.0)",
         "/ np.where(kept, np.conj(w_hat), 1.0)", "test_circular_deconvolve"),
        ("condition-finite-when-not-injective", "condition_number",
         '    if a.shape[0] < n or np.linalg.matrix_rank(a) < n:\n        return float("inf")\n', "",
         "test_condition_number"),
        ("condition-squared", "condition_number", "return float(np.linalg.cond(a))",
         "return float(np.linalg.cond(a)) ** 2", "test_condition_number"),
        # passes every visible test; only the hidden tests catch it
        ("hard-coded-visible-answers", "condition_number", "return float(np.linalg.cond(a))",
         'return {(8, "circular"): 3.0, (8, "full"): 78.91764202925728, (32, "full"): 7108.648104487227, '
         '(128, "full"): 1298724.1243253557}.get((n, mode), 1.0)', "test_condition_number"),
    ],
    "efficient_counting": [
        ("block-padding-forgotten", "first_block_numbers", "ho, wo = h + 2 * padding - k + 1, w + 2 * padding - k + 1",
         "ho, wo = h - k + 1, w - k + 1", "test_first_block_numbers"),
        ("block-bias-forgotten", "first_block_numbers", "params = (k * k * c + 1) * filters",
         "params = k * k * c * filters", "test_first_block_numbers"),
        ("block-flops-for-macs", "first_block_numbers", "macs = filters * ho * wo * k * k * c",
         "macs = 2 * filters * ho * wo * k * k * c", "test_first_block_numbers"),
        ("block-pool-squared-comparisons", "first_block_numbers", "(pool * pool - 1)", "pool * pool",
         "test_first_block_numbers"),
        ("block-bytes-float64", "first_block_numbers", "activation_bytes = 4 *", "activation_bytes = 8 *",
         "test_first_block_numbers"),
        ("block-rf-multiplied", "first_block_numbers", "receptive_field = k + (pool - 1) * 1",
         "receptive_field = k * pool", "test_first_block_numbers"),
        ("shuffle-grid-swapped", "channel_shuffle", "x.reshape(n, groups, c // groups, *x.shape[2:])",
         "x.reshape(n, c // groups, groups, *x.shape[2:])", "test_channel_shuffle"),
        ("shuffle-not-transposed", "channel_shuffle", ".swapaxes(1, 2)", "", "test_channel_shuffle"),
        ("shuffle-backward-is-forward", "channel_shuffle_backward", "dx[:, j * m + i] = dout[:, i * groups + j]",
         "dx[:, i * groups + j] = dout[:, j * m + i]", "test_channel_shuffle_backward"),
        ("scaling-not-squared", "compound_scaling_flops", "(d * w ** 2 * r ** 2) ** phi", "(d * w * r) ** phi",
         "test_compound_scaling_flops"),
        ("scaling-phi-ignored", "compound_scaling_flops", "(d * w ** 2 * r ** 2) ** phi", "d * w ** 2 * r ** 2",
         "test_compound_scaling_flops"),
        # passes every visible test; only the hidden tests catch it
        ("hard-coded-visible-answers", "channel_shuffle",
         "return x.reshape(n, groups, c // groups, *x.shape[2:]).swapaxes(1, 2).reshape(x.shape).copy()",
         "return x[:, {(9, 3): [0, 3, 6, 1, 4, 7, 2, 5, 8], (6, 2): [0, 3, 1, 4, 2, 5], (6, 3): [0, 2, 4, 1, 3, 5], "
         "(4, 2): [0, 2, 1, 3]}.get((c, groups), list(range(c)))]", "test_channel_shuffle"),
    ],
}


def _run(args, cwd, timeout=600):
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONHASHSEED": "0",
                               # nbgrader runs `alembic` from the venv when it creates a gradebook
                               "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])})
    return proc


def _nbgrader(args, cwd, timeout=600):
    proc = _run(NBGRADER + args, cwd, timeout)
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _inject(nb: dict, cell_id: str, old: str, new: str) -> dict:
    nb = json.loads(json.dumps(nb))
    for cell in nb["cells"]:
        if cell.get("id") == cell_id:
            src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            assert old in src, f"wrong-answer patch: {old!r} not found in answer cell {cell_id!r}"
            cell["source"] = src.replace(old, new)
            return nb
    raise AssertionError(f"no answer cell {cell_id!r}")


# Runs notebooks' code cells in order in a fresh namespace each (no Jupyter kernel: fast) and
# reports, per notebook, which graded test cells failed. Used for the wrong-answer variants.
_RUNNER = r"""
import json, sys, traceback
out = []
for path in sys.argv[1:]:
    nb = json.load(open(path, encoding="utf-8"))
    ns = {"__name__": "__main__"}
    failed = {}
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"])
        meta = cell["metadata"].get("nbgrader", {})
        try:
            exec(compile(src, cell.get("id", "cell"), "exec"), ns)
        except Exception as exc:
            if meta.get("grade"):
                failed[meta["grade_id"]] = f"{type(exc).__name__}: {exc}"[:300]
    out.append(failed)
print(json.dumps(out))
"""


def _failing_tests(paths: list[Path], cwd: Path) -> list[dict[str, str]]:
    proc = _run([sys.executable, "-c", _RUNNER, *map(str, paths)], cwd)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _grade_cells(nb_path: Path) -> dict[str, float]:
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    return {c["metadata"]["nbgrader"]["grade_id"]: c["metadata"]["nbgrader"]["points"]
            for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade")}


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> dict:
    """A temporary course directory: every assignment released and autograded in one batch.

    One ``generate_assignment "*"`` and one ``autograde "*"`` call (nbgrader expands the glob),
    with two students per assignment: ``solution`` (the instructor's notebook) and ``blank``
    (the release, unanswered).
    """
    root = tmp_path_factory.mktemp("course")
    (root / "solutions").mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    for name in ASSIGNMENTS:
        shutil.copytree(ROOT / "solutions" / name, root / "solutions" / name)
    _nbgrader(["generate_assignment", "*", "--force", "--log-level=WARN"], root)
    for name in ASSIGNMENTS:
        release = root / "exercises" / name / f"{name}.ipynb"
        for student, src in (("solution", root / "solutions" / name / f"{name}.ipynb"), ("blank", release)):
            target = root / "submitted" / student / name
            target.mkdir(parents=True)
            shutil.copy(src, target / f"{name}.ipynb")
    _nbgrader(["autograde", "*", "--force", "--log-level=WARN"], root)

    from nbgrader.api import Gradebook

    scores: dict[tuple[str, str], dict[str, float]] = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for name in ASSIGNMENTS:
            for student in ("solution", "blank"):
                sub = gb.find_submission_notebook(name, name, student)
                scores[name, student] = {g.name: g.score for g in sub.grades if g.max_score > 0}
    return {"root": root, "scores": scores}


def test_every_source_builds_its_committed_solution():
    """solutions/<a>/<a>.ipynb is exactly what solutions/_sources/build.py makes of the source."""
    proc = _run([sys.executable, str(SOURCES / "build.py"), "--check"], ROOT)
    assert proc.returncode == 0, proc.stderr
    missing = [a for a in build.ASSIGNMENTS if a not in ASSIGNMENTS]
    assert ASSIGNMENTS and not missing, f"assignments without a source solutions/_sources/<a>.nb.txt: {missing}"


@pytest.mark.slow
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_committed_release_is_regenerated_exactly(course, name):
    """exercises/<a>/<a>.ipynb is byte-identical to a fresh nbgrader generate_assignment."""
    fresh = (course["root"] / "exercises" / name / f"{name}.ipynb").read_bytes()
    committed = ROOT / "exercises" / name / f"{name}.ipynb"
    assert committed.exists(), f"{committed} is missing: run `make release`"
    assert committed.read_bytes() == fresh, f"{committed} differs from the generated release: run `make release`"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_release_hides_solutions_and_hidden_tests(name):
    """The student version has stubs raising NotImplementedError and no hidden tests or cnnmath."""
    text = (ROOT / "exercises" / name / f"{name}.ipynb").read_text(encoding="utf-8")
    nb = json.loads(text)
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    assert not any("import cnnmath" in src for src in code), "cnnmath leaked into the release"
    answers = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("solution")]
    assert answers and all("raise NotImplementedError()" in "".join(c["source"]) for c in answers)
    tests = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade")]
    assert len(tests) >= 2, "each assignment needs several graded parts"
    for cell in tests:
        meta = cell["metadata"]["nbgrader"]
        assert meta["points"] > 0 and meta["locked"] and meta["grade_id"].startswith("test_")
        assert "".join(cell["source"]).lstrip().startswith('"""'), f"{meta['grade_id']}: no docstring"


@pytest.mark.slow
def test_nbgrader_validate_solutions_and_inverted_releases(tmp_path):
    """`nbgrader validate` passes every solution; `validate --invert` passes every unanswered release."""
    sols, rels = [], []
    for name in ASSIGNMENTS:
        for kind, src, bucket in (("solution", ROOT / "solutions" / name / f"{name}.ipynb", sols),
                                  ("release", ROOT / "exercises" / name / f"{name}.ipynb", rels)):
            dst = tmp_path / kind / f"{name}.ipynb"
            dst.parent.mkdir(exist_ok=True)
            shutil.copy(src, dst)
            bucket.append(str(dst))
    # the two nbgrader runs are independent: run them side by side
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    procs = [subprocess.Popen(NBGRADER + args, cwd=tmp_path, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for args in (["validate", *sols], ["validate", "--invert", *rels])]
    (ok, ok_err), (inv, inv_err) = (p.communicate(timeout=900) for p in procs)
    assert all(p.returncode == 0 for p in procs), ok_err + inv_err
    assert ok.count("Success! Your notebook passes all the tests.") == len(sols), ok
    assert inv.count("Success! The notebook does not pass any tests.") == len(rels), inv


@pytest.mark.slow
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_autograde_solution_full_marks_blank_zero(course, name):
    """Autograded as submissions: the solution scores full marks, the unanswered release 0 everywhere."""
    expected = _grade_cells(ROOT / "solutions" / name / f"{name}.ipynb")
    solution, blank = course["scores"][name, "solution"], course["scores"][name, "blank"]
    assert solution == expected, f"{name}: the solution lost points: {solution} (max {expected})"
    assert blank == {k: 0 for k in expected}, f"{name}: the unanswered release scored: {blank}"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_wrong_answers_fail_their_part(tmp_path, name):
    """Each wrong-but-plausible answer fails (at least) the graded part it belongs to.

    The unchanged solution is run the same way first, so a failure is due to the injected mistake.
    """
    assert WRONG.get(name), f"no wrong-answer variants defined for {name}"
    solution = json.loads((ROOT / "solutions" / name / f"{name}.ipynb").read_text(encoding="utf-8"))
    paths = [tmp_path / "solution.ipynb"]
    paths[0].write_text(json.dumps(solution), encoding="utf-8")
    for label, cell_id, old, new, _part in WRONG[name]:
        path = tmp_path / f"wrong-{label}.ipynb"
        path.write_text(json.dumps(_inject(solution, cell_id, old, new)), encoding="utf-8")
        paths.append(path)
    results = _failing_tests(paths, tmp_path)
    assert results[0] == {}, f"the reference solution fails: {results[0]}"
    for (label, _cell, _old, _new, part), failed in zip(WRONG[name], results[1:]):
        assert part in failed, f"wrong answer {label!r} still passes {part} (failures: {failed})"


@pytest.mark.parametrize("name", [n for n in ASSIGNMENTS
                                  if any(w[0] == "hard-coded-visible-answers" for w in WRONG.get(n, []))])
def test_hidden_tests_catch_hard_coded_answers(tmp_path, name):
    """An answer that hard-codes the visible cases passes every visible test and fails a hidden one."""
    import re

    solution = json.loads((ROOT / "solutions" / name / f"{name}.ipynb").read_text(encoding="utf-8"))
    (label, cell_id, old, new, part), = [w for w in WRONG[name] if w[0] == "hard-coded-visible-answers"]
    cheat = _inject(solution, cell_id, old, new)
    visible_only = json.loads(json.dumps(cheat))
    for cell in visible_only["cells"]:
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        cell["source"] = re.sub(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", "", src, flags=re.S)
    paths = [tmp_path / "visible.ipynb", tmp_path / "full.ipynb"]
    paths[0].write_text(json.dumps(visible_only), encoding="utf-8")
    paths[1].write_text(json.dumps(cheat), encoding="utf-8")
    visible, full = _failing_tests(paths, tmp_path)
    assert visible == {}, f"the hard-coded answer should pass the visible tests: {visible}"
    assert part in full, f"the hidden tests of {part} did not catch the hard-coded answer"


def test_seed_map_column_is_generated_from_the_graded_parts():
    """book/seed-map.md's graded-notebook column is exactly what the test cells' "Seed map:" tags claim."""
    proc = _run([sys.executable, str(SOURCES / "seed_map.py"), "--check"], ROOT)
    assert proc.returncode == 0, proc.stderr


def test_seed_map_generator_claims_only_tagged_parts():
    """Untagging a part removes its claim; a tag naming no row is an error, not a silent skip."""
    spec = importlib.util.spec_from_file_location("seed_map", SOURCES / "seed_map.py")
    seed_map = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(seed_map)
    text = (ROOT / "book" / "seed-map.md").read_text(encoding="utf-8")
    nbs = {a: json.loads((ROOT / "solutions" / a / f"{a}.ipynb").read_text(encoding="utf-8")) for a in ASSIGNMENTS}
    parts = seed_map.graded_parts(nbs)
    assert seed_map.generate(text, parts) == text
    row = next(line for line in text.splitlines() if "total 2,842" in line)
    assert "`receptive_field`: `test_totals_and_vgg`" in row
    fewer = [(a, g, items if g != "test_totals_and_vgg" else []) for a, g, items in parts]
    new_row = next(line for line in seed_map.generate(text, fewer).splitlines() if "total 2,842" in line)
    assert "test_totals_and_vgg" not in new_row and new_row.endswith("| |")
    with pytest.raises(seed_map.SeedMapError, match="matches no row"):
        seed_map.generate(text, parts + [("conv2d", "test_x", [("003", "IV", "a claim nobody made")])])
    # every graded part is tagged with at least one row
    untagged = [f"{a}:{g}" for a, g, items in parts if not items]
    assert len(untagged) <= 2, f"graded parts that claim no seed-map row: {untagged}"


def test_book_page_offers_every_release_with_its_points():
    """book/exercises.md links every released notebook (never solutions/) and states its total points."""
    page = (ROOT / "book" / "exercises.md").read_text(encoding="utf-8")
    assert "solutions/" not in page
    for name in ASSIGNMENTS:
        link = f"<../exercises/{name}/{name}.ipynb>"
        rows = [line for line in page.splitlines() if link in line]
        assert len(rows) == 1, f"book/exercises.md must link {link} exactly once"
        total = sum(_grade_cells(ROOT / "exercises" / name / f"{name}.ipynb").values())
        assert rows[0].rstrip().rstrip("|").rstrip().endswith(f"| {total:g}"), \
            f"book/exercises.md: the row of {name} must end with its {total:g} points: {rows[0]}"
