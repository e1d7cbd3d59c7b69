# velofarm: `make demo` releases the example locally; `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/velofarm demo --once --dir .demo

test: $(STAMP)
	$(PY) -m pytest -q -ra

test-fast: $(STAMP)
	$(PY) -m pytest -q -ra -m "not integration and not browser and not postgres"

lint: $(STAMP)
	$(VENV)/bin/ruff check velofarm tests
	$(VENV)/bin/mypy --strict velofarm/spec velofarm/tags velofarm/release velofarm/worker_tools \
	    velofarm/publish velofarm/artifacts velofarm/images velofarm/buildmaster/farmplan.py velofarm/cli/farmlist.py

bench: $(STAMP)
	$(PY) -m bench.run

clean:
	rm -rf .demo .pytest_cache
