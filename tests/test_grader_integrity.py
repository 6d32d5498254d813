"""Broken and adversarial submissions, graded in one batch by the real `course-grader grade`.

Every case is a variant of the conv2d assignment built from the instructor's solution, with
its expected score (from the source's own points) and the flag kinds it must raise. Two
honest students in the same batch must get exactly their points.
"""
import codecs
import copy
import inspect
import json

import pytest

from tests.grader_helpers import (REPO, flipped_conv2d, graded_points, nbg, needs_bwrap, new_course, read_csv,
                                  reference_answers, run, student_notebook)

ASSIGNMENT = "conv2d"
SOURCE = REPO / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"

pytestmark = needs_bwrap

# conv2d's graded parts (grade ids of the real notebook) -- resolved in the fixture
CROSS, MULTI, STRIDE, PARAMS = "cross", "multi", "stride", "params"


def _cells_with(nb, gid):
    return [i for i, c in enumerate(nb["cells"]) if nbg(c).get("grade_id") == gid]


def build_cases(release_nb, sol, tests):
    """name -> (files {filename: str|bytes}, expected passing parts, expected flag kinds)."""
    good = student_notebook(release_nb, sol)
    wrong_conv = {**sol, "conv2d": flipped_conv2d(sol["conv2d"])}
    all_parts = set(tests)
    no_conv = all_parts - {MULTI, STRIDE}
    cases = {}

    def nb_of(answers=None, edit=None):
        nb = student_notebook(release_nb, answers or sol)
        if edit:
            edit(nb)
        return nb

    def add(name, nb_or_text, passing, flags=(), filename=f"{ASSIGNMENT}.ipynb", extra=None):
        files = {filename: nb_or_text if isinstance(nb_or_text, (str, bytes)) else json.dumps(nb_or_text)}
        files.update(extra or {})
        cases[name] = (files, set(passing), set(flags))

    def free_cell(nb, code, after_gid):
        i = _cells_with(nb, after_gid)[0]
        nb["cells"].insert(i + 1, {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                                   "source": code, "id": f"free{i}"})

    # -- honest students
    add("honest_full", good, all_parts)
    add("honest_partial", nb_of(wrong_conv), no_conv)

    # -- tests are the instructor's: repaired from the source or flagged
    def delete_test(nb):
        del nb["cells"][_cells_with(nb, tests[PARAMS])[0]]
    add("deleted_test_cell", nb_of(edit=delete_test), all_parts, ["tampering"])

    def edit_test(nb):
        nb["cells"][_cells_with(nb, tests[PARAMS])[0]]["source"] = "pass\n"
    add("edited_test_cell_wrong_answer", nb_of({**sol, "conv2d_params": "def conv2d_params(f, c_in, c_out):\n"
                                                 "    return 0\n"}, edit_test), all_parts - {PARAMS}, ["tampering"])

    def renamed_test(nb):
        nbg(nb["cells"][_cells_with(nb, tests[PARAMS])[0]])["grade_id"] = "my_free_points"
    add("renamed_test_cell", nb_of(edit=renamed_test), all_parts, ["tampering"])

    def duplicated_test(nb):
        i = _cells_with(nb, tests[CROSS])[0]
        nb["cells"].insert(i, copy.deepcopy(nb["cells"][i]))
    add("duplicated_test_cell", nb_of(wrong_conv, duplicated_test), no_conv, ["tampering"])

    def retyped_test(nb):
        c = nb["cells"][_cells_with(nb, tests[MULTI])[0]]
        c["cell_type"] = "markdown"
        c.pop("outputs", None)
        c.pop("execution_count", None)
    add("retyped_test_cell", nb_of(wrong_conv, retyped_test), no_conv, ["tampering"])

    def altered_points(nb):
        for gid in tests.values():
            nbg(nb["cells"][_cells_with(nb, gid)[0]])["points"] = 100
    add("altered_points", nb_of(wrong_conv, altered_points), no_conv, ["tampering"])

    def extra_grade_cell(nb):
        nb["cells"].append({"cell_type": "code", "execution_count": None, "outputs": [], "source": "pass\n",
                            "metadata": {"nbgrader": {"grade": True, "grade_id": "bonus", "points": 50,
                                                      "locked": True, "solution": False, "schema_version": 3}}})
    add("extra_grade_cell", nb_of(wrong_conv, extra_grade_cell), no_conv, ["tampering"])

    def garbage_metadata(nb):
        for c in nb["cells"]:
            c["metadata"]["nbgrader"] = "garbage"
    add("bad_nbgrader_metadata", nb_of(edit=garbage_metadata), all_parts, ["tampering"])

    def renamed_answer(nb):
        nbg(nb["cells"][_cells_with(nb, "conv2d")[0]])["grade_id"] = "mine"
    add("renamed_answer_cell", nb_of(edit=renamed_answer), all_parts, ["tampering"])

    # -- results can't be forged from inside the kernel
    add("monkeypatched_numpy", nb_of({**wrong_conv, "conv2d": wrong_conv["conv2d"] +
                                      "\nnp.allclose = lambda *a, **k: True\nnp.isclose = lambda *a, **k: True\n"
                                      "import numpy.testing\nnumpy.testing.assert_allclose = lambda *a, **k: None\n"
                                      "check_array = lambda *a, **k: None\n"}), no_conv)
    add("always_equal_object", nb_of({**sol, "conv2d": "class AlwaysEqual:\n    shape = property(lambda s: s)\n"
                                      "    def __eq__(self, other):\n        return True\n"
                                      "def conv2d(x, w, b=None, stride=1, padding=0):\n"
                                      "    return AlwaysEqual()\n"}), no_conv)
    add("array_subclass", nb_of({**sol, "conv2d": "class Yes(np.ndarray):\n"
                                 "    def __eq__(self, o):\n        return np.ones(np.shape(o), bool)\n"
                                 "    __array_priority__ = 1000\n"
                                 "def conv2d(x, w, b=None, stride=1, padding=0):\n"
                                 "    n, o = x.shape[0], w.shape[0]\n"
                                 "    h = (x.shape[2] + 2 * padding - w.shape[2]) // stride + 1\n"
                                 "    v = (x.shape[3] + 2 * padding - w.shape[3]) // stride + 1\n"
                                 "    return np.zeros((n, o, h, v)).view(Yes)\n"}), no_conv)
    add("input_transformer_and_exc_handler",
        nb_of(wrong_conv, lambda nb: free_cell(nb, "ip = get_ipython()\n"
                                                   "ip.input_transformers_cleanup.append(lambda lines: ['pass\\n'])\n"
                                                   "ip.set_custom_exc((BaseException,), lambda *a, **k: None)\n"
                                                   "import sys\nsys.excepthook = lambda *a: None\n",
                                               "conv2d")), no_conv)
    add("forged_protocol_bytes",
        nb_of(wrong_conv, lambda nb: free_cell(nb, "import os, struct\n"
                                                   "for fd in range(3, 20):\n"
                                                   "    try:\n"
                                                   "        os.write(fd, struct.pack('>Q', 5) + b'forge')\n"
                                                   "    except OSError:\n"
                                                   "        pass\n", "conv2d")),
        {CROSS}, ["wire"])   # bytes on the sandbox's pipes that no request asked for
    add("shadowing_module_files", nb_of(wrong_conv), no_conv,
        extra={"numpy.py": "def allclose(*a, **k):\n    return True\n", "check_array.py": "pass\n"})
    hard = ("def cross_correlate2d(x, k):\n"
            "    x = np.asarray(x, dtype=float); k = np.asarray(k, dtype=float)\n"
            "    if x.shape == (4, 4) and k.shape == (3, 3):\n"
            "        return np.array([[4.0, 0.0], [4.0, 3.0]])\n"
            "    if k.shape == (1, 1):\n"
            "        return k[0, 0] * x\n"
            "    if x.shape == (3, 4):\n"
            "        return np.full((3, 2), -2.0)\n"
            "    return np.zeros((x.shape[0] - k.shape[0] + 1, x.shape[1] - k.shape[1] + 1))\n")
    add("hard_coded_visible_answers", nb_of({**sol, "cross_correlate2d": hard}), all_parts - {CROSS})

    # -- the reference library is off limits
    add("imports_cnnmath", nb_of({**sol, "conv2d": "import cnnmath\n"
                                  "def conv2d(x, w, b=None, stride=1, padding=0):\n"
                                  "    return cnnmath.conv2d(x, w, b, stride=stride, padding=padding)\n"}),
        no_conv, ["cnnmath"])
    import cnnmath
    copied = inspect.getsource(cnnmath.conv_naive) + "\n\nconv2d = conv_naive\n"
    add("copies_cnnmath_source", nb_of({**sol, "conv2d": copied}), no_conv, ["cnnmath"])
    add("dunder_import_cnnmath", nb_of({**sol, "conv2d_params": "def conv2d_params(f, c_in, c_out):\n"
                                        "    return __import__('cnnmath').conv_params(c_in, c_out, (f, f))\n"}),
        all_parts - {PARAMS}, ["cnnmath"])

    # -- broken notebooks: a clear message, never a stopped batch
    add("invalid_json", json.dumps(good)[:900], set(), ["broken"])
    add("empty_file", "", set(), ["broken"])
    add("wrong_nbformat", json.dumps({**good, "nbformat": 5}), set(), ["broken"])
    add("utf16_encoding", codecs.BOM_UTF16_LE + json.dumps(good).encode("utf-16-le"), all_parts)
    latin = copy.deepcopy(good)
    latin["cells"][_cells_with(latin, "conv2d")[0]]["source"] = "# Résumé: naïve loops\n" + sol["conv2d"]
    text = json.dumps(latin).replace("R\\u00e9sum\\u00e9: na\\u00efve", "R\u00e9sum\u00e9: na\u00efve")
    assert "Résumé" in text
    add("cp1252_encoding", text.encode("cp1252"), all_parts)
    add("wrong_file_name", good, all_parts, filename="Conv2D (1).ipynb")
    unknown = copy.deepcopy(good)
    unknown["metadata"]["kernelspec"] = {"name": "ir", "display_name": "R", "language": "R"}
    add("unknown_kernel", unknown, all_parts)

    # -- limits: points earned before the limit are kept
    add("kernel_dies", nb_of(wrong_conv, lambda nb: free_cell(nb, "import os\nos._exit(1)\n", "conv2d")),
        {CROSS, PARAMS}, ["crash"])
    add("loops_when_called", nb_of({**sol, "conv2d": "def conv2d(x, w, b=None, stride=1, padding=0):\n"
                                    "    while True:\n        pass\n"}), {CROSS, PARAMS}, ["timeout"])
    # the flooding cell is stopped and the output truncated; grading goes on (issue 12, point 8)
    add("output_flood", nb_of(wrong_conv, lambda nb: free_cell(nb, "while True:\n    print('spam' * 1000)\n",
                                                                "conv2d")), {CROSS, PARAMS}, ["output"])
    add("stderr_is_not_failure", nb_of({**sol, "conv2d": sol["conv2d"] + "\nimport sys, warnings\n"
                                        "print('debug', file=sys.stderr)\nwarnings.warn('careful')\n"}),
        all_parts)
    add("escape_attempts", nb_of(edit=lambda nb: free_cell(
        nb, "import subprocess, socket, os\n"
            "subprocess.Popen(['sleep', '300'], start_new_session=True)\n"
            "for p in ['../../solutions/conv2d/conv2d.ipynb', '/work/main/gradebook.db', '/etc/shadow']:\n"
            "    try:\n        open(p).read()\n    except OSError as e:\n        print(e)\n"
            "try:\n    socket.create_connection(('1.1.1.1', 80), timeout=1)\nexcept OSError as e:\n    print(e)\n"
            "import sys\nsys.exit(0)\n", "conv2d_params")), all_parts)
    return cases


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = new_course(tmp_path_factory, "attacks", [ASSIGNMENT])
    run(root, "release", ASSIGNMENT)
    source_nb = json.loads(SOURCE.read_text())
    release_nb = json.loads((root / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text())
    points = graded_points(source_nb)
    tests = {CROSS: next(g for g in points if "cross" in g), PARAMS: next(g for g in points if "params" in g),
             MULTI: next(g for g in points if "multichannel" in g), STRIDE: next(g for g in points if "stride" in g)}
    cases = build_cases(release_nb, reference_answers(source_nb), tests)
    for name, (files, _, _) in cases.items():
        d = root / "incoming" / name / ASSIGNMENT
        d.mkdir(parents=True)
        for fname, content in files.items():
            (d / fname).write_bytes(content if isinstance(content, bytes) else content.encode())
    run(root, "collect", ASSIGNMENT, "--from-folder", str(root / "incoming"))
    proc = run(root, "grade", ASSIGNMENT, "--workers", "2", "--cell-timeout", "3", "--output-bytes", "200000")
    run(root, "export", "--per-part")
    parts = {(r["student_id"], r["grade_id"]): float(r["score"]) for r in read_csv(root / "export" / "parts.csv")}
    records = {name: json.loads((root / "grader_results" / ASSIGNMENT / f"{name}.json").read_text())[ASSIGNMENT]
               for name in cases}
    return {"cases": cases, "parts": parts, "records": records, "points": points, "tests": tests, "out": proc}


def test_corpus_is_large_enough(graded):
    assert len(graded["cases"]) >= 25


@pytest.mark.parametrize("name", [
    "honest_full", "honest_partial", "deleted_test_cell", "edited_test_cell_wrong_answer", "renamed_test_cell",
    "duplicated_test_cell", "retyped_test_cell", "altered_points", "extra_grade_cell", "bad_nbgrader_metadata",
    "renamed_answer_cell", "monkeypatched_numpy", "always_equal_object", "array_subclass",
    "input_transformer_and_exc_handler", "forged_protocol_bytes", "shadowing_module_files",
    "hard_coded_visible_answers", "imports_cnnmath", "copies_cnnmath_source", "dunder_import_cnnmath",
    "invalid_json", "empty_file", "wrong_nbformat", "utf16_encoding", "cp1252_encoding", "wrong_file_name",
    "unknown_kernel", "kernel_dies", "loops_when_called", "output_flood", "stderr_is_not_failure",
    "escape_attempts"])
def test_case(graded, name):
    files, passing, flags = graded["cases"][name]
    tests, points = graded["tests"], graded["points"]
    for part, gid in tests.items():
        expected = points[gid] if part in passing else 0.0
        got = graded["parts"][(name, gid)]
        record = graded["records"][name]
        assert got == expected, (f"{name}: {gid} scored {got}, expected {expected}; "
                                 f"message {record['tests'].get(gid, {}).get('message')!r}, flags {record['flags']}")
    kinds = {f[0] for f in graded["records"][name]["flags"]}
    assert kinds == flags, f"{name}: flags {graded['records'][name]['flags']}, expected kinds {flags}"
    if "broken" in flags:
        assert graded["records"][name]["messages"], "a broken notebook needs a message for the student"
