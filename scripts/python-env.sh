#!/usr/bin/env bash
# Creates (or refreshes) the project-local Python venvs with pinned versions: `.venv` with the
# test clients, moto and the artifact validators (tests/e2e/requirements.txt), and
# `.venv-checkov` with checkov (tests/deploy/checkov-requirements.txt), whose pins conflict.
# ~2 min the first time, instant afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

ensure_venv() {
  local venv=$1 requirements=$2
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
  fi
  if ! cmp -s "$requirements" "$venv/requirements.installed"; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$venv/requirements.installed"
  fi
}

ensure_venv .venv tests/e2e/requirements.txt
ensure_venv .venv-checkov tests/deploy/checkov-requirements.txt
