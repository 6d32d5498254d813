"""A real feedback page, as a student opens it offline, typesets its formulas in Chromium.

A temporary course releases conv1d, grades a correct and a blank submission with `course-grader`
and writes their feedback. Each student's folder feedback/<student>/conv1d/ is copied somewhere else
(what the instructor hands back) and its page opened from disk (file://) in Debian Chromium driven
by Playwright: every math segment of the notebook's markdown becomes an <mjx-container>, no raw `$`
is left in the rendered text, MathJax's fonts load, no request leaves the copied folder, nothing is
logged as an error. The formula count comes from the released notebook itself.
"""
import json
import re
import shutil
from pathlib import Path

import pytest

from tests.grader_helpers import cell_text, needs_bwrap, new_course, reference_answers, run, student_notebook
from tests.test_website import CHROMIUM, CHROMIUM_ARGS

pytestmark = [needs_bwrap, pytest.mark.browser]

ASSIGNMENT = "conv1d"
MATH = re.compile(r"\$\$.+?\$\$|(?<!\\)\$[^$]+?(?<!\\)\$", re.S)


def math_segments(notebook):
    """How many $...$ and $$...$$ segments the markdown cells of ``notebook`` hold."""
    return sum(len(MATH.findall(cell_text(c))) for c in notebook["cells"] if c["cell_type"] == "markdown")


@pytest.fixture(scope="module")
def handed_back(tmp_path_factory):
    """student -> the copy of their feedback folder, as handed back; plus the released notebook."""
    root = new_course(tmp_path_factory, "feedback-browser", [ASSIGNMENT])
    run(root, "release", ASSIGNMENT)
    release = json.loads((root / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text())
    source = json.loads((root / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text())
    incoming = root / "incoming"
    for student, nb in {"correct": student_notebook(release, reference_answers(source)), "blank": release}.items():
        (incoming / student / ASSIGNMENT).mkdir(parents=True)
        (incoming / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").write_text(json.dumps(nb))
    run(root, "collect", ASSIGNMENT, "--from-folder", str(incoming))
    run(root, "grade", ASSIGNMENT, "--workers", "1", "--quiet")
    run(root, "feedback", ASSIGNMENT)
    home = tmp_path_factory.mktemp("student-home")
    copies = {}
    for student in ("correct", "blank"):
        copies[student] = home / student / f"{ASSIGNMENT}-feedback"
        shutil.copytree(root / "feedback" / student / ASSIGNMENT, copies[student])
    return copies, release


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A Chromium context with a fresh user-data-dir (never `playwright install`)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: `make test` installs Debian chromium (target system-deps)")
    from playwright import sync_api
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS)
        context.set_default_timeout(30_000)
        yield context
        context.close()


def test_page_has_no_cdn_script(handed_back):
    copies, _ = handed_back
    page = (copies["correct"] / f"{ASSIGNMENT}.html").read_text()
    assert "cdnjs" not in page and "MathJax.Hub" not in page
    assert re.findall(r'<script[^>]*src="([^"]+)"', page) == ["_mathjax/tex-mml-chtml.js"]


@pytest.mark.parametrize("student", ["correct", "blank"])
def test_feedback_formulas_typeset_offline(handed_back, browser, student):
    copies, release = handed_back
    folder = copies[student]
    expected = math_segments(release)
    assert expected >= 5, f"the conv1d notebook should hold formulas, found {expected}"
    page = browser.new_page()
    outside, errors, failed = [], [], []
    local = folder.resolve().as_uri() + "/"

    def guard(route):
        if route.request.url.startswith(local):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", guard)
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    page.on("requestfailed", lambda r: failed.append(f"{r.url} ({r.failure})"))
    page.goto((folder / f"{ASSIGNMENT}.html").as_uri(), wait_until="load")
    page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise")
    state = page.evaluate("""async () => {
        await MathJax.startup.promise;
        await document.fonts.ready;
        const text = Array.from(document.querySelectorAll('.text_cell_render')).map(e => e.innerText).join('\\n');
        return {
            containers: document.querySelectorAll('.text_cell_render mjx-container').length,
            merrors: Array.from(document.querySelectorAll('mjx-merror')).map(e => e.textContent).slice(0, 5),
            dollars: (text.match(/\\$/g) || []).length,
            text: text.slice(0, 200),
            fonts: Array.from(document.fonts).filter(f => /MJX(TEX|ZERO)/.test(f.family) && f.status === 'loaded')
                .map(f => f.family),
        };
    }""")
    page.close()
    assert state["containers"] == expected, f"{state['containers']} typeset formulas, the notebook has {expected}"
    assert state["dollars"] == 0, f"raw $ left in the rendered text: {state['text']!r}"
    assert not state["merrors"], state["merrors"]
    assert "MJXTEX" in state["fonts"], f"MathJax fonts not loaded: {state['fonts']}"
    assert not outside, f"requests outside the feedback folder: {outside[:5]}"
    assert not failed and not errors, (failed[:5], errors[:5])
