"""Corpus of conv2d submissions against the sandbox's isolation (issue 17: points 2, 3 and 7).

Each case replaces the ``conv2d`` answer of the REAL released notebook. Attack cases are
written so that the attack succeeding would earn points: the answer is a correct conv2d once
the memory is held or the banned module is imported. Every case is graded through the real
``course-grader grade`` with ``--memory-mb MEMORY_MB``.

* memory cases hold more than the cap outside the process's address space (memfd files, POSIX
  shared memory, /dev/shm files, tmpfs files, forked children): they must be flagged ``memory``
  with "counting shared memory" and lose conv2d's parts (the sandbox is stopped; the notebook goes
  on in a fresh one without the conv2d cell, so the independent later part keeps its points);
* banned-module cases call SciPy or PyTorch inside conv2d: conv2d's parts are lost and the
  student is told the rule;
* honest cases (process pools, stride tricks and einsum, SymPy, a little shared memory) get
  full marks.
"""
from dataclasses import dataclass

MEMORY_MB = 256
# conv2d's graded parts, in notebook order
P1 = "test_cross_correlate2d_seed_example"
P2 = "test_conv2d_multichannel_bias"
P3 = "test_conv2d_stride_padding"
P4 = "test_conv2d_params"
NUMPY_ONLY = "is not allowed in graded answers: use NumPy only"
SHARED = "memory limit exceeded (counting shared memory)"


@dataclass(frozen=True)
class IsolationCase:
    name: str
    answer: object          # reference conv2d source -> the submitted conv2d cell
    lost: tuple = ()
    flags: frozenset = frozenset()
    message: str = None     # must appear in the student's autograded notebook


def _renamed(ref):
    """The reference conv2d renamed _conv2d_ref (a helper of the answers below)."""
    return ref.replace("def conv2d(", "def _conv2d_ref(", 1)


def _hold_then_answer(hold):
    return lambda ref: hold + "\n\n" + ref


MEMFD = """import os
_held = []
for _k in range(12):                      # 12 x 30 MB, each file under the 32 MB file-size limit
    _fd = os.memfd_create(f"held{_k}")
    for _i in range(30):
        os.write(_fd, b"m" * (1 << 20))
    _held.append(_fd)
"""
POSIX_SHM = """from multiprocessing import shared_memory
_held = []
for _k in range(12):
    _shm = shared_memory.SharedMemory(create=True, size=30 << 20)
    _shm.buf[:] = b"s" * (30 << 20)
    _shm.close()                           # unmapped, never unlinked: the pages stay in /dev/shm
    _held.append(_shm.name)
"""
DEV_SHM_FILES = """for _k in range(12):
    with open(f"/dev/shm/held{_k}", "wb") as _f:
        for _i in range(30):
            _f.write(b"d" * (1 << 20))
"""
TMPFS_MIX = """import os
for _d in ("/tmp", "/scratch"):
    for _k in range(2):
        with open(f"{_d}/held{_k}", "wb") as _f:
            for _i in range(30):
                _f.write(b"t" * (1 << 20))
_fds = [os.memfd_create(f"m{_k}") for _k in range(5)]
for _fd in _fds:
    for _i in range(25):
        os.write(_fd, b"m" * (1 << 20))
"""
FORKED = """import os, time
for _k in range(4):                        # each child stays under its own address-space limit
    if os.fork() == 0:
        _b = bytearray(90 << 20)
        for _j in range(0, len(_b), 4096):
            _b[_j] = 1
        time.sleep(60)
        os._exit(0)
time.sleep(4)
"""
SMALL_SHM = """from multiprocessing import shared_memory
_shm = shared_memory.SharedMemory(create=True, size=10 << 20)
_shm.buf[:] = b"s" * (10 << 20)
_shm.close()
"""

SCIPY_CONV2D = '''def conv2d(x, w, b=None, stride=1, padding=0):
    """conv2d through {how}."""
    {imp}
    x = np.asarray(x)
    w = np.asarray(w)
    arrays = [x, w] + ([] if b is None else [np.asarray(b)])
    dtype = np.float32 if all(a.dtype == np.float32 for a in arrays) else np.float64
    if x.shape[1] != w.shape[1]:
        raise ValueError("channels differ")
    x = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out = np.stack([np.stack([sum({call}(x[n, c], w[o, c].astype(np.float64), mode="valid")
                                  for c in range(x.shape[1]))[::stride, ::stride]
                              for o in range(w.shape[0])]) for n in range(x.shape[0])])
    if b is not None:
        out = out + np.asarray(b, dtype=np.float64)[None, :, None, None]
    return out.astype(dtype)
'''


def _scipy(how, imp, call):
    return lambda ref: SCIPY_CONV2D.format(how=how, imp=imp, call=call)


