"""What the sandboxed student process may import: the rules of the course, made real.

Graded answers use NumPy only (``numpy.lib.stride_tricks`` and ``einsum`` included); SymPy is
offered for the derivation answers and Matplotlib for the student's own plots. The sandbox
mounts exactly these distributions and their run-time requirements (:func:`package_view`),
resolved from the installed metadata of the grader's environment, and hides every other
``site-packages``/``dist-packages`` directory of the machine (:func:`hidden_package_dirs`), so
SciPy, PyTorch and the reference library ``cnnmath`` are simply absent inside. On top of the
absent mount, :data:`FINDER_SOURCE` (run in the sandbox before any student code) turns an
import of a banned name into an ``ImportError`` that tells the student the rule.
"""
import functools
import glob
import os
import re
import sys
from importlib import metadata

ALLOWED_DISTRIBUTIONS = ("numpy", "sympy", "matplotlib")

NUMPY_ONLY = "{name} is not allowed in graded answers: use NumPy only"
REFERENCE = "{name} (the course's reference library) is not available in graded answers: implement it with NumPy"

# top-level module name -> the message an import of it (or of any submodule) raises in the sandbox
BANNED = {name: NUMPY_ONLY.format(name=name) for name in (
    "scipy", "torch", "torchvision", "torchaudio", "functorch", "torchgen", "tensorflow", "keras", "jax",
    "jaxlib", "cupy", "cupyx", "numba", "cv2", "skimage", "sklearn", "theano", "mxnet", "paddle", "pywt")}
BANNED.update({name: REFERENCE.format(name=name) for name in ("cnnmath", "course_grader")})

UNAVAILABLE = ("No module named {name!r}: the grading sandbox offers the standard library, "
               "NumPy, SymPy and Matplotlib only")

# Installed into the sandbox's sys.meta_path by sandbox.py's prelude, with ``_banned`` (the dict
# above) and ``_unavailable`` (the message template) bound. The first finder refuses banned names
# before any other finder looks; the second, last in the path, explains any other missing module.
FINDER_SOURCE = r'''
class _BannedImports:
    def __init__(self, banned):
        self.banned = banned
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0] if isinstance(name, str) else ""
        if top in self.banned:
            raise ModuleNotFoundError(self.banned[top], name=name)
        return None
    def find_module(self, name, path=None):
        self.find_spec(name, path)
        return None


class _MissingModules:
    def __init__(self, message):
        self.message = message
    def find_spec(self, name, path=None, target=None):
        if isinstance(name, str) and "." not in name and name not in sys.stdlib_module_names:
            raise ModuleNotFoundError(self.message.format(name=name), name=name)
        return None


sys.meta_path.insert(0, _BannedImports(_banned))
sys.meta_path.append(_MissingModules(_unavailable))
del _BannedImports, _MissingModules
'''


def _requirement_names(dist):
    """Names of the distributions ``dist`` needs at run time (no extras; markers evaluated)."""
    names = []
    for text in dist.requires or ():
        try:
            from packaging.requirements import Requirement
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            names.append(req.name)
        except ImportError:
            if "extra ==" in text or "extra==" in text:
                continue
            match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", text)
            if match:
                names.append(match.group(1))
        except Exception:  # an unparsable requirement: nothing to mount for it
            continue
    return names


def _top_level_entries(dist):
    """The top-level files and folders of one installed distribution (from its RECORD)."""
    tops = set()
    for f in dist.files or ():
        parts = f.parts
        if not parts or parts[0] in ("..", "__pycache__") or parts[0].endswith(".pth"):
            continue
        tops.add(parts[0])
    if not tops:  # no RECORD: the import name is the distribution's name
        tops.add(dist.metadata["Name"].replace("-", "_").lower())
    return tops


@functools.lru_cache(maxsize=None)
def package_view(allowed=ALLOWED_DISTRIBUTIONS):
    """The allowed distributions and their requirements, as (source path, entry name) pairs.

    Parameters
    ----------
    allowed : tuple of str
        Distribution names the rules allow; their run-time requirements are added, banned
        top-level names (:data:`BANNED`) never are.

    Returns
    -------
    list of (str, str)
        ``(absolute path on this machine, name inside the sandbox's package folder)`` for every
        top-level module, package, shared-library folder and ``.dist-info`` folder, sorted.
    """
    seen, queue, entries = set(), list(allowed), {}
    while queue:
        name = queue.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        for top in _top_level_entries(dist):
            module = top[:-3] if top.endswith(".py") else top.split(".")[0]
            if module in BANNED:
                continue
            path = os.path.realpath(str(dist.locate_file(top)))
            if os.path.exists(path):
                entries.setdefault(top, path)
        queue.extend(_requirement_names(dist))
    return sorted((path, top) for top, path in entries.items())


def hidden_package_dirs(prefixes):
    """Every site-packages/dist-packages folder of the Python installations under ``prefixes``.

    The sandbox mounts an empty read-only folder over each, so no package reaches the student
    except through :func:`package_view`.
    """
    found = set()
    patterns = ("lib/python3*/site-packages", "lib/python3*/dist-packages", "lib/python3/dist-packages",
                "local/lib/python3*/site-packages", "local/lib/python3*/dist-packages")
    for prefix in prefixes:
        for pattern in patterns:
            for path in glob.glob(os.path.join(prefix, pattern)):
                if os.path.isdir(path):
                    found.add(os.path.abspath(path))
    return sorted(found)


def interpreter_prefixes():
    """The installation prefixes whose package folders the sandbox hides."""
    return sorted({os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix), "/usr", "/usr/local"})
