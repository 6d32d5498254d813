"""Padding and sliding-window views: the one primitive every windowed operation uses.

A window view of a padded input ``xp`` of shape ``(N, C, *spatial)`` has shape
``(N, C, *out, *kernel)`` and element

    view[n, c, o_1..o_D, j_1..j_D] = xp[n, c, o_1 s_1 + j_1 d_1, ..., o_D s_D + j_D d_D]

which is the index arithmetic of the seeds' strided formula (seed 004 eq. 9.8,
written 0-based). It is a read-only strided view: no data is copied.
"""

from __future__ import annotations

from ._columns import pad_spatial, sliding_windows

__all__ = ["pad_spatial", "sliding_windows"]
