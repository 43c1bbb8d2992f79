#!/usr/bin/env bash
# Installs (idempotent) and runs the whole test suite, the vLLM-on-CPU integration tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# COMET's own venv (tests/test_comet.py runs the real scorer subprocess). It lives in the user's cache,
# so after the first run on a machine this only checks that it imports.
bash scripts/install.sh --comet
# pytest exits 5 when it collected no test: that is a failure here, never a silent pass.
exec .venv/bin/python -m pytest "$@"
