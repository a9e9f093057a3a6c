#!/usr/bin/env bash
# Runs every test of svcgen: formatting, clippy, unit + golden + UI tests, the generated
# example's drift check, the store conformance suite on the embedded store and on DynamoDB
# (moto's server, started here on 127.0.0.1 and stopped at exit), and the end-to-end tests
# against real gRPC clients (Python grpcio, grpcio-health-checking, buf curl) on both backends,
# the deployment artifacts against cfn-lint, checkov, hadolint, parliament, botocore and moto's
# AWS APIs, the container image (the Dockerfile's builder stage run from the file itself in an
# empty directory, then buildah + podman, installed from Debian if missing), `svcgen new`
# and the regeneration lifecycle, fault and limit tests, and a smoke run of the benchmark.
# Python tools come from project-local venvs (pinned versions). As CI runs it (.ci/run, no
# incremental caches) it takes ~18 min and ~6 GB of disk on a clean 2-core machine, mostly
# compiling (the summary at the end lists each phase); ~11 min when warm.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each phase prints its name when it starts and its duration when the next one starts; a summary
# of every phase's duration closes the run (CI reads it to keep a fresh-clone run under 30 min).
started=$SECONDS
phase_started=$SECONDS
phase_name=""
timings=()
phase() {
  if [ -n "$phase_name" ]; then
    local took=$((SECONDS - phase_started))
    timings+=("$(printf '%5d s  %s' "$took" "$phase_name")")
    echo "   ($phase_name: ${took} s)"
  fi
  phase_name=$1
  phase_started=$SECONDS
  [ -n "$phase_name" ] && echo "== $phase_name"
  return 0
}
summary() {
  phase ""
  [ -f target/image-size.txt ] && cat target/image-size.txt
  echo "== phase durations"
  printf '%s\n' "${timings[@]}"
  printf '%5d s  total\n' "$((SECONDS - started))"
}

phase "format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --all-features -- -D warnings

phase "build"
# Everything the test run below compiles (the same targets and features: the dev-dependencies
# change feature unification, so `cargo build` alone would compile the AWS SDK crates twice) and
# every binary the end-to-end tests and the benchmark smoke run start. `cargo test` then compiles
# nothing (see [profile.dev.build-override] in Cargo.toml for what once made it compile again).
cargo build --workspace --all-targets --features svcgen-runtime/dynamodb-tests

phase "python environment and system packages"
scripts/python-env.sh
scripts/system-deps.sh

phase "DynamoDB-API server (moto)"
port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
.venv/bin/moto_server -H 127.0.0.1 -p "$port" > target/moto.log 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
export SVCGEN_DYNAMODB_ENDPOINT="http://127.0.0.1:$port"
for _ in $(seq 100); do
  curl -sf -X POST "$SVCGEN_DYNAMODB_ENDPOINT/moto-api/reset" > /dev/null && break
  sleep 0.1
done
curl -sf -X POST "$SVCGEN_DYNAMODB_ENDPOINT/moto-api/reset" > /dev/null

phase "rust tests"
cargo test --workspace --features svcgen-runtime/dynamodb-tests

phase "end-to-end, reliability and deployment artifacts"
.venv/bin/pytest -q --durations=15 tests/e2e tests/deploy

# The benchmark smoke run uses the debug build: it checks the harness and that no call fails,
# and measures nothing.
phase "benchmark smoke run"
.venv/bin/python scripts/bench.py --smoke --profile debug

summary
