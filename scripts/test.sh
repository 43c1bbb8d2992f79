#!/usr/bin/env bash
# Installs (idempotent) and runs the whole test suite, the vLLM-on-CPU integration tests included.
#
# The suite runs in parallel workers (pytest-xdist; worksteal: an idle worker takes queued tests from
# the busy one, so the two long tests do not end up in one queue), each worker's torch/OpenMP on its
# share of the cores. On CI's 2 cores, 2 workers of 1 thread each take 7 min where one process of 2
# threads took 13.5: a tiny model's work keeps about one core busy, and 2 workers of 2 threads each
# fight over the cores (10 min). SDRRL_TEST_WORKERS=1 runs it in one process. No result depends on
# it: the baselines are recorded at 1 and 2 threads.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# COMET's own venv (tests/test_comet.py runs the real scorer subprocess). It lives in the user's cache,
# so after the first run on a machine this only checks that it imports.
bash scripts/install.sh --comet
CORES=$(.venv/bin/python -c 'import os; print(len(os.sched_getaffinity(0)))')
WORKERS=${SDRRL_TEST_WORKERS:-$(( CORES < 4 ? CORES : 4 ))}
PARALLEL=()
if [ "$WORKERS" -gt 1 ]; then
  PARALLEL=(-n "$WORKERS" --dist worksteal)
  THREADS=$(( CORES / WORKERS ))
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$THREADS} MKL_NUM_THREADS=${MKL_NUM_THREADS:-$THREADS}
fi
# pytest exits 5 when it collected no test: that is a failure here, never a silent pass.
exec .venv/bin/python -m pytest "${PARALLEL[@]}" "$@"
