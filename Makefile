# `make test` and `make demo` create .venv, install, and run.
# torch is installed first at TORCH_SPEC (the CPU build on machines that ship it);
# on a GPU machine, install your own torch into .venv first or run `make TORCH_SPEC= test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: install test test-all demo lint bench browser clean

$(STAMP): pyproject.toml constraints-ci.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@if [ -n "$(TORCH_SPEC)" ] && ! $(PY) -c "import torch" 2>/dev/null; then \
		echo "installing $(TORCH_SPEC)"; $(PY) -m pip install -q "$(TORCH_SPEC)"; fi
	$(PY) -m pip install -q -c constraints-ci.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m pytest -q -m "not slow"

test-all: $(STAMP)
	$(PY) -m pytest -q

demo: $(STAMP)
	$(VENV)/bin/taming demo

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m ruff format --check src tests benchmarks

# every benchmark against the original in one run; JSON lines last (see benchmarks/run_all.py);
# `make bench ISA=avx2` caps the kernel libraries at AVX2 (benchutil.ISA_CAPS)
bench: $(STAMP)
	$(PY) benchmarks/run_all.py --out bench-results$(if $(ISA),-$(ISA)).jsonl $(if $(ISA),--isa $(ISA))

# headless-browser test of `taming serve`: Debian's chromium + Playwright's Python package
# (its bundled driver; no browser download). Needs root or sudo for apt-get.
browser: $(STAMP)
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)
	$(PY) -m pip install -q -c constraints-ci.txt -e ".[dev,browser]"
	$(PY) -m pytest -q tests/test_serve_browser.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
