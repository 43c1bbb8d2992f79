#!/usr/bin/env bash
# Installs (idempotent) and runs the whole test suite, the vLLM-on-CPU integration tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# pytest exits 5 when it collected no test: that is a failure here, never a silent pass.
exec .venv/bin/python -m pytest "$@"