POOL = '''import multiprocessing


def conv2d(x, w, b=None, stride=1, padding=0):
    """One image per worker of a process pool."""
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[0] == 0:
        return _conv2d_ref(x, w, b, stride, padding)
    with multiprocessing.Pool(2) as pool:
        parts = pool.starmap(_conv2d_ref, [(x[i:i + 1], w, b, stride, padding) for i in range(x.shape[0])])
    return np.concatenate(parts)
'''
EXECUTOR = '''from concurrent.futures import ProcessPoolExecutor


def conv2d(x, w, b=None, stride=1, padding=0):
    """One image per worker of a concurrent.futures process pool (default size: the sandbox's CPUs)."""
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[0] == 0:
        return _conv2d_ref(x, w, b, stride, padding)
    with ProcessPoolExecutor() as ex:
        parts = list(ex.map(_conv2d_ref, [x[i:i + 1] for i in range(x.shape[0])], [w] * x.shape[0],
                            [b] * x.shape[0], [stride] * x.shape[0], [padding] * x.shape[0]))
    return np.concatenate(parts)
'''
STRIDE_TRICKS = '''from numpy.lib.stride_tricks import sliding_window_view


def conv2d(x, w, b=None, stride=1, padding=0):
    """Windows from sliding_window_view, contracted with einsum."""
    x = np.asarray(x)
    w = np.asarray(w)
    arrays = [x, w] + ([] if b is None else [np.asarray(b)])
    dtype = np.float32 if all(a.dtype == np.float32 for a in arrays) else np.float64
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"channels of x ({x.shape[1]}) and w ({w.shape[1]}) differ")
    x = np.pad(x.astype(dtype), ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    windows = sliding_window_view(x, w.shape[2:], axis=(2, 3))[:, :, ::stride, ::stride]
    z = np.einsum("nchwij,ocij->nohw", windows, w.astype(dtype))
    if b is not None:
        z = z + np.asarray(b, dtype=dtype)[None, :, None, None]
    return np.ascontiguousarray(z, dtype=dtype)
'''
SYMPY = '''import sympy


def conv2d(x, w, b=None, stride=1, padding=0):
    """The output size from a SymPy expression (floor((H + 2p - k) / s) + 1), values from the reference."""
    h, k, p, s = sympy.symbols("h k p s", integer=True, positive=True)
    size = sympy.floor((h + 2 * p - k) / s) + 1
    z = _conv2d_ref(x, w, b, stride, padding)
    x, w = np.asarray(x), np.asarray(w)
    assert z.shape[2] == int(size.subs({h: x.shape[2], k: w.shape[2], p: padding, s: stride}))
    return z
'''

LOST_AFTER = (P2, P3)   # the sandbox is stopped in the conv2d cell: conv2d's parts (P4 is graded in a fresh sandbox)

CASES = [
    IsolationCase("mem_memfd", _hold_then_answer(MEMFD), LOST_AFTER, frozenset({"memory"}), SHARED),
    IsolationCase("mem_posix_shm", _hold_then_answer(POSIX_SHM), LOST_AFTER, frozenset({"memory"}), SHARED),
    IsolationCase("mem_dev_shm_files", _hold_then_answer(DEV_SHM_FILES), LOST_AFTER, frozenset({"memory"}),
                  SHARED),
    IsolationCase("mem_tmpfs_and_memfd", _hold_then_answer(TMPFS_MIX), LOST_AFTER, frozenset({"memory"}), SHARED),
    IsolationCase("mem_forked_children", _hold_then_answer(FORKED), LOST_AFTER, frozenset({"memory"}), SHARED),
    IsolationCase("ban_import_scipy_signal", _scipy("import scipy.signal", "import scipy.signal",
                                                    "scipy.signal.correlate2d"), (P2, P3),
                  message="scipy " + NUMPY_ONLY),
    IsolationCase("ban_from_scipy", _scipy("from scipy import signal", "from scipy import signal",
                                           "signal.correlate2d"), (P2, P3), message="scipy " + NUMPY_ONLY),
    IsolationCase("ban_import_module", _scipy("importlib.import_module",
                                              "import importlib; sig = importlib.import_module('scipy.signal')",
                                              "sig.correlate2d"), (P2, P3), message="scipy " + NUMPY_ONLY),
    IsolationCase("ban_dunder_import_torch", _scipy(
        "torch's conv2d",
        "torch = __import__('torch'); import scipy.signal",
        "scipy.signal.correlate2d"), (P2, P3), message="torch " + NUMPY_ONLY),
    IsolationCase("ban_path_hack", _scipy(
        "SciPy from the base interpreter's site-packages, with the import guard removed",
        "import sys, glob; sys.meta_path[:] = [f for f in sys.meta_path if 'Banned' not in type(f).__name__];"
        " sys.path.extend(glob.glob('/root/.pyenv/versions/*/lib/python3*/site-packages')"
        " + glob.glob('/usr/lib/python3*/*-packages') + glob.glob('/usr/local/lib/python3*/*-packages'));"
        " import scipy.signal",
        "scipy.signal.correlate2d"), (P2, P3), message="No module named 'scipy'"),
    IsolationCase("ban_top_of_cell", lambda ref: "import scipy.ndimage\n\n" + ref, (P2, P3),
                  message="scipy " + NUMPY_ONLY),
    IsolationCase("honest_pool", lambda ref: _renamed(ref) + "\n\n" + POOL),
    IsolationCase("honest_executor", lambda ref: _renamed(ref) + "\n\n" + EXECUTOR),
    IsolationCase("honest_stride_tricks", lambda ref: STRIDE_TRICKS),
    IsolationCase("honest_sympy", lambda ref: _renamed(ref) + "\n\n" + SYMPY),
    IsolationCase("honest_small_shm", _hold_then_answer(SMALL_SHM)),
]
