# treadlab: the whole set-up on a fresh machine is `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint install clean firmware

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/lab demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

test: lint
	QT_QPA_PLATFORM=offscreen HYPOTHESIS_PROFILE=ci $(BIN)/python -m pytest -m "not slow" -q

# The reference firmware's host build (firmware/build/refdev) and its test tool, with the machine's gcc.
firmware:
	$(MAKE) -C firmware host

bench: $(STAMP)
	$(BIN)/python bench/decode.py
	@for b in gait_model simulator acquisition replug analysis report gui lsl batch clockcheck; do \
		if [ -f bench/$$b.py ]; then $(BIN)/python bench/$$b.py || exit 1; fi; done

clean:
	rm -rf $(VENV) build *.egg-info firmware/build
