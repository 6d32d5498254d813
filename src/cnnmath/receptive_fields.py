"""Receptive field of a stack of convolution / pooling layers, and its per-layer table.

For layers ``l = 1..L`` with kernel ``k_l``, stride ``s_l`` and dilation ``d_l`` (counted
from 1 as in PyTorch), let the *jump* ``j_l = prod_{i<l} s_i`` be the distance, in input
samples, between neighbouring inputs of layer ``l`` (``j_1 = 1``; the outputs of layer ``l`` are
``j_{l+1} = j_l s_l`` apart). The book's chapter 9 and the ``receptive_field`` exercise use this
definition. Then

    r_0 = 1,     r_l = r_{l-1} + d_l (k_l - 1) j_l,     RF = r_L = 1 + sum_l d_l (k_l - 1) prod_{i<l} s_i

With ``d_l = 1`` this is seed 001's formula ``RF = 1 + sum_l (k_l - 1) prod_{i<l} s_i``
(section 4), and for ``L`` stride-1 layers of size ``k`` it is ``1 + L (k - 1)``: three
3x3 layers see 7x7, the VGG example.

With (before-)padding ``p_l`` the *start* of the first output's field, in input
coordinates (0-based; negative means it begins in the padding), follows

    start_0 = 0,     start_l = start_{l-1} - p_l j_l

and its centre is ``start_l + (r_l - 1) / 2``. Output ``o`` of layer ``l`` sees the input
positions ``start_l + o j_{l+1} + [0, r_l)``, where ``j_{l+1} = j_l s_l``.

Errata
------
* Seed 000 ("Receptive Field Calculation") gives "The receptive field of a layer is
  defined as: where is the kernel size and is the stride": the formula itself was lost
  in extraction, only the words around it remain; the recursion above is what it
  describes.
* Seed 001's formula ignores dilation: a dilated kernel covers ``d (k - 1) + 1`` input
  samples (its *effective* size), so ``k_l - 1`` becomes ``d_l (k_l - 1)``.
* The receptive field is the *extent* (first to last input sample that can influence
  the output). With dilation > 1 some samples inside it may not influence the output
  at all (gaps), e.g. a single kernel of size 2 with dilation 3 sees samples 0 and 3.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ._args import is_int

__all__ = [
    "ReceptiveFieldRow",
    "receptive_field",
    "receptive_field_table",
    "format_receptive_field_table",
]


@dataclass(frozen=True)
class ReceptiveFieldRow:
    """One layer of :func:`receptive_field_table` (lengths in input samples, 0-based positions).

    Attributes
    ----------
    layer : int
        1-based layer index ``l`` (as in the seed's sum over ``l = 1..L``).
    kernel, stride, dilation, padding : int
        The layer's hyper-parameters (``padding`` = zeros before the input).
    effective_kernel : int
        ``d (k - 1) + 1``, the span of the dilated kernel.
    jump : int
        ``j_l = prod_{i<l} s_i``: spacing, in input samples, of this layer's inputs.
    output_jump : int
        ``j_l s_l``: spacing of this layer's outputs (the next layer's ``jump``).
    receptive_field : int
        ``r_l``: how many input samples one output of this layer spans.
    start : int
        First input position in the field of output 0 (negative = inside the padding).
    centre : float
        ``start + (r_l - 1) / 2``, the centre of that field.
    """

    layer: int
    kernel: int
    stride: int
    dilation: int
    padding: int
    effective_kernel: int
    jump: int
    output_jump: int
    receptive_field: int
    start: int
    centre: float

    def as_dict(self) -> dict:
        return asdict(self)


_KEYS = ("kernel", "stride", "dilation", "padding")


def _parse_layer(i, layer):
    if isinstance(layer, dict):
        unknown = set(layer) - set(_KEYS)
        if unknown:
            raise ValueError(f"layers[{i}] has unknown keys {sorted(unknown)}; allowed: {list(_KEYS)}")
        if "kernel" not in layer:
            raise ValueError(f"layers[{i}] must give a 'kernel', got {layer!r}")
        values = (layer["kernel"], layer.get("stride", 1), layer.get("dilation", 1), layer.get("padding", 0))
    elif isinstance(layer, (tuple, list)) and 2 <= len(layer) <= 4:
        values = tuple(layer) + (1, 0)[len(layer) - 2:]
    else:
        raise ValueError(
            f"layers[{i}] must be (kernel, stride), (kernel, stride, dilation), "
            f"(kernel, stride, dilation, padding) or a dict, got {layer!r}"
        )
    for name, v, minimum in zip(_KEYS, values, (1, 1, 1, 0)):
        if not is_int(v) or v < minimum:
            word = "positive" if minimum else "non-negative"
            raise ValueError(f"layers[{i}] {name} must be a {word} int, got {v!r}")
    return tuple(int(v) for v in values)


def receptive_field_table(layers) -> list[ReceptiveFieldRow]:
    """Per-layer jump, receptive field and first-field start of a stack of layers.

    Parameters
    ----------
    layers : sequence
        One entry per layer, input first: ``(kernel, stride)``, ``(kernel, stride,
        dilation)``, ``(kernel, stride, dilation, padding)`` or a dict with those keys
        (``stride``/``dilation`` default 1, ``padding`` 0). Pooling layers count too:
        a 2x2/2 max pool is ``(2, 2)``.

    Returns
    -------
    list of ReceptiveFieldRow
        Row ``l`` holds ``j_l = prod_{i<l} s_i``, ``r_l = r_{l-1} + d_l (k_l - 1) j_l``
        and ``start_l = start_{l-1} - p_l j_l``. Use ``row.as_dict()`` for a dict.

    Examples
    --------
    >>> [row.receptive_field for row in receptive_field_table([(3, 1)] * 3)]
    [3, 5, 7]
    """
    if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
        raise TypeError(f"layers must be a sequence of (kernel, stride[, dilation[, padding]]), got {layers!r}")
    rows = []
    r, jump, start = 1, 1, 0
    for i, layer in enumerate(layers):
        k, s, d, p = _parse_layer(i, layer)
        eff = d * (k - 1) + 1
        r = r + (eff - 1) * jump
        start = start - p * jump
        rows.append(ReceptiveFieldRow(
            layer=i + 1, kernel=k, stride=s, dilation=d, padding=p, effective_kernel=eff,
            jump=jump, output_jump=jump * s, receptive_field=r, start=start, centre=start + (r - 1) / 2,
        ))
        jump *= s
    return rows


def receptive_field(layers) -> int:
    """Receptive field (in input samples, per spatial axis) of the last layer of a stack.

    ``RF = 1 + sum_l d_l (k_l - 1) prod_{i<l} s_i`` (seed 001 section 4, with dilation;
    see the module errata). ``layers`` is as in :func:`receptive_field_table`; an empty
    stack has receptive field 1.

    >>> receptive_field([(3, 1), (3, 1), (3, 1)])  # VGG: three 3x3 convs see 7x7
    7
    >>> receptive_field([(3, 1), (2, 2), (3, 1), (2, 2), (3, 1)])
    18
    """
    rows = receptive_field_table(layers)
    return rows[-1].receptive_field if rows else 1


def format_receptive_field_table(layers_or_rows) -> str:
    """Plain-text table of :func:`receptive_field_table` (accepts layers or rows).

    Columns: layer, k, s, d, p, effective kernel, jump (input spacing j_l), receptive
    field r_l, start and centre of output 0's field.
    """
    rows = list(layers_or_rows)
    if rows and not isinstance(rows[0], ReceptiveFieldRow):
        rows = receptive_field_table(rows)
    header = ("layer", "k", "s", "d", "p", "k_eff", "jump", "RF", "start", "centre")
    body = [(str(r.layer), str(r.kernel), str(r.stride), str(r.dilation), str(r.padding),
             str(r.effective_kernel), str(r.jump), str(r.receptive_field), str(r.start), f"{r.centre:g}")
            for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.rjust(w) for c, w in zip(b, widths)) for b in body]
    return "\n".join(lines)
