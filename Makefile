# mcp-codegen. `make demo` and `make test` each do their own setup first.
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: setup demo test test-slow lint typecheck golden bench clean

# Everything: system packages (runsc), the venv, the demo servers and their data.
# Idempotent: each step is keyed on a hash of its inputs; a second run takes under a second.
setup:
	@bash scripts/setup.sh

# Build the demo package from the real demo servers, then run agent code against it in gVisor.
demo: setup
	$(PY) -m codegen build --config demo/mcp.json --name mcp_demo --package .demo/build/mcp_demo
	$(PY) -m codegen run demo/agent.py --config demo/mcp.json --package .demo/build/mcp_demo

test: setup
	$(PY) -m pytest -q

# The suites that take minutes (marked `slow`).
test-slow: setup
	$(PY) -m pytest -q -m slow

lint: setup
	.venv/bin/ruff check codegen tests bench scripts demo
	.venv/bin/ruff format --check codegen tests bench scripts demo

typecheck: setup
	.venv/bin/mypy --strict codegen demo/servers
	cd generated/mcp_demo && ../../.venv/bin/mypy --strict mcp_demo

# Regenerate the golden tree from its committed snapshot (no server is contacted).
golden: setup
	$(PY) -m codegen build --from-snapshot generated/mcp_demo/mcp-snapshot.json --name mcp_demo --package generated/mcp_demo

bench: setup
	mkdir -p bench/results
	$(PY) bench/build_bench.py
	$(PY) bench/servers_bench.py
	$(PY) bench/search_bench.py
	$(PY) bench/sandbox_bench.py
	$(PY) bench/serve_bench.py
	$(PY) bench/token_bench.py
	$(PY) bench/policy_bench.py --compare

clean:
	rm -rf .demo/build .pytest_cache .mypy_cache .ruff_cache
