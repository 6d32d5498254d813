"""Plain-data wire format between the trusted grader and the sandboxed student process.

A message is an 8-byte big-endian length followed by that many bytes. The payload is a
JSON header (its own 8-byte length first) and the raw ``.npy`` blobs of the arrays it refers
to. Only plain data crosses: None, bools, ints, floats, complex, strings, bytes, NumPy arrays
and scalars (``np.save(..., allow_pickle=False)``; object arrays are refused), and lists,
tuples, dicts and drained iterators of these. Nothing is ever unpickled.

This file is also sent verbatim into the sandbox (it must not import course_grader).
"""
import io
import json
import struct

import numpy as np

MAX_DEPTH = 64
MAX_COLLISIONS = 64     # dict keys with equal hashes in one dict (inserting n of them costs n**2)
MAX_BLOBS = 100_000     # arrays in one message (each costs a .npy header parse)

try:  # SymPy expressions cross as plain trees; in the sandbox, expressions.py's text precedes this file
    from .expressions import expression_from_tree, expression_to_tree
except ImportError:
    pass


class WireError(Exception):
    """A value that cannot cross the sandbox boundary, or a malformed message."""


def _encode(value, blobs, depth=0, drain_limit=1_000_000):
    if depth > MAX_DEPTH:
        raise WireError("value is nested too deeply to transfer")
    if value is None or isinstance(value, (bool, str)):
        return value
    if type(value) is int:
        return value if abs(value) < 2 ** 62 else {"__bigint__": str(value)}
    if type(value) is float:
        if value != value or value in (float("inf"), float("-inf")):
            return {"__float__": repr(value)}
        return value
    if type(value) is complex:
        return {"__complex__": [repr(value.real), repr(value.imag)]}
    if type(value) is bytes:
        return {"__bytes__": value.hex()}
    if isinstance(value, (np.ndarray, np.generic)):
        arr = np.asarray(value)
        if type(arr) is not np.ndarray:
            arr = np.array(arr, copy=True).view(np.ndarray)
        if arr.dtype.hasobject:
            raise WireError("arrays of Python objects cannot be transferred")
        buf = io.BytesIO()
        np.save(buf, np.asarray(arr, order="C"), allow_pickle=False)  # keeps 0-d scalars 0-d
        blobs.append(buf.getvalue())
        key = "__ndarray__" if isinstance(value, np.ndarray) else "__npscalar__"
        return {key: len(blobs) - 1}
    if type(value) is list:
        return [_encode(v, blobs, depth + 1) for v in value]
    if type(value) is tuple:
        return {"__tuple__": [_encode(v, blobs, depth + 1) for v in value]}
    if type(value) is dict:
        return {"__dict__": [[_encode(k, blobs, depth + 1), _encode(v, blobs, depth + 1)]
                             for k, v in value.items()]}
    if type(value) in (range, type(iter([])), type(iter(())), type((i for i in ()))) \
            or (hasattr(value, "__next__") and hasattr(value, "__iter__")):
        items = []
        for item in value:
            items.append(_encode(item, blobs, depth + 1))
            if len(items) > drain_limit:
                raise WireError("iterator yields too many items")
        return {"__iter__": items}
    tree = expression_to_tree(value)  # a SymPy expression (course_grader/expressions.py), else None
    if tree is not None:
        return {"__sympy__": tree}
    # Subclasses of plain types are converted to the plain type (a subclass could lie).
    for plain in (bool, int, float, complex, str, bytes, list, tuple, dict):
        if isinstance(value, plain):
            return _encode(plain(value), blobs, depth)
    raise WireError(f"a value of type {type(value).__name__} cannot be transferred "
                    "(use numbers, strings, None, NumPy arrays, lists, tuples or dicts)")


def _decode(obj, blobs, depth=0):
    if depth > MAX_DEPTH:
        raise WireError("message nested too deeply")
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, list):
        return [_decode(v, blobs, depth + 1) for v in obj]
    if isinstance(obj, dict) and len(obj) == 1:
        (key, val), = obj.items()
        if key in ("__ndarray__", "__npscalar__"):
            arr = np.load(io.BytesIO(blobs[int(val)]), allow_pickle=False)
            return arr if key == "__ndarray__" else arr[()]
        if key == "__tuple__":
            return tuple(_decode(v, blobs, depth + 1) for v in val)
        if key == "__dict__":
            keys = [_decode(k, blobs, depth + 1) for k, _ in val]
            if any(isinstance(k, (list, dict, np.ndarray)) for k in keys):
                raise WireError("unhashable dict key")
            if len(keys) - len({hash(k) for k in keys}) > MAX_COLLISIONS:  # quadratic to insert
                raise WireError("a dict with too many colliding keys")
            return {k: _decode(v, blobs, depth + 1) for k, (_, v) in zip(keys, val)}
        if key == "__iter__":
            return iter([_decode(v, blobs, depth + 1) for v in val])
        if key == "__sympy__":
            return expression_from_tree(val)
        if key == "__bigint__":
            return int(val)
        if key == "__float__":
            return float(val)
        if key == "__complex__":
            return complex(float(val[0]), float(val[1]))
        if key == "__bytes__":
            return bytes.fromhex(val)
    raise WireError("malformed message")


def dumps(value):
    """Encode a plain-data value to bytes (raises WireError for anything else)."""
    blobs = []
    header = json.dumps(_encode(value, blobs)).encode()
    parts = [struct.pack(">Q", len(header)), header]
    for blob in blobs:
        parts.append(struct.pack(">Q", len(blob)))
        parts.append(blob)
    return b"".join(parts)


def loads(data):
    """Decode bytes made by :func:`dumps`."""
    try:
        (hlen,) = struct.unpack(">Q", data[:8])
        header = json.loads(data[8:8 + hlen].decode())
        blobs, pos = [], 8 + hlen
        while pos < len(data):
            if len(blobs) >= MAX_BLOBS:
                raise WireError(f"more than {MAX_BLOBS} arrays in one message")
            (blen,) = struct.unpack(">Q", data[pos:pos + 8])
            blobs.append(data[pos + 8:pos + 8 + blen])
            pos += 8 + blen
        return _decode(header, blobs)
    except WireError:
        raise
    except Exception as exc:  # malformed input from the untrusted side
        raise WireError(f"malformed message: {exc}") from None


def write_message(fobj, value):
    payload = dumps(value)
    fobj.write(struct.pack(">Q", len(payload)) + payload)
    fobj.flush()


def read_exact(fobj, n):
    chunks, got = [], 0
    while got < n:
        chunk = fobj.read(n - got)
        if not chunk:
            raise EOFError("pipe closed")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)
