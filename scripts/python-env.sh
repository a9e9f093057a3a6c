#!/usr/bin/env bash
# Creates (or refreshes) the project-local Python venv `.venv` with the pinned test clients
# from tests/e2e/requirements.txt. ~30 s the first time, instant afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
requirements=tests/e2e/requirements.txt
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if ! cmp -s "$requirements" .venv/requirements.installed; then
  .venv/bin/pip install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" .venv/requirements.installed
fi
