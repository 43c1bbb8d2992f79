#!/usr/bin/env bash
# Re-record the tiny-model baselines, noise included, in one command:
#
#   bash baselines/record_tiny.sh            # each command run twice (2, then 1 thread), then recorded
#
# They check what CI's smollm2 run (record_smoke.sh) never takes: the NLLB translator, through
# transformers (`nllb`) and through CTranslate2 (`nllb-ct2`), on the tests' tiny NLLB-shaped model,
# and a seed other than 0 (a seed that does not reach the data sampling, the batch order or the LoRA
# initialisation moves the training-loss and held-out cells). The models are the tests' own
# (tests/tiny_nllb.py build_baseline_models, deterministic), built into WORK/models, where the commands
# run (they name the models by relative folder). THREADS="2 1" etc. changes the reruns; WORK=dir keeps
# them somewhere other than a temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
HARNESS=${HARNESS:-$REPO/.venv/bin/harness}  # may be a command with arguments (word-split)
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
WORK=${WORK:-$(mktemp -d)}
MODELS="$WORK/models"
export SDRRL_OFFLINE=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 NO_COLOR=1
"$PYTHON" -c 'import sys; sys.path.insert(0, "tests"); from tiny_nllb import build_baseline_models; build_baseline_models(sys.argv[1])' "$MODELS" > /dev/null
# The command of each baseline, less its translator; tests/test_baseline_regression.py reads it back.
COMMON=(run --trainer sdrrl --model tiny-llama --suite smoke --langs cs --engine hf --seed 1 --limit 2
        --max-gen-toks 8 --max-model-len 512 --set num_instructions=6 --set answer_max_new_tokens=12
        --set keep_truncated_answers=true --set keep_wrong_language_answers=true --set parallel_per_lang=2
        --set max_steps=6 --set learning_rate=0.01 --set warmup_ratio=0 --set translator_model=tiny-nllb)

record() {  # record OUT_STEM TRANSLATOR
  local stem=$1 translator=$2 i=0 runs=() noise=()
  local cmd=("${COMMON[@]}" --set "translator=$translator" --name "ci-$stem")
  for threads in ${THREADS:-2 1}; do
    local dir="$WORK/$stem/run$i-t$threads"
    mkdir -p "$dir"
    echo "$stem: run $i with $threads thread(s) -> $dir" >&2
    (cd "$MODELS" && OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads SDRRL_HOME="$dir/home" \
      SDRRL_EVAL_CACHE="$dir/eval-cache" $HARNESS "${cmd[@]}" --runs-dir "$dir/runs" > "$dir.log" 2>&1) \
      || { echo "$stem run $i failed: see $dir.log" >&2; exit 1; }
    runs+=("$dir/runs/ci-$stem")
    i=$((i + 1))
  done
  for r in "${runs[@]:1}"; do noise+=(--noise-run "$r"); done
  $HARNESS baseline "${runs[0]}" "${noise[@]}" --out "$REPO/baselines/tiny__$stem.json" --command "harness ${cmd[*]}"
}

record sdrrl-nllb-seed1 nllb
record sdrrl-nllb-ct2-seed1 nllb-ct2
