#!/usr/bin/env bash
# Create (if missing) the repo-local Python venv at <repo>/.venv and install
# scripts/requirements.txt into it. Idempotent: a stamp holding the sha256 of
# requirements.txt is kept in .venv, so a second run with unchanged
# requirements returns immediately and silently.
#
# Usage: scripts/setup-venv.sh            (from any directory)
# Env:   PYTHON=python3.11 to choose the interpreter used to create the venv.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo_root/.venv"
requirements="$repo_root/scripts/requirements.txt"
stamp="$venv/.whittle-requirements.sha256"

want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

if [[ ! -x "$venv/bin/python" ]]; then
    echo "setup-venv: creating $venv" >&2
    "${PYTHON:-python3}" -m venv "$venv"
fi

echo "setup-venv: installing $requirements" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --requirement "$requirements"
echo "$want" > "$stamp"
echo "setup-venv: ready ($venv)" >&2
