# make run: install what is missing, build index/ if absent, serve http://127.0.0.1:7860
# make test: install what is missing (chromium for the browser test too), run every test
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: run test install browser lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check $(TORCH)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	$(VENV)/bin/haitirag export >/dev/null || echo "haitirag export failed: questions will run on torch (slower)"  # ONNX models, once (runtime.py)
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	test -f index/manifest.json || $(VENV)/bin/haitirag build
	$(PY) app.py

test: $(STAMP) browser
	$(PY) -m pytest -q -ra

# Debian chromium for the playwright browser test (never `playwright install`). As root with apt it is
# installed; elsewhere the test skips with the reason, except under CI where a missing chromium fails it.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "chromium is not installed and cannot be installed here (needs root and apt-get)"; fi; }

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench app.py
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) index .pytest_cache .mypy_cache .ruff_cache
