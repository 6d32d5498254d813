# Two commands do everything on a fresh machine:
#   make book   create .venv, install, build the website into _build/html
#   make test   create .venv, install (plus test tools), run every test
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: book test venv test-deps system-deps cgroups serve bench clean release student

$(VENV)/.stamp-base: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -r requirements.txt
	$(PIP) install -q --no-deps -e .
	touch $@

$(VENV)/.stamp-test: $(VENV)/.stamp-base requirements-test.txt
	$(PIP) install -q -r requirements-test.txt
	touch $@

venv: $(VENV)/.stamp-base

# A student's setup: the course's environment in .venv, with nbgrader's instructor panels hidden in
# JupyterLab (formgrader, "Create Assignment", course list: lab plugins disabled and locked, their
# server extensions disabled, in .venv only). Students keep the assignment list and "Validate".
NBGRADER_INSTRUCTOR_PLUGINS := @jupyter/nbgrader:formgrader @jupyter/nbgrader:create-assignment @jupyter/nbgrader:course-list
NBGRADER_INSTRUCTOR_SERVER := nbgrader.server_extensions.formgrader nbgrader.server_extensions.course_list
student: $(VENV)/.stamp-base
	$(PY) -m jupyterlab.labextensions disable --level=sys_prefix $(NBGRADER_INSTRUCTOR_PLUGINS)
	$(PY) -m jupyterlab.labextensions lock --level=sys_prefix $(NBGRADER_INSTRUCTOR_PLUGINS)
	$(PY) -m jupyter_server.extension.serverextension disable --sys-prefix $(NBGRADER_INSTRUCTOR_SERVER)
	@echo "ready: $(VENV)/bin/jupyter lab exercises/conv2d/conv2d.ipynb   then   $(VENV)/bin/nbgrader validate exercises/conv2d/conv2d.ipynb"

test-deps: $(VENV)/.stamp-test system-deps cgroups

# Debian packages the tests need (Chromium for the browser test, bubblewrap for the grader sandbox,
# PostgreSQL for the gradebook tests: they start a throwaway server with initdb/pg_ctl, none runs).
system-deps:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v bwrap >/dev/null || missing="$$missing bubblewrap"; \
	ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "please install:$$missing (Debian packages)"; exit 1; fi; \
	fi

# The grader gives every sandbox its own cgroup (v1 hierarchies cpu, cpuacct, memory, pids under
# /sys/fs/cgroup, written by root): mount the missing ones, or say how to. A host booted with the
# unified (v2-only) hierarchy needs systemd.unified_cgroup_hierarchy=0 on its kernel command line.
CGROUP_ROOT ?= /sys/fs/cgroup
cgroups:
	@for c in cpu cpuacct memory pids; do \
	  if ! grep -qE "^[^ ]+ $(CGROUP_ROOT)/$$c cgroup .*[ ,]$$c[, ]" /proc/mounts && \
	     ! test -f "$(CGROUP_ROOT)/$$c/cgroup.procs"; then \
	    if [ "$$(id -u)" != 0 ]; then echo "the grader needs the cgroup v1 '$$c' hierarchy: run 'sudo make cgroups'"; exit 1; fi; \
	    if [ "$$(stat -fc %T $(CGROUP_ROOT))" = cgroup2fs ]; then echo "$(CGROUP_ROOT) is a cgroup v2 (unified) hierarchy: the grader needs v1 (see 'Isolation' in README.md)"; exit 1; fi; \
	    mountpoint -q $(CGROUP_ROOT) || mount -t tmpfs -o mode=755 cgroup $(CGROUP_ROOT); \
	    mkdir -p $(CGROUP_ROOT)/$$c && mount -t cgroup -o $$c cgroup $(CGROUP_ROOT)/$$c || \
	      { echo "cannot mount the cgroup v1 '$$c' hierarchy at $(CGROUP_ROOT)/$$c (see 'Isolation' in README.md)"; exit 1; }; \
	  fi; \
	done

test: test-deps
	$(PY) -m pytest -q -n 2 --dist loadfile  # one file per worker: a module shares its course fixtures

bench: $(VENV)/.stamp-test
	$(PY) bench/conv.py
	$(PY) bench/grade.py

clean:
	rm -rf _build

# The website. Always a clean build: the execution cache keys on cell code only (editing src/ would not
# invalidate it) and Sphinx skips re-reading unchanged pages, so both are removed first. Every chapter is
# executed; -n (nitpicky) and -W make any warning, cell error or broken reference fail the build.
book: $(VENV)/.stamp-base
	rm -rf _build/html _build/.doctrees _build/.jupyter_cache _build/jupyter_execute
	env -u MPLBACKEND $(VENV)/bin/jupyter-book build . -n -W --keep-going  # kernels must use the inline backend

# Serve the built website on http://127.0.0.1:$(PORT)/ (offline: MathJax is served locally).
PORT ?= 8000
serve:
	@test -f _build/html/index.html || $(MAKE) book
	$(PY) -m http.server $(PORT) --bind 127.0.0.1 --directory _build/html

# Graded exercises: rebuild solutions/<a>/<a>.ipynb from solutions/_sources/ and regenerate the
# student versions exercises/<a>/ with nbgrader (no gradebook is written; output is deterministic;
# "[a-z]*" matches every assignment folder and skips solutions/_sources).
release: $(VENV)/.stamp-base
	$(PY) solutions/_sources/build.py
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/nbgrader generate_assignment "[a-z]*" --force --no-db --log-level=WARN
	$(PY) -m course_grader.solution_check solutions exercises  # every solution grades full in the sandbox
