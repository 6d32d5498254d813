# Two commands do everything on a fresh machine:
#   make book   create .venv, install, build the website into _build/html
#   make test   create .venv, install (plus test tools), run every test
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: book test venv test-deps system-deps serve bench clean

$(VENV)/.stamp-base: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -r requirements.txt
	$(PIP) install -q --no-deps -e .
	touch $@

$(VENV)/.stamp-test: $(VENV)/.stamp-base requirements-test.txt
	$(PIP) install -q -r requirements-test.txt
	touch $@

venv: $(VENV)/.stamp-base

test-deps: $(VENV)/.stamp-test system-deps

# Debian packages the tests need (Chromium for the browser test, bubblewrap for the grader sandbox).
system-deps:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v bwrap >/dev/null || missing="$$missing bubblewrap"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "please install:$$missing (Debian packages)"; exit 1; fi; \
	fi

test: test-deps
	$(PY) -m pytest -q

bench: $(VENV)/.stamp-test
	$(PY) bench/conv.py

clean:
	rm -rf _build
