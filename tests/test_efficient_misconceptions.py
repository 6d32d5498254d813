"""The efficient_counting notebook's misconceptions, on plain data.

Each mistake is made on purpose by hand-written arithmetic or index loops (independent of the
cnnmath variants the diagnosers compute), and :func:`course_grader.misconceptions.diagnose` must
name exactly that mistake; right answers and unrelated wrong ones are never diagnosed.
End to end: the reference answers, graded through the real sandbox and job pipeline, earn every point
with no flag (not mistaken for copies of cnnmath); a notebook with four typical wrong answers loses
exactly their parts, and each failed part's message names its misconception.
"""

import numpy as np
import pytest

from course_grader.efficient_misconceptions import EFFICIENT_DIAGNOSERS, EFFICIENT_SENTENCES
from course_grader.misconceptions import DIAGNOSERS, SENTENCES, diagnose
from tests.grader_helpers import grade_reference_and_wrong_answers, needs_bwrap

NAME = "efficient_counting"


def hand_block(c, h, w, filters, k, padding, pool, bias=True, flops=False, cmp_per_window=None, itemsize=4,
               pool_bytes_only=False, rf=None):
    ho, wo = h + 2 * padding - k + 1, w + 2 * padding - k + 1
    hp, wp = ho // pool, wo // pool
    bytes_ = itemsize * (filters * hp * wp if pool_bytes_only else 2 * filters * ho * wo + filters * hp * wp)
    return ((filters, ho, wo), (filters, hp, wp), (k * k * c + bias) * filters,
            (2 if flops else 1) * filters * ho * wo * k * k * c,
            filters * hp * wp * (pool * pool - 1 if cmp_per_window is None else cmp_per_window),
            bytes_, k + pool - 1 if rf is None else rf)


SEED = ((3, 16, 16), 8, 3, 1, 2)


@pytest.mark.parametrize("wrong, key", [
    (dict(bias=False), "block_bias_forgotten"),
    (dict(flops=True), "block_macs_as_flops"),
    (dict(cmp_per_window=4), "block_pool_comparisons_per_element"),
    (dict(itemsize=8), "block_bytes_float64"),
    (dict(pool_bytes_only=True), "block_bytes_pool_only"),
    (dict(rf=6), "block_receptive_field_product"),
    (dict(rf=5), "block_receptive_field_sum"),
])
def test_first_block_mistakes_are_named(wrong, key):
    """Seed 003's block (224, 55,296, 1,536, 18,432 bytes, 4) with one number wrong names that number's mistake."""
    (c, h, w), f, k, p, pool = SEED
    assert hand_block(c, h, w, f, k, p, pool) == ((8, 16, 16), (8, 8, 8), 224, 55296, 1536, 18432, 4)
    assert diagnose("first_block_numbers", SEED, {}, hand_block(c, h, w, f, k, p, pool, **wrong)) == key


def test_first_block_padding_forgotten_and_right_answers():
    """Padding left out everywhere is named; the right tuple (or a list of it) and an unrelated error are not."""
    args = ((2, 9, 7), 5, 3)
    kwargs = dict(padding=2, pool=3)
    right = hand_block(2, 9, 7, 5, 3, 2, 3)
    assert diagnose("first_block_numbers", args, kwargs, hand_block(2, 9, 7, 5, 3, 0, 3)) == "padding_forgotten"
    assert diagnose("first_block_numbers", args, kwargs, right) is None
    assert diagnose("first_block_numbers", args, kwargs, list(right)) is None
    assert diagnose("first_block_numbers", args, kwargs, right[:6] + (99,)) is None
    assert diagnose("first_block_numbers", args, kwargs, "224") is None


def loop_shuffle(x, g, inverse=False):
    m = x.shape[1] // g
    y = np.empty_like(x)
    for i in range(m):
        for j in range(g):
            if inverse:
                y[:, j * m + i] = x[:, i * g + j]
            else:
                y[:, i * g + j] = x[:, j * m + i]
    return y


