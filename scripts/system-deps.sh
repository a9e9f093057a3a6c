#!/usr/bin/env bash
# Installs what the container tests need from Debian and rustup when it is missing: buildah and
# podman (no Docker engine), runc, musl-tools and the x86_64-unknown-linux-musl target for the
# static binary. Needs root (apt). ~1 min the first time, instant afterwards.
set -euo pipefail
missing=()
for tool in buildah podman runc x86_64-linux-musl-gcc; do
  command -v "$tool" > /dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing from Debian: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends buildah podman runc uidmap musl-tools > /dev/null
fi
if ! rustup target list --installed | grep -qx x86_64-unknown-linux-musl; then
  rustup target add x86_64-unknown-linux-musl
fi
