#!/usr/bin/env bash
# Rewrites generated-example/Cargo.lock: the example resolved on its own, outside the workspace
# (as its image build does), pinned to the versions in the workspace's Cargo.lock. svcgen embeds
# this lockfile and writes it, renamed, into every new project. Run it after a dependency of the
# runtime or of the generated Cargo.toml changed, then `svcgen generate generated-example`.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r generated-example/. "$work/"
cp Cargo.lock "$work/Cargo.lock"
# Any resolution keeps the locked versions and drops the packages the example does not use.
(cd "$work" && cargo metadata --format-version 1 > /dev/null)
cp "$work/Cargo.lock" generated-example/Cargo.lock
