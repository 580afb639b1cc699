# Two commands on a fresh machine: `make demo` and `make test`. Each installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := redis-server git chromium

.PHONY: test lint demo bench chaos system-deps venv clean

test: system-deps venv lint  ## the guard rails, then the whole suite against private services it starts itself
	$(PY) -m pytest -q -p no:cacheprovider --durations=15 -m "not chaos" -n 3 --dist loadfile

lint: venv  ## style, import contracts (pyproject.toml) and types: the house keeps its shape
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

demo: system-deps venv  ## play the built-in scenario through real processes
	$(PY) -m devstack demo

bench: system-deps venv  ## measure the receiver, the command path and what an organisation costs the APIs (not part of `make test`)
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wrk; }
	$(PY) bench/ingest.py
	$(PY) bench/slow_clients.py
	$(PY) bench/commands.py
	$(PY) bench/registry_polling.py
	$(PY) bench/org.py

chaos: system-deps venv  ## kill the worker and Redis under load, crash the release train, a storm of 1,000 pushes, fuzz the receiver: nothing lost, nothing twice, no 5xx (not part of `make test`)
	$(PY) -m pytest -q -p no:cacheprovider tests/reliability/test_receiver_fuzz.py; fuzz=$$?; \
	$(PY) -m pytest -q -p no:cacheprovider -m chaos tests/reliability; status=$$?; \
	cat test-artifacts/chaos.txt test-artifacts/crash_points.txt test-artifacts/crash_points_twice.txt \
		test-artifacts/push_storm.json test-artifacts/fuzz-receiver.json 2>/dev/null; exit $$((status || fuzz))

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; fi

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-*; touch $@

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache test-artifacts
