"""Streaming 3-D convolution (seed 000 section 5): equality with the in-memory convolution
(cnnmath.conv and torch), lazy consumption, a tracemalloc-measured memory bound on a volume
10x larger than the bound, streaming from a memory-mapped .npy file, and errors."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch.nn.functional as F

from cnnmath import conv, conv3d_stream, volume_slices
from tests.helpers import assert_array_close, to_torch

# (kernel (kd, kh, kw), stride, padding, dilation)
CASES = [
    ((3, 3, 3), 1, 0, 1),
    ((3, 3, 3), 1, 1, 1),
    ((2, 3, 1), (2, 1, 1), (1, 0, 0), 1),
    ((3, 2, 3), (3, 2, 1), ((2, 0), (1, 1), (0, 2)), (2, 1, 2)),
    ((1, 3, 3), (4, 1, 2), 0, 1),  # depth stride larger than the kernel: slices are skipped
    ((3, 3, 3), 1, "same", (2, 1, 1)),
    ((2, 2, 2), 1, "full", 1),
]


def _stacked(stream):
    return np.stack(list(stream), axis=2)


@pytest.mark.parametrize("kernel,stride,padding,dilation", CASES)
def test_equals_in_memory_conv(kernel, stride, padding, dilation):
    """Streaming output slices, stacked, equal cnnmath.conv and torch's conv3d on the whole volume."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 9, 7, 8))
    w = rng.standard_normal((4, 3) + kernel)
    b = rng.standard_normal(4)
    kw = dict(stride=stride, padding=padding, dilation=dilation)
    got = _stacked(conv3d_stream(volume_slices(x), w, b, **kw))
    assert_array_close(got, conv(x, w, b, **kw), what="stream vs cnnmath.conv")
    if isinstance(padding, int) or padding in ("same", "valid"):
        ref = F.conv3d(to_torch(x), to_torch(w), to_torch(b), stride, padding, dilation).numpy()
        assert_array_close(got, ref, what="stream vs torch conv3d")


def test_dtype_float32_and_generator_of_fresh_arrays():
    """float32 slices give float32 output; a generator creating each slice works; inputs untouched."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 2, 6, 5, 5)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3, 3)).astype(np.float32)
    keep = x.copy()
    got = _stacked(conv3d_stream((x[:, :, i].copy() for i in range(6)), w, padding=1))
    assert_array_close(got, conv(x, w, padding=1), rtol=1e-5, atol=1e-5, what="float32 stream")
    np.testing.assert_array_equal(x, keep)


def test_producer_may_reuse_its_buffer():
    """Each slice is copied on arrival: a reader that refills one buffer still gets the right answer."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 2, 7, 6, 6))
    w = rng.standard_normal((2, 2, 3, 3, 3))

    def reader():
        buf = np.empty((1, 2, 6, 6))
        for i in range(x.shape[2]):
            buf[...] = x[:, :, i]
            yield buf

    assert_array_close(_stacked(conv3d_stream(reader(), w)), conv(x, w), what="reused buffer")


@pytest.mark.parametrize("kd,dilation,pad_before", [(3, 1, 0), (3, 1, 1), (2, 3, 0), (4, 2, 2)])
def test_consumed_lazily(kd, dilation, pad_before):
    """The first output is yielded after exactly span - p_before slices have been pulled."""
    x = np.random.default_rng(3).standard_normal((1, 1, 20, 4, 4))
    pulled = []

    def counting():
        for i in range(x.shape[2]):
            pulled.append(i)
            yield x[:, :, i]

    stream = conv3d_stream(counting(), np.ones((1, 1, kd, 1, 1)), padding=((pad_before, 0), 0, 0),
                           dilation=(dilation, 1, 1))
    assert pulled == []  # nothing is read before the first output is requested
    first = next(stream)
    span = dilation * (kd - 1) + 1
    assert len(pulled) == span - pad_before
    assert_array_close(first[:, :, None], conv(x[:, :, :span - pad_before], np.ones((1, 1, kd, 1, 1)),
                                                padding=((pad_before, 0), 0, 0), dilation=(dilation, 1, 1)),
                       what="first output slice")
    second = next(stream)
    assert len(pulled) == span - pad_before + 1 and second.shape == first.shape


def _measure_peak(make_slices, w, **kw):
    """Peak traced bytes while streaming (outputs consumed and dropped), after a warm-up run."""
    for _ in conv3d_stream(make_slices(8), w, **kw):  # warm-up: lazy imports, caches
        pass
    gen = make_slices(None)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        checksum, count = 0.0, 0
        for out in conv3d_stream(gen, w, **kw):
            checksum += float(out[0, 0, 0, 0])
            count += 1
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return peak, count, out.nbytes


