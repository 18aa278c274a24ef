# The two commands a new user runs (README): `make demo` and `make test`.
# Both install what they need idempotently: a venv with the package (pip), and, when run as
# root, the Debian packages the built-in corpus needs (Festival and two voices).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.tts-gan-installed
DEMO_DIR ?= demo_out
PYTEST_ARGS ?= -n 2

.PHONY: venv system-deps test lint demo clean

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

clean:
	rm -rf $(VENV) $(DEMO_DIR) build *.egg-info
