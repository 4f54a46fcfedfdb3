# The entry points a newcomer types. `make demo` and `make test` install what
# is missing first (Debian packages), then run; see README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help
WITH_REDIS := scripts/with-redis.sh

PREFIX ?= /usr/local

.PHONY: install-c help setup demo test test-core test-ruby test-python test-node test-c test-interop bench redis-start redis-stop

help:
	@echo "make demo    start a private Redis and show sessions stored, read, merged and expired"
	@echo "make test    run every test suite against real Redis topologies"
	@echo "make test-core | test-ruby | test-python | test-node | test-c | test-interop | bench"
	@echo "make install-c PREFIX=/usr/local   the C library, header and pkg-config file"

setup:
	@scripts/setup.sh

demo: setup
	cargo build -q -p sessionkeeper-core --example demo
	$(WITH_REDIS) standalone -- cargo run -q -p sessionkeeper-core --example demo

test: setup
	scripts/test-all.sh

test-core:
	$(WITH_REDIS) all -- scripts/test-core.sh

# Each part's script builds what it needs once and starts its own Redis.
test-ruby test-python test-node test-c test-interop:
	scripts/$@.sh

bench: setup
	$(WITH_REDIS) standalone -- scripts/bench-core.sh

# The C library, header and pkg-config file (release build) under $(PREFIX).
install-c:
	scripts/install-c.sh $(PREFIX)

redis-start:
	tests/topology/redis.sh start all

redis-stop:
	tests/topology/redis.sh stop all
