"""The learning signal: a held-out slice of a run's own training data, scored by base and adapter.

Stage `data` keeps whole groups (a source example with all its variants) out of training, chosen
per language by a hash of (seed, group), so the slice is deterministic and never trained on:
the records of one group share their content across languages, so holding out a single record of
a group would leak it through its siblings. Stage `evaluate` then scores the slice with the base
model and with base + adapter (mean cross-entropy per answer token, the training loss) and writes
eval/heldout.json. A trainer that learns shows a lower held-out loss with the adapter.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from harness.core.device import load_causal_lm
from harness.core.progress import run_line, say, shown_path
from harness.core.runstore import RunPaths, read_json, read_jsonl, sha256_file, sha256_json, write_json
# Bound at import: the held-out loss is measured with the training tokenization as written, so a
# fault patched into the training path later (tests/test_mutations.py) cannot hide in the measurement.
from trainers.encoding import IGNORE_INDEX, encode_chat

# Our default, not the paper's: about a tenth of the groups, at least one group per language
# (a language with a single group keeps it for training: it has nothing to spare).
HELDOUT_FRACTION = 0.1
HELDOUT_VERSION = 1  # bump when the split changes: a run's data stage is then redone


def _rank(seed: int, group: str) -> str:
    return hashlib.sha256(f"{seed}:{group}".encode("utf-8")).hexdigest()


def split_heldout(records: list[dict], seed: int, fraction: float = HELDOUT_FRACTION) -> tuple[list[dict], list[dict]]:
    """(train, heldout): whole groups held out until each language has round(fraction * its groups), >= 1."""
    groups_of: dict[str, set[str]] = {}
    for r in records:
        groups_of.setdefault(str(r.get("lang", "?")), set()).add(str(r["group"]))
    all_groups = {str(r["group"]) for r in records}
    held: set[str] = set()
    for lang in sorted(groups_of):
        groups = sorted(groups_of[lang], key=lambda g: _rank(seed, g))
        if len(groups) < 2:
            continue
        want = max(1, round(fraction * len(groups)))
        for group in groups:
            if len(held & groups_of[lang]) >= want:
                break
            if len(held | {group}) < len(all_groups):  # never hold out everything
                held.add(group)
    train = [r for r in records if str(r["group"]) not in held]
    heldout = [r for r in records if str(r["group"]) in held]
    return train, heldout


@dataclass
class HeldoutLoss:
    n_records: int
    tokens: int
    loss: float  # mean cross-entropy per answer token


def _losses(model, tokenizer, records: list[dict], max_seq_len: int) -> dict[str, HeldoutLoss]:
    import torch
    import torch.nn.functional as F

    sums: dict[str, list[float]] = {}
    for r in records:
        example = encode_chat(tokenizer, r["messages"], max_seq_len)
        if example is None:
            continue
        ids = torch.tensor([example["input_ids"]], device=model.device)
        labels = torch.tensor(example["labels"][1:], device=model.device)
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0, :-1].float()
        total = F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX, reduction="sum").item()
        acc = sums.setdefault(str(r.get("lang", "?")), [0, 0, 0.0])
        acc[0] += 1
        acc[1] += int((labels != IGNORE_INDEX).sum())
        acc[2] += total
    return {lang: HeldoutLoss(n, t, s / t) for lang, (n, t, s) in sorted(sums.items()) if t}


def _kept(out_path: Path, key: str) -> dict | None:
    """The held-out scores written earlier for this key; None when absent, stale or damaged (recomputed)."""
    try:
        kept = read_json(out_path)
    except FileNotFoundError:
        return None
    except (ValueError, UnicodeDecodeError):
        say(f"evaluate: {out_path} is damaged (it does not parse); scoring the held-out records again")
        return None
    return kept if isinstance(kept, dict) and kept.get("key") == key else None


def evaluate_heldout(model_dir: Path, adapter: Path, heldout_path: Path, out_path: Path, max_seq_len: int) -> dict | None:
    """Score the held-out records with base and adapter; write and return out_path's content.

    Reuses out_path when model, adapter and held-out data are unchanged; None without held-out data.
    """
    from harness.core.models import adapter_fingerprint, model_fingerprint

    if not Path(heldout_path).exists() or not read_jsonl(heldout_path):
        return None
    key = sha256_json([model_fingerprint(model_dir), adapter_fingerprint(adapter), sha256_file(heldout_path), max_seq_len])
    if (kept := _kept(Path(out_path), key)) is not None:
        return kept
    records = read_jsonl(heldout_path)
    run_line(f"evaluate: held-out loss of base and adapter on {len(records)} records of {shown_path(heldout_path)}")
    from peft import PeftModel
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = load_causal_lm(model_dir)  # the GPU in bf16 when there is one (harness.core.device)
    base = _losses(model, tokenizer, records, max_seq_len)
    model = PeftModel.from_pretrained(model, str(adapter)).eval()
    tuned = _losses(model, tokenizer, records, max_seq_len)
    langs = {
        lang: {"n_records": b.n_records, "tokens": b.tokens, "base_loss": round(b.loss, 6),
               "adapter_loss": round(tuned[lang].loss, 6)}
        for lang, b in base.items() if lang in tuned
    }
    out = {"key": key, "records": len(records), "langs": langs}
    write_json(Path(out_path), out)
    return out


def heldout_rows(run_dirs: list[Path]) -> list[dict]:
    """Per run and language: held-out records, tokens, base and adapter loss and their difference
    (the report's held-out section; none for a run without held-out scores)."""
    rows = []
    for run_dir in run_dirs:
        path = RunPaths(Path(run_dir)).heldout_scores
        if not path.exists():
            continue
        for lang, v in read_json(path)["langs"].items():
            rows.append({"run": Path(run_dir).name, "lang": lang, "records": v["n_records"], "tokens": v["tokens"],
                         "base_loss": v["base_loss"], "adapter_loss": v["adapter_loss"],
                         "drop": v["base_loss"] - v["adapter_loss"]})
    return rows
