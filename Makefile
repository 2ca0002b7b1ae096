# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?= var/data/seed
ARTIFACTS ?= var/artifacts
HOST ?= 127.0.0.1
PORT ?= 8000

MOVIELENS ?= ../shared/data/ml-latest-small

.PHONY: install dev run lint test test-fast quality clean

# The load benchmarks drive wrk: Debian's, installed when missing and run as root.
NEED_WRK = command -v wrk >/dev/null || { test "$$(id -u)" = 0 && apt-get install -y -q wrk >/dev/null; } \
  || { echo "$@ needs wrk: apt-get install wrk" >&2; exit 1; }

# What serving and the offline jobs need, no test tools.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# The test and lint tools on top (pytest, ruff, schemathesis, ...).
$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# matplotlib (the `report` extra) on top: the quality report's and the benchmarks' plots.
$(VENV)/.installed-report: $(VENV)/.installed-dev
	$(BIN)/python -m pip install --quiet -e '.[dev,report]'
	touch $@

install: $(VENV)/.installed

dev: $(VENV)/.installed-dev

# Simulate the article's data, train and index it when missing, then serve.
run: install
	test -f $(DATA)/features.toml || $(BIN)/recsys simulate --profile seed --out $(DATA)
	ls $(ARTIFACTS)/*/manifest.json >/dev/null 2>&1 || $(BIN)/recsys train --data $(DATA) --out $(ARTIFACTS)
	newest=$$(ls -1d $(ARTIFACTS)/*/manifest.json | sort | tail -n 1 | xargs dirname); \
	  test -f $$newest/index/manifest.json || $(BIN)/recsys build-index --artifacts $(ARTIFACTS) --version $$(basename $$newest)
	$(BIN)/recsys serve --artifacts $(ARTIFACTS) --host $(HOST) --port $(PORT)

# Ruff (rules in pyproject.toml) and the import layers (tests/test_layers.py): seconds, so first.
lint: dev
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_layers.py

# Everything, slow quality and multi-process runs included (matplotlib too: the plots are
# tested). pytest exits 5 when it collected no tests: fail loudly rather than pass on nothing.
test: lint $(VENV)/.installed-report
	$(BIN)/python -m pytest -q; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "make test: no tests were collected" >&2; fi; exit $$rc

# The same without the tests marked slow (quality, benchmarks, multi-process training, browser).
test-fast: lint $(VENV)/.installed-report
	$(BIN)/python -m pytest -q -m "not slow"; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "make test-fast: no tests were collected" >&2; fi; exit $$rc

# Regenerates docs/QUALITY.md (and docs/quality/*.png); MovieLens is used when present.
quality: $(VENV)/.installed-report
	$(BIN)/recsys report --out docs $$(test -d $(MOVIELENS) && echo --movielens $(MOVIELENS))

# Every benchmark; each rewrites its own section of docs/PERFORMANCE.md.
.PHONY: bench
bench: bench-index bench-train bench-load bench-index-trained

# Index formats (flat, hnsw, ivf) at 100k and 1M items: build time, memory, latency, batched
# throughput, recall@100; rewrites its own section of docs/PERFORMANCE.md and its plot in
# docs/performance/. Takes minutes.
# BENCH_INDEX_ARGS adds flags, e.g. --embeddings var/artifacts/VERSION to use a model's items.
.PHONY: bench-index
bench-index: $(VENV)/.installed-report
	$(BIN)/python -m bench.index_bench --sizes 100000,1000000 --out docs/PERFORMANCE.md $(BENCH_INDEX_ARGS)

# Training throughput at 1M users x 1M items x 10M exposures: the project's loop against a
# plain keras fit; rewrites its own section of docs/PERFORMANCE.md. Takes ~8 minutes.
.PHONY: bench-train
bench-train: dev
	$(BIN)/python -m bench.train_bench --out docs/PERFORMANCE.md

clean:
	rm -rf var .pytest_cache

# The container test: engine (started when none runs), base image (made when it cannot be
# pulled), both images, `docker compose up --wait`, a request, a rollout, `down -v`; the host
# is left as it was. Needs root or a running engine; about 10 minutes from nothing.
.PHONY: test-docker
test-docker:
	bash docker/e2e.sh

