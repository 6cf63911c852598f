# Two commands on a fresh machine (Python 3.10+ and Java 17+):
#   make run    build the local lakehouse from the embedded default data
#   make test   run the test suite
# Both create .venv/ and install the project into it on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install run test lint format clean databricks-cli screenshots benchmark compat

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[local,dev]"
	touch $@

# then the Delta jars and the JVM class archive local Spark starts from, once per machine
# (`retail-seg setup`; quiet when both are there)
install: $(BIN)/.installed
	@$(BIN)/retail-seg setup --quiet

run: install
	$(BIN)/retail-seg run $(ARGS)

test: install
	$(BIN)/pytest $(ARGS)

lint: install
	$(BIN)/ruff check src tests docs
	$(BIN)/ruff format --check src tests docs

format: install
	$(BIN)/ruff check --fix src tests docs
	$(BIN)/ruff format src tests docs

# The Databricks CLI the bundle checks in tests/bundle run (version in .ci/databricks-cli.version),
# built with Go 1.25+; without it `make test` skips those checks (CI installs it).
databricks-cli:
	.ci/install-databricks-cli

# docs/images/*.png: the report and the MLflow UI in headless Chromium, after `make run`
screenshots: install
	$(BIN)/python docs/screenshots.py

# the package on the Python packages DBR 17.3 LTS ML and serverless environment 4 ship
# (.venv-<runtime>/, Python 3.12): nothing upgraded, ML, session and Spark Connect tests pass
compat:
	.ci/runtime-compat dbr-17.3-ml
	.ci/runtime-compat serverless-env-4

# every task timed on generated data (BENCHMARKS.md), e.g. ARGS="--rows 10000000 --json out.json"
benchmark: install
	$(BIN)/retail-seg benchmark $(ARGS)

clean:
	rm -rf .lakehouse .pytest_cache .ruff_cache
