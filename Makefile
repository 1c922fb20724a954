# The two set-up commands of the README: `make demo` (main job) and `make test` (everything).
# Both create the project's own virtual environment in .venv and install pinned tools into it.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint generated typecheck docs unit fuzz unasync bench readme clean

$(STAMP): pyproject.toml requirements-dev.txt
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "steadycache needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/steadycache demo

test: lint generated typecheck docs unit

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

# The sync code and tests are generated from their async source: fail when they are stale.
generated: $(STAMP)
	$(BIN)/python scripts/unasync.py --check

unasync: $(STAMP)
	$(BIN)/python scripts/unasync.py

typecheck: $(STAMP)
	$(BIN)/mypy

# The docs site must build without a warning (broken links, pages missing from the nav);
# tests/test_docs_examples.py runs every example in it and in the README.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict --quiet --site-dir $(VENV)/site

unit: $(STAMP)
	$(BIN)/pytest

# The fuzz tests with a longer budget (make test runs them with a small one).
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz FUZZ_CASES=400 $(BIN)/pytest -q -p no:cacheprovider \
		tests/core/test_fuzz_boundaries.py tests/test_policy_inputs.py \
		tests/_async/test_corrupt_entries.py tests/_sync/test_corrupt_entries.py

bench: $(STAMP)
	$(BIN)/steadycache demo --markdown benchmarks/results/demo.md
	$(BIN)/python benchmarks/facade_vs_peers.py
	$(BIN)/python benchmarks/stampede_vs_peers.py
	$(BIN)/python benchmarks/eviction_vs_libcachesim.py
	$(BIN)/python benchmarks/sizing_vs_libcachesim.py
	$(BIN)/python benchmarks/sizing_examples.py
	$(BIN)/python benchmarks/update_readme.py

readme: $(STAMP)
	$(BIN)/python benchmarks/update_readme.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
