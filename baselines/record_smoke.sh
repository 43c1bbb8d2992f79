#!/usr/bin/env bash
# Re-record baselines/smoke__smollm2-135m__sdrrl.json, noise included, in one command:
#
#   bash baselines/record_smoke.sh                 # runs the CI command 4 times (2, 1, 2, 1 threads), then records
#   bash baselines/record_smoke.sh RUN_DIR...      # records from runs made already (the first is the reference)
#
# Each run gets a fresh runs folder and a private evaluation cache, so every rerun computes its own
# scores; the spread over the runs sets the tolerances (reports/check.py). THREADS="2 1" etc. changes
# the reruns; WORK=dir keeps them somewhere other than a temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."
HARNESS=${HARNESS:-.venv/bin/harness}  # may be a command with arguments (word-split)
OUT=baselines/smoke__smollm2-135m__sdrrl.json
# The command CI reruns (tests/test_baseline_regression.py reads it back from the baseline file).
CMD=(run --trainer sdrrl --model smollm2-135m --suite smoke --limit 4 --max-gen-toks 64 --name ci-sdrrl)

runs=("$@")
if [ ${#runs[@]} -eq 0 ]; then
  WORK=${WORK:-$(mktemp -d)}
  i=0
  for threads in ${THREADS:-2 1 2 1}; do
    dir="$WORK/run$i-t$threads"
    echo "run $i with $threads thread(s) -> $dir" >&2
    OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads SDRRL_EVAL_CACHE="$dir/eval-cache" NO_COLOR=1 \
      $HARNESS "${CMD[@]}" --runs-dir "$dir/runs" > "$dir.log" 2>&1 || { echo "run $i failed: see $dir.log" >&2; exit 1; }
    runs+=("$dir/runs/ci-sdrrl")
    i=$((i + 1))
  done
fi

noise=()
for r in "${runs[@]:1}"; do noise+=(--noise-run "$r"); done
$HARNESS baseline "${runs[0]}" "${noise[@]}" --out "$OUT" --command "harness ${CMD[*]}"
