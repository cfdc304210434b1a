# Steward: the two commands a new user needs, and a few for developers.
SHELL := /usr/bin/env bash

.PHONY: up down console test test-faults install stack provision build bench bench-scale bench-automation bench-patching bench-scheduler bench-sessions bench-console lint

up: ## Install what is missing, build, start the local stack and control plane, register three agents, run a command.
	@bash infra/up.sh

down: ## Stop the agents, the control plane and the local stack.
	@bash infra/down.sh

test: ## Run every test: unit, adapter and end-to-end (starts the stack if none runs, stops what it started).
	@bash infra/test.sh

test-faults: ## The fault suite alone (make test runs it too): agents killed at each point of an invocation, every message delivered twice, the control plane killed mid fan-out, a node cut off, skewed clocks; prints scenarios, invocations audited and lost/doubled/stuck.
	@bash infra/test.sh --faults

install: ## Install the local toolchain (LocalStack, DynamoDB Local, Java, AWS CLI) into .local/.
	@bash infra/install.sh

stack: install ## Start LocalStack and DynamoDB Local and provision them from template.yaml.
	@bash infra/stack.sh start && .local/venv/bin/python infra/provision.py

console: ## Build the web console (console/dist), which the api function embeds; make up serves it.
	@bash infra/console.sh build

build:
	@bash infra/console.sh build && cargo build --workspace

lint:
	@cargo fmt --all -- --check && cargo clippy --workspace --all-targets -- -D warnings

bench: ## Print the figures: binary sizes, agent memory, time to all-final for 3/20/100 agents, Parameter Store requests (release control plane; fails on a failed run; see docs/benchmarks.md).
	@bash bench/run.sh $(BENCH_ARGS)

bench-scale: ## Every scale figure against its target: Lambda start per function, agent size and idle RSS, the request check on one command, idle cost per node-month, then 500 release agents at MaxConcurrency 100% and 10% (needs make up; BENCH_ARGS=--verify, --lambda-start, --agent-binary or --idle-cost for one part).
	@bash bench/scale.sh $(BENCH_ARGS)

bench-automation: ## Automation: requests of a 20-step execution checked against a hand count, per step by service; step-to-step latency; 100 agents rate-controlled at MaxConcurrency 10 (release control plane; needs make up; BENCH_ARGS=--verify for the check alone).
	@bash bench/automation.sh $(BENCH_ARGS)

bench-patching: ## Patch Manager on a Debian test node: the agent's peak RSS and wall time for Scan and Install, the package count, apt-get -s upgrade beside it (release agent and control plane; needs make up).
	@bash bench/patching.sh $(BENCH_ARGS)

bench-scheduler: ## Scheduler: lateness p50/p99 of 100 associations due in the same minute; AWS requests per idle tick as the tables are and with 1,000 associations and 100 windows defined (release control plane; needs make up; BENCH_ARGS=--idle-only or --lateness-only for one part).
	@bash bench/scheduler.sh $(BENCH_ARGS)

bench-sessions: ## Session Manager: keystroke-to-echo p50/p99, port-forwarding MB/s, AWS requests per minute of an idle and a busy session and of one whole session, cost per session-hour (release binaries where fresh; needs make up).
	@bash bench/sessions.sh $(BENCH_ARGS)

bench-console: ## Web console: time to a usable fleet page with 500 registered nodes (and its longest main-thread task), and what the browser downloads on first load (needs make up).
	@bash bench/console.sh $(BENCH_ARGS)