@pytest.mark.parametrize("kernel,padding,dilation", [((3, 3, 3), 1, 1), ((3, 3, 3), 0, (2, 1, 1))])
def test_peak_memory_bounded_by_kernel_depth_slices(kernel, padding, dilation):
    """Peak memory <= (span + 1) padded input slices + 3 output slices + 64 KiB, on a volume whose
    in-memory form is >= 10x (kd + 1) slices.

    Allowance: span slices in the window (span - 1 kept + the new one), one more for the
    producer's raw slice while its private padded copy is made, and three output slices
    (accumulator, per-tap product, the previous output the consumer still holds); 64 KiB
    covers Python objects (deque, frames).
    """
    N, C, H, W, D = 1, 4, 48, 48, 60
    slice_bytes = N * C * H * W * 8
    kd = kernel[0]
    span = dilation[0] * (kd - 1) + 1 if isinstance(dilation, tuple) else dilation * (kd - 1) + 1
    assert D * slice_bytes >= 10 * (kd + 1) * slice_bytes
    w = np.random.default_rng(4).standard_normal((2, C) + kernel)

    def make_slices(depth):
        rng = np.random.default_rng(5)
        for _ in range(D if depth is None else depth):
            yield rng.standard_normal((N, C, H, W))

    peak, count, out_bytes = _measure_peak(make_slices, w, padding=padding, dilation=dilation)
    padded_slice = N * C * (H + 2 * padding) * (W + 2 * padding) * 8
    bound = (span + 1) * padded_slice + 3 * out_bytes + 64 * 1024
    assert count == D + 2 * padding - span + 1
    assert peak <= bound, f"peak {peak} B > bound {bound} B ({peak / slice_bytes:.2f} slices)"
    assert peak < D * slice_bytes / 5  # far below the in-memory volume


def test_streams_from_npy_file_with_bounded_memory(tmp_path):
    """volume_slices memory-maps a .npy file: the result equals conv on the loaded volume, and the
    traced peak stays within the slice bound although the file is 15x larger."""
    rng = np.random.default_rng(6)
    vol = rng.standard_normal((1, 2, 60, 32, 32))
    path = tmp_path / "volume.npy"
    np.save(path, vol)
    w = rng.standard_normal((2, 2, 3, 3, 3))
    slice_bytes = vol[:, :, 0].nbytes
    assert vol.nbytes >= 15 * 4 * slice_bytes
    expected = conv(vol, w)
    warm = vol[:, :, :8].copy()
    del vol  # from here on the volume exists only on disk
    peak, count, out_bytes = _measure_peak(
        lambda depth: volume_slices(path) if depth is None else volume_slices(warm[:, :, :depth]), w)
    assert count == 58
    assert peak <= 4 * slice_bytes + 3 * out_bytes + 64 * 1024, f"peak {peak / slice_bytes:.2f} slices"
    assert_array_close(_stacked(conv3d_stream(volume_slices(str(path)), w)), expected, what="from .npy")


def test_volume_slices_layouts():
    """volume_slices yields (N, C, H, W) slices of 5-D volumes (any depth axis) and of 3-D volumes."""
    v = np.arange(2 * 3 * 4 * 5 * 6.0).reshape(2, 3, 4, 5, 6)
    got = list(volume_slices(v))
    assert len(got) == 4 and all(g.shape == (2, 3, 5, 6) for g in got)
    np.testing.assert_array_equal(got[1], v[:, :, 1])
    last = list(volume_slices(v, axis=-1))
    assert len(last) == 6 and last[2].shape == (2, 3, 4, 5)
    np.testing.assert_array_equal(last[2], v[..., 2])
    three = list(volume_slices(v[0, 0]))
    assert len(three) == 4 and three[0].shape == (1, 1, 5, 6)
    with pytest.raises(ValueError, match=r"source must be a 5-D.*\(5, 6\)"):
        list(volume_slices(v[0, 0, 0]))


def test_errors():
    """Bad arguments raise at the call; bad slices raise while streaming, naming the slice."""
    w = np.ones((2, 3, 3, 3, 3))
    x = np.ones((1, 3, 5, 6, 6))
    with pytest.raises(ValueError, match=r"w must be a 5-D array"):
        conv3d_stream(volume_slices(x), w[0])
    with pytest.raises(ValueError, match=r"stride must be a positive int, got 0"):
        conv3d_stream(volume_slices(x), w, stride=0)
    with pytest.raises(ValueError, match=r"b must have shape \(C_out,\) = \(2,\)"):
        conv3d_stream(volume_slices(x), w, np.ones(3))
    with pytest.raises(TypeError, match=r"slices must be an iterable.*volume_slices"):
        conv3d_stream(x, w)
    with pytest.raises(ValueError, match=r"channels.*slices\[0\] has 2 channels.*C_in=3"):
        list(conv3d_stream(volume_slices(x[:, :2]), w))
    with pytest.raises(ValueError, match=r"slices\[2\] has shape \(1, 3, 6, 5\)"):
        list(conv3d_stream((x[:, :, 0] if i < 2 else x[:, :, 0, :, :5] for i in range(5)), w))
    with pytest.raises(ValueError, match=r"slices\[0\] must be a 4-D array"):
        list(conv3d_stream(iter([np.ones((3, 6, 6))]), w))
    with pytest.raises(ValueError, match=r"kernel depth k_d=3.*padded input depth 2"):
        list(conv3d_stream(volume_slices(x[:, :, :2]), w))
    with pytest.raises(ValueError, match=r"slices is empty"):
        list(conv3d_stream(iter([]), w))
