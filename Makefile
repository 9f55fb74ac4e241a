# streamfleet — `make up` runs the farm, `make test` runs every check. Both set up what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
PYTEST_WORKERS ?= 2
ARGS ?=

RTSP := worker/rtsp/node_modules/.installed

.PHONY: install up test lint unit bench rtsp clean

# What running the farm needs (`make up`): the farm, Flower, embedded PostgreSQL and Redis, an
# FFmpeg. What the checks need besides (`make test`, `make install`): the dev extra.
define VENV_WITH
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[$(1)]'
endef

RUN_EXTRAS := flower,local

$(RUN_STAMP): pyproject.toml constraints.txt
	$(call VENV_WITH,$(RUN_EXTRAS))
	touch $(RUN_STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(call VENV_WITH,dev)
	touch $(STAMP) $(RUN_STAMP)

install: $(STAMP) $(RTSP)

up: $(RUN_STAMP) $(RTSP)
	$(BIN)/streamfleet up $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# A node's own RTSP server (npm rtsp-streaming-server; also the media tests' RTSP peer). Without
# Node.js and npm the node offers no RTSP server (it says so), and the tests needing one skip.
rtsp: $(RTSP)

$(RTSP): worker/rtsp/package.json worker/rtsp/package-lock.json
	@if command -v npm >/dev/null; then \
	  npm ci --prefix worker/rtsp --silent --no-audit --no-fund && touch $(RTSP); \
	else echo "npm not found: no node RTSP server here (install nodejs and npm for one)"; fi

test: lint rtsp
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
	rm -rf $(VENV) .streamfleet .pytest_cache .mypy_cache .ruff_cache worker/rtsp/node_modules
