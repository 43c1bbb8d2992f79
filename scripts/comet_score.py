"""COMET scorer, run by harness/evaluation/comet.py inside the COMET venv (`bash scripts/install.sh --comet`).

    .venv-comet/bin/python scripts/comet_score.py --model MODEL [--batch-size N] < items.jsonl > scores.jsonl

stdin: one {"src", "mt", "ref"} object a line; stdout: one {"score"} a line, same order. MODEL is a
hub id (downloaded into the Hugging Face cache), a COMET model folder holding
checkpoints/model.ckpt, or a .ckpt file. Uses one GPU when torch sees one, else the CPU.
Everything the libraries print goes to stderr, so stdout holds only the scores.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path


def checkpoint_path(model: str) -> Path:
    path = Path(model).expanduser()
    if path.is_dir():
        return path / "checkpoints" / "model.ckpt"
    if path.suffix == ".ckpt":
        return path
    from comet import download_model

    return Path(download_model(model))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()
    items = [json.loads(line) for line in sys.stdin if line.strip()]
    with contextlib.redirect_stdout(sys.stderr):
        import torch
        from comet import load_from_checkpoint

        model = load_from_checkpoint(str(checkpoint_path(args.model)))
        gpus = 1 if torch.cuda.is_available() else 0
        scores = model.predict(items, batch_size=args.batch_size, gpus=gpus, accelerator="gpu" if gpus else "cpu",
                               progress_bar=False, num_workers=0).scores if items else []
    for score in scores:
        sys.stdout.write(json.dumps({"score": float(score)}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