def test_channel_shuffle_mistakes_are_named():
    """The inverse permutation for the forward, the identity, and the forward for the backward are each named."""
    x = np.random.default_rng(3).standard_normal((2, 6, 3))
    assert diagnose("channel_shuffle", (x, 2), {}, loop_shuffle(x, 2)) is None
    assert diagnose("channel_shuffle", (x, 2), {}, loop_shuffle(x, 2, inverse=True)) == "shuffle_grid_swapped"
    assert diagnose("channel_shuffle", (x, 3), {}, x.copy()) == "shuffle_not_transposed"
    assert diagnose("channel_shuffle_backward", (x, 2), {}, loop_shuffle(x, 2, inverse=True)) is None
    assert diagnose("channel_shuffle_backward", (x, 2), {}, loop_shuffle(x, 2)) == "shuffle_backward_is_forward"
    assert diagnose("channel_shuffle_backward", (x, 3), {}, x.copy()) == "shuffle_not_transposed"
    assert diagnose("channel_shuffle", (x, 2), {}, -loop_shuffle(x, 2)) is None
    # g = 1 and g = C are the identity: nothing to diagnose in an identity answer
    assert diagnose("channel_shuffle", (x, 1), {}, x.copy()) is None
    assert diagnose("channel_shuffle", (x, 6), {}, x.copy()) is None


@pytest.mark.parametrize("args, got, key", [
    ((2.0, 1.5, 1.25), 2.0 * 1.5 * 1.25, "scaling_not_squared"),
    ((2.0, 1.5, 1.25), (2.0 * 1.5 * 1.25) ** 2, "scaling_depth_squared"),
    ((1.2, 1.1, 1.15, 3), 1.2 * 1.21 * 1.3225, "scaling_phi_ignored"),
    ((1.2, 1.1, 1.15, 3), 3 * 1.2 * 1.21 * 1.3225, "scaling_phi_multiplied"),
    ((1.2, 1.1, 1.15, 3), (1.2 * 1.21 * 1.3225) ** 3, None),
    ((2.0, 1.5, 1.25), 2.0 * 1.5 ** 2 * 1.25 ** 2, None),
    ((2.0, 1.5, 1.25), 7.0, None),
])
def test_compound_scaling_mistakes_are_named(args, got, key):
    """Width/resolution counted once, depth squared, phi ignored or multiplied: each named; the right factor is not."""
    assert diagnose("compound_scaling_flops", args, {}, got) == key


def test_registry_holds_every_key_and_function():
    """Every sentence key is registered with the grader, and every diagnosed function too."""
    assert set(EFFICIENT_SENTENCES) <= set(SENTENCES)
    assert all(DIAGNOSERS[name] is fn for name, fn in EFFICIENT_DIAGNOSERS.items())


# -- end to end ------------------------------------------------------------------------------
WRONG_ANSWERS = {   # answer cell -> (text in the reference answer, replacement, failed part, misconception)
    "first_block_numbers": ("(pool * pool - 1)", "pool * pool", "test_first_block_numbers",
                            "block_pool_comparisons_per_element"),
    "channel_shuffle": ("x.reshape(n, groups, c // groups, *x.shape[2:])", "x.reshape(n, c // groups, groups, *x.shape[2:])",
                        "test_channel_shuffle", "shuffle_grid_swapped"),
    "channel_shuffle_backward": ("dx[:, j * m + i] = dout[:, i * groups + j]", "dx[:, i * groups + j] = dout[:, j * m + i]",
                                 "test_channel_shuffle_backward", "shuffle_backward_is_forward"),
    "compound_scaling_flops": ("(d * w ** 2 * r ** 2) ** phi", "(d * w * r) ** phi", "test_compound_scaling_flops",
                               "scaling_not_squared"),
}


@needs_bwrap
def test_the_grader_names_each_misconception(tmp_path):
    """Reference answers: full marks, no flag; four wrong answers: their parts lost, each misconception named."""
    grade_reference_and_wrong_answers(NAME, WRONG_ANSWERS, SENTENCES, tmp_path)
