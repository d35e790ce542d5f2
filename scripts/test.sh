#!/usr/bin/env bash
# The one command that runs every test (README: "Run all tests").
# Installs what the tests need first: the Python venv with pinned onnx + onnxruntime
# (scripts/setup-venv.sh) and the real-model corpus (scripts/fetch-corpus.sh); both are
# idempotent and fast when already done.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup-venv.sh
bash scripts/fetch-corpus.sh
export WHITTLE_ORT_LIB="${WHITTLE_ORT_LIB:-$(ls "$root"/.venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* 2>/dev/null | head -n 1)}"
cargo test --workspace --all-targets "$@"
