"""Misconceptions of the efficient_counting notebook (merged into :mod:`course_grader.misconceptions`,
which runs them: same contract, plain data only).

Each diagnoser takes the arguments the trusted test sent to one student function and returns the
correct result (computed with ``cnnmath``) and the wrong variants that name a mistake: for seed 003's
first block, the padding left out, the biases forgotten, FLOPs given for multiply-adds, ``k^2``
comparisons per window instead of ``k^2 - 1``, float64 bytes, the bytes of the pooled output alone,
a receptive field multiplied (``k * pool``) or added (``k + pool``); for the channel shuffle, the
grid read the wrong way round (``(m, g)`` instead of ``(g, m)``, which is the inverse permutation),
the transpose left out, and a backward pass that applies the forward permutation again; for compound
scaling, width and resolution counted once, depth squared too, and the compound coefficient ignored
or multiplied instead of raised to.
"""
import numpy as np

__all__ = ["EFFICIENT_DIAGNOSERS", "EFFICIENT_SENTENCES"]

EFFICIENT_SENTENCES = {
    "block_bias_forgotten": (
        "Your parameter count leaves out the biases: each filter has k * k * C weights plus one bias, so the "
        "convolution has (k^2 C + 1) * filters parameters (seed 003: (27 + 1) * 8 = 224)."),
    "block_macs_as_flops": (
        "Your multiply-add count is twice too large: that is the FLOP count (a multiply and an add); one "
        "multiply-add per weight per output element is C_out H_out W_out C_in k^2 (55,296 for seed 003)."),
    "block_pool_comparisons_per_element": (
        "Your comparison count uses pool^2 per window: the largest of m numbers takes m - 1 pairwise "
        "comparisons, so a 2x2 window costs 3 (512 windows x 3 = 1,536 for seed 003)."),
    "block_bytes_float64": (
        "Your activation bytes are twice too large: the outputs are float32, 4 bytes a number, not 8."),
    "block_bytes_pool_only": (
        "Your activation bytes count only the pooled output: the backward pass keeps the convolution's and "
        "the ReLU's outputs too (3 arrays, 4 bytes a number)."),
    "block_receptive_field_product": (
        "Your receptive field multiplies the kernel by the pool: the pool adds (pool - 1) times the jump of "
        "its input (1 after a stride-1 convolution), so the field is k + pool - 1 (3 + 1 = 4 for seed 003)."),
    "block_receptive_field_sum": (
        "Your receptive field adds the kernel and the pool sizes: two windows of sizes k and pool that overlap "
        "by one see k + pool - 1 pixels (r = r_prev + (pool - 1) * jump)."),
    "shuffle_grid_swapped": (
        "Your shuffle reads the channels as an (m, g) grid instead of (g, m): that is the inverse permutation. "
        "Reshape to (N, groups, C // groups, ...), swap those two axes, and reshape back."),
    "shuffle_not_transposed": (
        "Your shuffle leaves the channels in place: reshaping to (groups, C // groups) and back without "
        "swapping the two axes is the identity; the transpose is what deals each group out to all groups."),
    "shuffle_backward_is_forward": (
        "Your backward pass applies the forward shuffle again: the gradient must go back where each value came "
        "from, the inverse permutation, which is the shuffle with C // groups groups."),
    "scaling_not_squared": (
        "Your factor counts width and resolution once: the cost H W C_in C_out k^2 has two factors that grow "
        "with the width (C_in, C_out) and two with the resolution (H, W), so it grows by d w^2 r^2."),
    "scaling_depth_squared": (
        "Your factor squares the depth too: more layers add their costs, so depth enters once, d w^2 r^2 "
        "(not d^2 w^2 r^2)."),
    "scaling_phi_ignored": (
        "Your factor ignores phi: depth, width and resolution are d^phi, w^phi, r^phi, so the cost grows by "
        "(d w^2 r^2)^phi."),
    "scaling_phi_multiplied": (
        "Your factor multiplies by phi instead of raising to the power phi: the multipliers are d^phi, w^phi "
        "and r^phi, so the cost grows by (d w^2 r^2)^phi."),
}


def _cnnmath():
    import cnnmath
    return cnnmath


def _block(in_shape, filters, k, padding, pool):
    cm = _cnnmath()
    c, h, w = (int(v) for v in in_shape)
    conv_shape = cm.conv_output_shape((c, h, w), filters, k, padding=padding)
    pool_shape = cm.pool_output_shape(conv_shape, pool)
    rf = cm.receptive_field_table([(k, 1, 1, padding), (pool, pool)])[-1].receptive_field
    return [conv_shape, pool_shape, cm.conv_params(c, filters, k), cm.conv_macs((c, h, w), filters, k, padding=padding),
            cm.max_pool_comparisons(conv_shape, pool),
            2 * cm.activation_bytes(conv_shape) + cm.activation_bytes(pool_shape), rf]


def _first_block_numbers(in_shape, filters, k, padding=0, pool=2):
    cm = _cnnmath()
    ref = _block(in_shape, filters, k, padding, pool)

    def changed(index, value):
        return lambda: tuple(ref[:index] + [value] + ref[index + 1:])
    out = []
    if padding:
        out.append(("padding_forgotten", lambda: tuple(_block(in_shape, filters, k, 0, pool))))
    out += [("block_bias_forgotten", changed(2, ref[2] - filters)),
            ("block_macs_as_flops", changed(3, 2 * ref[3])),
            ("block_pool_comparisons_per_element", changed(4, int(np.prod(ref[1])) * pool * pool)),
            ("block_bytes_float64", changed(5, 2 * ref[5])),
            ("block_bytes_pool_only", changed(5, cm.activation_bytes(ref[1]))),
            ("block_receptive_field_product", changed(6, k * pool)),
            ("block_receptive_field_sum", changed(6, k + pool))]
    return tuple(ref), out


def _channel_shuffle(x, groups):
    cm = _cnnmath()
    x = np.asarray(x, dtype=np.float64)
    return cm.channel_shuffle(x, groups), [("shuffle_grid_swapped", lambda: cm.channel_shuffle(x, x.shape[1] // groups)),
                                           ("shuffle_not_transposed", lambda: x.copy())]


def _channel_shuffle_backward(dout, groups):
    cm = _cnnmath()
    dout = np.asarray(dout, dtype=np.float64)
    return cm.channel_shuffle_backward(dout, groups), [("shuffle_backward_is_forward",
                                                        lambda: cm.channel_shuffle(dout, groups)),
                                                       ("shuffle_not_transposed", lambda: dout.copy())]


def _compound_scaling_flops(d, w, r, phi=1):
    cm = _cnnmath()
    ref = cm.compound_scaling_factor(d, w, r, phi)
    base = d * w * w * r * r
    out = [("scaling_not_squared", lambda: (d * w * r) ** phi),
           ("scaling_depth_squared", lambda: (d * w * r) ** (2 * phi))]
    if phi != 1:
        out += [("scaling_phi_ignored", lambda: base), ("scaling_phi_multiplied", lambda: phi * base)]
    return ref, out


#: student function name -> a function of the same arguments returning (reference, variants)
EFFICIENT_DIAGNOSERS = {
    "first_block_numbers": _first_block_numbers,
    "channel_shuffle": _channel_shuffle,
    "channel_shuffle_backward": _channel_shuffle_backward,
    "compound_scaling_flops": _compound_scaling_flops,
}
