"""Every bad argument of conv / conv_backward / conv_transpose raises a clear error naming it."""

from __future__ import annotations

import numpy as np
import pytest

from cnnmath import conv, conv1d, conv2d, conv3d, conv_backward, conv_transpose, conv_transpose_backward

X = np.zeros((1, 4, 6, 6))
W = np.zeros((2, 4, 3, 3))


@pytest.mark.parametrize("call,exc,pattern", [
    # channel mismatch
    (lambda: conv(X, np.zeros((2, 3, 3, 3))), ValueError, r"channels.*C_in=4"),
    (lambda: conv(X, np.zeros((2, 1, 3, 3)), groups=2), ValueError, r"channels.*w.shape\[1\] \* groups = 2"),
    (lambda: conv_transpose(X, np.zeros((3, 2, 3, 3))), ValueError, r"channels.*C_in=4"),
    # wrong rank
    (lambda: conv(np.zeros((4, 6)), W), ValueError, r"x must have at least 3 dimensions.*\(4, 6\)"),
    (lambda: conv(X, np.zeros((2, 4, 3))), ValueError, r"w must be a 4-D array"),
    (lambda: conv2d(np.zeros((1, 4, 6)), np.zeros((2, 4, 3))), ValueError, r"w must be a 4-D array"),
    (lambda: conv1d(X, np.zeros((2, 4, 3))), ValueError, r"x must be a 3-D array \(N, C_in, L\)"),
    (lambda: conv3d(X, W), ValueError, r"w must be a 5-D array \(C_out, C_in/groups, kD, kH, kW\)"),
    (lambda: conv3d(np.zeros((4, 6, 6)), np.zeros((2, 4, 3, 3, 3))), ValueError,
     r"x must be a 5-D array \(N, C_in, D, H, W\)"),
    (lambda: conv2d(np.zeros((6, 6)), W), ValueError, r"x must be a 4-D array \(N, C_in, H, W\) or unbatched"),
    (lambda: conv_transpose(X, np.zeros((4, 2, 3))), ValueError, r"w must be a 4-D array"),
    # kernel larger than the padded input
    (lambda: conv(X, np.zeros((2, 4, 7, 3))), ValueError, r"kernel_size=\(7, 3\).*larger than the padded input of size 6"),
    (lambda: conv(X, W, dilation=3), ValueError, r"dilated extent 7.*larger"),
    # stride / dilation < 1
    (lambda: conv(X, W, stride=0), ValueError, r"stride must be a positive int, got 0"),
    (lambda: conv(X, W, stride=(1, -1)), ValueError, r"stride must be a positive int, got \(1, -1\)"),
    (lambda: conv(X, W, dilation=0), ValueError, r"dilation must be a positive int, got 0"),
    (lambda: conv_transpose(X, np.zeros((4, 2, 3, 3)), stride=0), ValueError, r"stride must be a positive int, got 0"),
    (lambda: conv(X, W, stride=(1, 1, 1)), ValueError, r"stride must be an int or a tuple of 2 ints"),
    (lambda: conv(X, W, stride=1.5), TypeError, r"stride must be a positive int"),
    # negative padding
    (lambda: conv(X, W, padding=-1), ValueError, r"padding must be a non-negative int, got -1"),
    (lambda: conv(X, W, padding=((0, -1), (0, 0))), ValueError, r"padding must be non-negative"),
    (lambda: conv_transpose(X, np.zeros((4, 2, 3, 3)), padding=-2), ValueError, r"padding must be a non-negative int, got -2"),
    (lambda: conv(X, W, padding="sometimes"), ValueError, r"padding must be .*'sometimes'"),
    # output_padding must be smaller than stride or dilation
    (lambda: conv_transpose(X, np.zeros((4, 2, 3, 3)), stride=2, output_padding=2), ValueError,
     r"output_padding must be smaller than stride or dilation, got output_padding=2"),
    (lambda: conv_transpose(X, np.zeros((4, 2, 3, 3)), output_padding=1), ValueError, r"output_padding"),
    (lambda: conv_transpose(X, np.zeros((4, 2, 3, 3)), output_padding=-1), ValueError, r"output_padding must be a non-negative"),
    (lambda: conv_transpose(X, np.zeros((4, 2, 3, 3)), padding="same"), ValueError, r"padding of a transposed convolution"),
    # "same" with stride > 1
    (lambda: conv(X, W, padding="same", stride=2), ValueError, r'padding="same" requires stride 1.*\(2, 2\)'),
    # groups
    (lambda: conv(X, np.zeros((2, 4, 3, 3)), groups=3), ValueError, r"groups=3 must divide the input channels C_in=4"),
    (lambda: conv(X, np.zeros((3, 2, 3, 3)), groups=2), ValueError, r"groups=2 must divide the output channels C_out=3"),
    (lambda: conv(X, W, groups=0), ValueError, r"groups must be a positive int, got 0"),
    (lambda: conv_transpose(X, np.zeros((4, 2, 3, 3)), groups=3), ValueError, r"groups=3 must divide the input channels C_in=4"),
    # non-numeric arrays
    (lambda: conv(np.full((1, 4, 6, 6), "a"), W), TypeError, r"x must be a real numeric array, got dtype <U1"),
    (lambda: conv(X, W.astype(complex)), TypeError, r"w must be a real numeric array, got dtype complex128"),
    (lambda: conv(X, W, b=["p", "q"]), TypeError, r"b must be a real numeric array"),
    (lambda: conv(X, W, b=np.zeros(3)), ValueError, r"b must have shape \(C_out,\) = \(2,\), got shape \(3,\)"),
    (lambda: conv_backward(np.full((1, 2, 4, 4), "g"), X, W), TypeError, r"dout must be a real numeric array"),
    # wrong upstream gradient
    (lambda: conv_backward(np.zeros((1, 2, 5, 5)), X, W), ValueError, r"dout must have the output's shape \(1, 2, 4, 4\), got \(1, 2, 5, 5\)"),
    (lambda: conv_transpose_backward(np.zeros((1, 2, 5, 5)), X, np.zeros((4, 2, 3, 3))), ValueError,
     r"dout must have the output's shape \(1, 2, 8, 8\)"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_bad_arguments_raise_clear_errors(call, exc, pattern):
    """The error type is right and the message names the argument and its value."""
    with pytest.raises(exc, match=pattern):
        call()


def test_errors_leave_inputs_untouched():
    """A failing call does not modify its inputs."""
    x = np.ones((1, 4, 6, 6))
    with pytest.raises(ValueError):
        conv(x, np.ones((2, 3, 3, 3)))
    assert np.all(x == 1)