# Regenerates the images' pinned dependency sets (docker/requirements-*.txt) from
# pyproject.toml and docker/requirements-*.in with uv, for Python 3.11 on any platform.
LOCK_TOOLS := var/lock-tools
UV_COMPILE := $(LOCK_TOOLS)/bin/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes
.PHONY: lock
lock:
	test -x $(LOCK_TOOLS)/bin/uv || { $(PYTHON) -m venv $(LOCK_TOOLS) && $(LOCK_TOOLS)/bin/pip install --quiet uv; }
	$(UV_COMPILE) --upgrade pyproject.toml -o docker/requirements-train.txt
	$(UV_COMPILE) --upgrade docker/requirements-serve.in -c docker/requirements-train.txt -o docker/requirements-serve.txt
	$(UV_COMPILE) --upgrade docker/requirements-build.in -o docker/requirements-build.txt

# Serving under load: wrk against `recsys serve` on a 1M-item index (built under var/bench/load
# on first use: realistic simulator, one epoch, IVF), at 1, 8 and 32 connections, with and
# without micro-batching; rewrites its own section of docs/PERFORMANCE.md and its plots in
# docs/performance/. ~10 minutes the first time, ~3 after. wrk comes from Debian (installed
# here when missing and run as root).
.PHONY: bench-load
bench-load: $(VENV)/.installed-report
	$(NEED_WRK)
	$(BIN)/python -m bench.load_bench --out docs/PERFORMANCE.md $(BENCH_LOAD_ARGS)

# Serving while 1,000 events a second stream into POST /events, against quiet, and how soon a
# click serves; rewrites its own section. Uses bench-load's history model.
.PHONY: bench-events
bench-events: $(VENV)/.installed-report
	$(NEED_WRK)
	$(BIN)/python -m bench.events_bench --out docs/PERFORMANCE.md $(BENCH_EVENTS_ARGS)

# Where a request's CPU goes: py-spy samples the default service under 32 wrk connections;
# rewrites its own section. Uses bench-load's model.
.PHONY: bench-profile
bench-profile: $(VENV)/.installed-report
	$(NEED_WRK)
	$(BIN)/python -m bench.profile_serve --out docs/PERFORMANCE.md $(BENCH_PROFILE_ARGS)

# The default configuration far past its capacity (64-2,000 connections): goodput and the
# client-side latency of shed 503s; rewrites its own section. Uses bench-load's model.
.PHONY: bench-overload
bench-overload: install
	$(NEED_WRK)
	$(BIN)/python -m bench.load_bench --overload 64,200,500,1000,2000 --out docs/PERFORMANCE.md $(BENCH_LOAD_ARGS)

# Filtered requests at 50 %, 5 %, 0.5 % and 0.01 % of the catalogue beside unfiltered ones,
# 32 connections, one run; and the filtered candidates' recall@100 against an exact filtered
# search. Uses (and on first use builds) bench-load's model; rewrites its own section.
.PHONY: bench-filtered
bench-filtered: dev
	$(NEED_WRK)
	$(BIN)/python -m bench.filtered_load --out docs/PERFORMANCE.md $(BENCH_FILTERED_ARGS)

# `recsys recommend --all-users` on bench-load's model (200k users x 1M items): users/s over
# the whole command and over the recommending alone; rewrites its own section.
.PHONY: bench-recommend
bench-recommend: install
	$(BIN)/python -m bench.recommend_bench --out docs/PERFORMANCE.md $(BENCH_RECOMMEND_ARGS)

# The index formats at 1M items on the load benchmark's trained model: its item embeddings,
# queried with its users' embeddings; a section (and plot) of its own. Needs bench-load's model.
.PHONY: bench-index-trained
bench-index-trained: $(VENV)/.installed-report
	version=$$(ls -1d var/bench/load/artifacts/2*/ 2>/dev/null | sort | tail -n 1); \
	  test -n "$$version" || { echo "run make bench-load first (it trains the model)" >&2; exit 1; }; \
	  $(BIN)/python -m bench.index_bench --sizes 1000000 --formats flat,hnsw,ivf --embeddings $${version%/} \
	    --section index-bench-trained --out docs/PERFORMANCE.md
