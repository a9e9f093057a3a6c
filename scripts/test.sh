#!/usr/bin/env bash
# Runs every test of svcgen: formatting, clippy, unit + golden + UI tests, the generated
# example's drift check, and the end-to-end tests against real gRPC clients (Python grpcio,
# grpcio-health-checking, buf curl) in a project-local venv (.venv, pinned versions).
# Takes ~6 min on a clean 2-core machine (mostly compiling), ~1 min when warm.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings

echo "== build"
cargo build --workspace

echo "== generated example is up to date"
target/debug/svcgen generate --check generated-example

echo "== rust tests"
cargo test --workspace

echo "== python environment"
scripts/python-env.sh

echo "== end-to-end"
.venv/bin/pytest -q tests/e2e
