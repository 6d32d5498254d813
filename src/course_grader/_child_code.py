"""Structural fingerprints of the code that runs a graded function (issue 17, point 1).

Two users, one text. The sandbox child gets this file's source (after wire.py's, before
_child.py's, see sandbox._child_source) and builds one :class:`CodeWatch`: after every call of a
graded function it reports the fingerprint of the code objects that function reaches (its own
code, nested code, the functions and classes reachable through its globals, closures and
defaults) and of the code objects executed, unmarshalled or assigned to ``__code__`` since the
last report. The trusted side (course_grader.integrity) imports :func:`code_shingles` to
fingerprint cnnmath's own functions, compiled under the same Python, and compares.

A fingerprint is a set of hashed shingles of normalised bytecode tokens: variable names,
constants and jump targets are abstracted (a renamed copy has the same tokens), attribute names
and operators are kept. Only the standard library is used; everything the student could replace
is captured when the file is loaded, before any student code runs.
"""
import marshal as _cw_marshal
import opcode as _cw_opcode
import sys as _cw_sys
import zlib as _cw_zlib
# the builtins this file uses, bound now: the student's code can replace names in the builtins module
from builtins import (BaseException, ValueError, bytearray, bytes, callable, classmethod, dict, float,
                      frozenset, id, int, isinstance, issubclass, len, list, max, min, property, range, set,
                      sorted, staticmethod, str, sum, tuple, type, bool)
import functools as _cw_functools

CODE_SHINGLE = 8               # bytecode tokens per shingle
_CW_OPNAMES = tuple(_cw_opcode.opname)
_CW_SKIP = frozenset({"CACHE", "EXTENDED_ARG", "NOP", "RESUME", "PRECALL", "COPY_FREE_VARS", "MAKE_CELL",
                      "PUSH_NULL"})
_CW_VARIABLE = {"LOAD_FAST": "LOAD", "LOAD_DEREF": "LOAD", "LOAD_NAME": "LOAD", "LOAD_GLOBAL": "LOAD",
                "LOAD_CLOSURE": "LOAD", "LOAD_CLASSDEREF": "LOAD", "STORE_FAST": "STORE", "STORE_DEREF": "STORE",
                "STORE_NAME": "STORE", "STORE_GLOBAL": "STORE", "DELETE_FAST": "DELETE",
                "DELETE_NAME": "DELETE", "DELETE_GLOBAL": "DELETE", "DELETE_DEREF": "DELETE"}
_CW_NAMED = frozenset({"LOAD_ATTR", "LOAD_METHOD", "STORE_ATTR", "DELETE_ATTR", "IMPORT_NAME", "IMPORT_FROM"})
_CW_ARG = frozenset({"BINARY_OP", "COMPARE_OP", "IS_OP", "CONTAINS_OP", "BUILD_SLICE", "UNPACK_SEQUENCE"})
_CW_CODE = type((lambda: 0).__code__)
_CW_FUNCTION = type(lambda: 0)
_CW_TYPE_DICT = type.__dict__["__dict__"].__get__   # a class's own namespace, without running a metaclass


def code_tokens(code, _names=_CW_OPNAMES, _len=len, _type=type):
    """Normalised bytecode tokens of one code object (not of its nested code objects)."""
    raw = code.co_code
    out, ext = [], 0
    for i in range(0, _len(raw) - 1, 2):
        op, arg = raw[i], raw[i + 1] | ext
        name = _names[op]
        if name == "EXTENDED_ARG":
            ext = arg << 8
            continue
        ext = 0
        if name in _CW_SKIP:
            continue
        if name in _CW_VARIABLE:
            out.append(_CW_VARIABLE[name])
        elif name in _CW_NAMED:
            names = code.co_names
            out.append("ATTR:" + names[arg] if arg < _len(names) and name != "IMPORT_NAME" and
                       name != "IMPORT_FROM" else name + ":" + (names[arg] if arg < _len(names) else "?"))
        elif name in _CW_ARG:
            out.append(name + ":" + str(arg))
        elif name == "LOAD_CONST":
            consts = code.co_consts
            out.append("CONST:" + (_type(consts[arg]).__name__ if arg < _len(consts) else "?"))
        else:
            out.append(name)
    return out


def code_shingles(code, _crc=_cw_zlib.crc32, _len=len, _max=max):
    """Hashed shingles (ints) of one code object's tokens."""
    toks = code_tokens(code)
    k = CODE_SHINGLE
    return {_crc("|".join(toks[i:i + k]).encode()) for i in range(_max(_len(toks) - k + 1, 0))}


