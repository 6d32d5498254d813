"""A student's setup: `make student` hides nbgrader's instructor panels, and the README's student
commands run as written in a fresh shell.

`make student` runs against a throwaway environment that stands for the student's `.venv`: a venv whose
site-packages point at this test's environment, with a copy of its `etc/jupyter` (where the nbgrader
extensions are enabled), so the shared environment is never changed. JupyterLab's and Jupyter Server's
own listings then show formgrader, "Create Assignment" and the course list disabled, the student's
assignment list and validation still enabled.
"""
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.grader_helpers import REPO

pytestmark = pytest.mark.slow
ENV_PREFIX = Path(sys.prefix)
ANSI = re.compile(r"\x1b\[[0-9;]*m")
HIDDEN_PLUGINS = ["@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                  "@jupyter/nbgrader:course-list"]
KEPT_PLUGINS = ["@jupyter/nbgrader:assignment-list", "@jupyter/nbgrader:validate-assignment"]


def listing(python, module, env):
    proc = subprocess.run([str(python), "-m", module, "list"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return ANSI.sub("", proc.stdout + proc.stderr)


@pytest.fixture(scope="module")
def student_env(tmp_path_factory):
    """(python, env) of a student-like venv after `make student`; and the shared config before/after."""
    venv = tmp_path_factory.mktemp("student") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = Path(sysconfig.get_paths(vars={"base": str(venv), "platbase": str(venv)})["purelib"])
    (purelib / "course-env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    shutil.copytree(ENV_PREFIX / "etc" / "jupyter", venv / "etc" / "jupyter")
    (venv / ".stamp-base").touch()  # the course is installed already: make skips the pip step
    env = {**os.environ, "JUPYTER_PATH": str(ENV_PREFIX / "share" / "jupyter"), "JUPYTER_CONFIG_DIR":
           str(venv / "user-config"), "JUPYTER_PLATFORM_DIRS": "0"}
    shared_before = sorted((p.relative_to(ENV_PREFIX), p.read_bytes()) for p in (ENV_PREFIX / "etc").rglob("*")
                           if p.is_file())
    proc = subprocess.run(["make", "-C", str(REPO), "student", f"VENV={venv}"], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shared_after = sorted((p.relative_to(ENV_PREFIX), p.read_bytes()) for p in (ENV_PREFIX / "etc").rglob("*")
                          if p.is_file())
    return venv / "bin" / "python", env, shared_before, shared_after


def test_instructor_lab_plugins_disabled(student_env):
    python, env, _, _ = student_env
    before = listing(sys.executable, "jupyterlab.labextensions", env)
    assert "@jupyter/nbgrader" in before  # the extension is installed, so the check below means something
    text = listing(python, "jupyterlab.labextensions", env)
    disabled = text.split("Disabled extensions:", 1)[1].split() if "Disabled extensions:" in text else []
    for plugin in HIDDEN_PLUGINS:
        assert plugin in disabled, f"{plugin} is not disabled:\n{text}"
    for plugin in KEPT_PLUGINS:
        assert plugin not in disabled, f"{plugin} should stay enabled for students:\n{text}"


def test_instructor_server_extensions_disabled(student_env):
    python, env, _, _ = student_env
    text = listing(python, "jupyter_server.extension.serverextension", env)
    states = dict(re.findall(r"(nbgrader\.server_extensions\.\w+) (enabled|disabled)", text))
    assert states == {"nbgrader.server_extensions.formgrader": "disabled",
                      "nbgrader.server_extensions.course_list": "disabled",
                      "nbgrader.server_extensions.assignment_list": "enabled",
                      "nbgrader.server_extensions.validate_assignment": "enabled"}, text


def test_shared_environment_untouched(student_env):
    _, _, before, after = student_env
    assert before == after


def readme_student_commands():
    text = (REPO / "README.md").read_text()
    section = text.split("## For students", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"`(\.venv/bin/[^`]+)`", section)


def test_readme_student_commands_run_in_a_fresh_shell(tmp_path):
    """The README's `.venv/bin/...` commands, in `env -i` (no activated venv, a bare PATH), from the top
    folder; `jupyter lab` is asked for its version instead of starting a server."""
    commands = readme_student_commands()
    assert any("jupyter lab" in c for c in commands) and any("nbgrader validate" in c for c in commands), commands
    top = tmp_path / "course"
    top.mkdir()
    (top / ".venv").symlink_to(REPO / ".venv" if (REPO / ".venv").exists() else ENV_PREFIX)
    shutil.copy(REPO / "nbgrader_config.py", top)
    shutil.copytree(REPO / "exercises" / "conv2d", top / "exercises" / "conv2d")
    for command in commands:
        if "nbgrader submit" in command:
            continue  # needs an exchange; its binary is the one validate uses
        if "jupyter lab" in command:
            command = command.split(" exercises/")[0] + " --version"
        proc = subprocess.run(["env", "-i", "PATH=/usr/bin:/bin", "HOME=" + str(tmp_path), "bash", "-c", command],
                              cwd=top, capture_output=True, text=True, timeout=600)
        out = proc.stdout + proc.stderr
        assert "command not found" not in out and proc.returncode != 127, f"{command}:\n{out}"
        if "validate" in command or "selfcheck" in command:
            # the unanswered notebook: validate (or the self-check) runs and reports the stubs
            assert "NotImplementedError" in out, f"{command}:\n{out[-2000:]}"
            assert "selfcheck" not in command or (proc.returncode == 1 and "FAILED  test_" in out), out[-2000:]
        else:
            assert proc.returncode == 0 and re.match(r"\d+\.\d+", proc.stdout.strip()), f"{command}:\n{out}"
