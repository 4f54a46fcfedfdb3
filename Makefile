# The entry points a newcomer types. `make demo` and `make test` install what
# is missing first (Debian packages), then run; see README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help
WITH_REDIS := scripts/with-redis.sh

PREFIX ?= /usr/local

.PHONY: install-c help setup demo demo-core test test-core test-ruby test-python test-node test-c test-interop test-e2e test-demo bench bench-ruby bench-python bench-node redis-start redis-stop

help:
	@echo "make demo    start a private Redis and a Rails, a Flask and an Express app sharing one login"
	@echo "make test    run every test suite against real Redis topologies"
	@echo "make test-core | test-ruby | test-python | test-node | test-c | test-interop | test-e2e | test-demo"
	@echo "make bench | bench-ruby | bench-python | bench-node   benchmarks against the peers (not tests)"
	@echo "make install-c PREFIX=/usr/local   the C library, header and pkg-config file"

setup:
	@scripts/setup.sh

demo: setup
	@if [ -x scripts/demo.sh ]; then scripts/demo.sh; else $(MAKE) --no-print-directory demo-core; fi

# The engine alone: a session stored, read, merged from two writers, expired.
demo-core: setup
	cargo build -q -p sessionkeeper-core --example demo
	$(WITH_REDIS) standalone -- cargo run -q -p sessionkeeper-core --example demo

test: setup
	scripts/test-all.sh

test-core:
	$(WITH_REDIS) all -- scripts/test-core.sh

# Each part's script builds what it needs once and starts its own Redis.
test-ruby test-python test-node test-c test-interop test-e2e:
	scripts/$@.sh

# The scripted part of `make demo` (it exits instead of waiting for Ctrl-C).
test-demo:
	DEMO_EXIT=1 scripts/demo.sh

bench: setup
	$(WITH_REDIS) standalone -- scripts/bench-core.sh

bench-ruby bench-python bench-node: setup
	scripts/$@.sh

# The C library, header and pkg-config file (release build) under $(PREFIX).
install-c:
	scripts/install-c.sh $(PREFIX)

redis-start:
	tests/topology/redis.sh start all

redis-stop:
	tests/topology/redis.sh stop all
