# The two commands a new user runs (README): `make demo` and `make test`.
# Both install what they need idempotently: a venv with the package (pip), and, when run as
# root, the Debian packages the built-in corpus needs (Festival and two voices).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.tts-gan-installed
DEMO_DIR ?= demo_out
# -n 2: the 2-core machines of the CI; tests sharing a costly fixture run on one worker, the
# costliest first (tests/conftest.py, BUILD_NOTES "Test suite wall time").
PYTEST_ARGS ?= -n 2 --dist loadgroup

.PHONY: venv system-deps test lint demo bench clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,eval]'
	touch $(STAMP)

venv: $(STAMP)

system-deps:
	bash data_prep/install_system_deps.sh

lint: venv
	$(BIN)/ruff check .

# pytest's exit code 5 ("no tests collected") is a failure too.
test: venv system-deps
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS) tests; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

demo: venv system-deps
	bash experiments/demo.sh $(DEMO_DIR)

# Synthesis speed (issue 28): the shipped voice beside the paper-size G and HiFi-GAN V1/V3,
# interleaved in one run; appends the table to benchmarks/RESULTS.md. Not part of `make test`.
bench: venv
	$(BIN)/python benchmarks/bench.py --append

clean:
	rm -rf $(VENV) $(DEMO_DIR) build *.egg-info
