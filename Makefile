# make run: install what is missing, build index/ if absent, serve http://127.0.0.1:7860
# make test: install what is missing, run every test
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: run test install lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check $(TORCH)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	test -f index/manifest.json || $(VENV)/bin/haitirag build
	$(PY) app.py

test: $(STAMP)
	$(PY) -m pytest -q -ra

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench app.py
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) index .pytest_cache .mypy_cache .ruff_cache