class CodeWatch:
    """Collects what runs in the sandbox; :meth:`report` gives the fingerprint of one request.

    The audit hook (which cannot be removed once added) keeps the code objects given to
    exec/eval, the bytes given to marshal.loads and the code objects assigned to a function's
    ``__code__``; the walk of the called function finds code built any other way and kept.
    Bounded: ``max_objects`` objects walked, ``max_codes`` code objects, ``max_bytes`` of bytecode.
    """

    def __init__(self, max_objects=600, max_codes=300, max_bytes=2 << 20, max_shingles=40000,
                 _addaudithook=_cw_sys.addaudithook):
        self.limits = (max_objects, max_codes, max_bytes, max_shingles)
        self.seen_codes = {}     # id -> code object, from the audit hook (the largest kept)
        self.marshalled = []     # bytes given to marshal.loads
        self.busy = [False]
        _addaudithook(self._audit)

    def _audit(self, event, args, _isinstance=isinstance, _len=len, _bytes=(bytes, bytearray)):
        if event != "exec" and event != "marshal.loads" and event != "object.__setattr__":
            return
        if self.busy[0]:
            return
        if event == "marshal.loads":
            if args and _isinstance(args[0], _bytes) and sum(_len(b) for b in self.marshalled) < self.limits[2]:
                self.marshalled.append(bytes(args[0]))
            return
        code = args[0] if event == "exec" and args else (
            args[2] if _len(args) == 3 and type(args[1]) is str and args[1] == "__code__" else None)
        if type(code) is _CW_CODE:
            seen = self.seen_codes
            if _len(seen) >= self.limits[1]:   # full: the smallest code gives way (junk cannot flush a copy)
                small = min(seen, key=lambda k: _len(seen[k].co_code))
                if _len(seen[small].co_code) >= _len(code.co_code):
                    return
                del seen[small]
            seen[id(code)] = code

    def report(self, obj=None, _type=type, _len=len, _dictget=dict.get, _sorted=sorted):
        """{"codes": number of code objects fingerprinted, "shingles": sorted shingle hashes}."""
        max_objects, max_codes, max_bytes, max_shingles = self.limits
        self.busy[0] = True
        try:
            queue = list(self.seen_codes.values())
            self.seen_codes = {}
            for blob in self.marshalled:
                try:
                    queue.append(_cw_marshal.loads(blob))
                except BaseException:
                    pass
            self.marshalled = []
            if obj is not None:
                queue.insert(0, obj)
            seen, kept, codes, shingles, size, n = set(), [], 0, set(), 0, 0
            while queue and n < max_objects and codes < max_codes and size < max_bytes:
                item = queue.pop(0)
                if id(item) in seen:
                    continue
                seen.add(id(item))
                kept.append(item)   # alive until the walk ends, so that no id is reused
                n += 1
                # exact types only (type(), never isinstance(): that could read a student's __class__), and
                # never an attribute of the student's own objects (that could run their code)
                kind = _type(item)
                try:
                    if kind is _CW_CODE:
                        codes += 1
                        size += _len(item.co_code)
                        if _len(shingles) < max_shingles:
                            shingles |= code_shingles(item)
                        queue.extend(c for c in item.co_consts if _type(c) in (_CW_CODE, tuple, frozenset))
                    elif kind is tuple or kind is list:
                        queue.extend(item[:50])
                    elif kind is frozenset or kind is set:
                        queue.extend(list(item)[:50])
                    elif kind is _CW_FUNCTION:
                        code = item.__code__
                        queue.append(code)
                        queue.extend(c.cell_contents for c in (item.__closure__ or ()) if _cw_filled(c))
                        queue.extend(item.__defaults__ or ())
                        queue.extend((item.__kwdefaults__ or {}).values())
                        queue.extend(_cw_reached(code, item.__globals__, _dictget))
                    elif issubclass(kind, _type):
                        queue.extend(list(_CW_TYPE_DICT(item).values())[:200])
                    elif kind is _CW_BOUND or kind is staticmethod or kind is classmethod:
                        queue.append(item.__func__)
                    elif kind is property:
                        queue.extend((item.fget, item.fset))
                    elif kind is _cw_functools.partial:
                        queue.append(item.func)
                        queue.extend(item.args[:50])
                    elif kind is not _CW_MODULE and callable(item):
                        queue.append(kind)
                except BaseException:
                    continue
            return {"codes": codes, "shingles": _sorted(shingles)[:max_shingles]}
        finally:
            self.busy[0] = False


_CW_MODULE = type(_cw_sys)


def _cw_filled(cell):
    try:
        cell.cell_contents
        return True
    except ValueError:
        return False


_CW_BOUND = type(_cw_filled.__get__(0))   # a bound method


def _cw_reached(code, namespace, _dictget, _isinstance=isinstance):
    """The values of ``namespace`` that ``code`` (or its nested code) names, or spells as a string."""
    out, stack, n = [], [code], 0
    while stack and n < 100:
        c = stack.pop()
        n += 1
        for name in tuple(c.co_names) + tuple(k for k in c.co_consts if _isinstance(k, str) and _len_ok(k)):
            v = _dictget(namespace, name) if _isinstance(namespace, dict) else None
            if v is not None and type(v) not in (int, float, str, bytes, bool, _CW_MODULE):
                out.append(v)
        stack.extend(k for k in c.co_consts if _isinstance(k, _CW_CODE))
    return out


def _len_ok(s):
    return 0 < len(s) <= 80 and s.isidentifier()
