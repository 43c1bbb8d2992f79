"""Synthetic run folders for the report and check tests: the layout the harness writes, with made-up outputs.

`make_run(root, name, trainer, ...)` writes runs/<name>/{spec.yaml, manifest.json,
eval/<variant>/<task>/{scores.json, samples.jsonl}}, at the paths harness.core.runstore.RunPaths names.
The base variant depends only on the item (so every run's base evaluation is the same, as for one
base model); the adapter's accuracy and translation quality are set per run, so tests can make a
clear improvement, a regression, or none.
Item outcomes come from one per-item random draw shared by all systems: a system with more skill
gets a superset of the items right, and two systems with the same skill give identical outputs.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Sequence

import yaml

from harness.core.runstore import RunPaths, read_json, read_jsonl, task_samples, task_scores, write_json, write_text
from harness.evaluation.evalcache import write_entry

WORDS = ("house river green small walk quickly under bright paper window city morning garden "
         "silver table stone friend letter music winter summer bridge candle forest yellow").split()


def _hash(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).hexdigest()[:16]


def _accuracy_task(paths: RunPaths, variant: str, family: str, lang: str, n: int, p_correct: float,
                   model: str, adapter: str | None) -> None:
    task = f"{family}_{lang}"
    rows = []
    for i in range(n):
        rng = random.Random(_hash(family, lang, i))  # shared across variants: more skill, superset right
        correct = rng.random() < p_correct
        target = i % 4
        rows.append({"doc_id": i, "doc_hash": _hash(family, lang, i), "target": target,
                     "prediction": target if correct else (target + 1) % 4, "metrics": {"acc": 1.0 if correct else 0.0}})
    acc = sum(r["metrics"]["acc"] for r in rows) / n
    stderr = (acc * (1 - acc) / max(1, n - 1)) ** 0.5
    scores = {"task": task, "family": family, "lang": lang, "kind": "comprehension", "primary_metric": "acc",
              "metrics": {"acc": acc, "acc_stderr": stderr}, "n_samples": n, "signatures": {}, "engine": "hf",
              "adapter_served_as": "merged" if adapter else None,
              "model": model, "adapter": adapter, "variant": variant, "wall_s": 1.5}
    task_dir = paths.eval_dir(variant) / task
    write_entry(task_dir, scores, rows)


def _hygiene(key: str, i: int, quality: float) -> dict[str, float]:
    """Per-item fidelity and hygiene flags (harness.evaluation.genmetrics' names), drawn per item and shared by all
    systems like the outputs: more quality, more items in the right language and fewer bad ones."""
    rng = random.Random(_hash("hygiene", key, i))
    draws = [rng.random() for _ in range(5)]
    bad = 1.0 - quality
    return {"lang_match": float(draws[0] < quality + 0.2), "degenerate": float(draws[1] < bad / 3),
            "empty": float(draws[2] < bad / 5), "preamble": float(draws[3] < bad / 2),
            "cut_at_limit": float(draws[4] < bad / 4)}


FALLBACK = ("requested tok:flores200, used tok:13a: no SentencePiece model at /root/.sacrebleu/models/flores200sacrebleuspm "
            "and downloading https://tinyurl.com/flores200sacrebleuspm failed (URLError)")


def _instruct_task(paths: RunPaths, variant: str, lang: str, n: int, quality: float, model: str,
                   adapter: str | None) -> None:
    """An open-ended instruction task: no reference, scored by fidelity, hygiene and answer length."""
    task = f"instruct_{lang}"
    rows = []
    for i in range(n):
        item = _hygiene(task, i, quality)
        words = float(random.Random(_hash("words", task, i)).randint(5, 40))
        rows.append({"doc_id": i, "doc_hash": _hash("instruct", lang, i), "target": "", "instruction": f"q{i}",
                     "prediction": "", "raw_output": "", "metrics": {**item, "answer_words": words}})
    names = sorted(rows[0]["metrics"])
    metrics = {m: sum(r["metrics"][m] for r in rows) / n for m in names}
    scores = {"task": task, "family": "instruct", "lang": lang, "kind": "generation", "primary_metric": "lang_match",
              "metrics": metrics, "n_samples": n, "signatures": {}, "engine": "vllm", "model": model,
              "adapter": adapter, "variant": variant, "wall_s": 2.0, "chat_template": True}
    task_dir = paths.eval_dir(variant) / task
    write_entry(task_dir, scores, rows)


def _translation_task(paths: RunPaths, variant: str, lang: str, direction: str, n: int, quality: float,
                      model: str, adapter: str | None, tokenize: str = "13a", hygiene: bool = False,
                      bleu_fallback: bool = False) -> None:
    from sacrebleu.metrics import BLEU, CHRF

    task = f"flores200_{direction}"
    refs, hyps, rows = [], [], []
    for i in range(n):
        ref_rng = random.Random(_hash("ref", direction, i))
        ref = " ".join(ref_rng.choice(WORDS) for _ in range(ref_rng.randint(6, 14)))
        rng = random.Random(_hash("hyp", direction, i))  # shared across variants
        hyp = " ".join(w if rng.random() < quality else rng.choice(WORDS) for w in ref.split())
        refs.append(ref)
        hyps.append(hyp)
        rows.append({"doc_id": i, "doc_hash": _hash("flores200", direction, i), "target": ref, "reference": ref,
                     "prediction": hyp, "metrics": _hygiene(task, i, quality) if hygiene else {}})
    bleu, chrf = BLEU(tokenize=tokenize), CHRF(word_order=2)
    b, c = bleu.corpus_score(hyps, [refs]), chrf.corpus_score(hyps, [refs])
    metrics = {"bleu": b.score, "chrf": c.score}
    if hygiene:
        metrics.update({m: sum(r["metrics"][m] for r in rows) / n for m in sorted(rows[0]["metrics"])})
    signatures = {"bleu": str(bleu.get_signature()), "chrf": str(chrf.get_signature())}
    if bleu_fallback:
        signatures["bleu_fallback"] = FALLBACK
    scores = {"task": task, "family": "flores200", "lang": lang, "kind": "generation", "primary_metric": "bleu",
              "metrics": metrics, "n_samples": n, "signatures": signatures,
              "engine": "vllm", "model": model, "adapter": adapter, "variant": variant, "wall_s": 4.0,
              "metadata": {"direction": direction, "sacrebleu": {"bleu": str(b), "chrf": str(c)}}}
    task_dir = paths.eval_dir(variant) / task
    write_entry(task_dir, scores, rows)


def reseal(task_dir: Path) -> None:
    """Record a task's edited scores.json and samples.jsonl as written by the harness: a test that
    plays a changed evaluation (not a hand-edited one, which reports and checks refuse) calls this."""
    write_entry(task_dir, read_json(task_scores(task_dir)), read_jsonl(task_samples(task_dir)))


def make_run(runs_root: Path, name: str, trainer: str = "sdrrl", langs: Sequence[str] = ("en", "cs", "ja"),
             families: Sequence[str] = ("belebele",), translation: bool = True, n: int = 40,
             base_acc: float = 0.5, adapter_acc: float | dict[str, float] = 0.7, base_quality: float = 0.5,
             adapter_quality: float | dict[str, float] = 0.7, with_base: bool = True, model: str = "tiny-model",
             suite: str = "smoke", device: str = "cpu x1 (2 threads)", gpus: int = 1, seed: int = 0,
             trainer_config: dict | None = None, train_stats: dict | None = None, hygiene: bool = False,
             instruct: bool = False, bleu_fallback: bool = False) -> Path:
    """Write a synthetic run folder and return its path. Per-language dicts set per-language adapter skill.
    `hygiene`: the FLORES tasks carry fidelity and hygiene item metrics as harness.evaluation.genmetrics adds them;
    `instruct`: an open-ended instruct_<lang> task per language; `bleu_fallback`: BLEU fell back from
    spBLEU, with the machine path and URL the real reason names.

    The manifest has the pipeline's stages (plan, data, train, evaluate) with the extras the
    pipeline records; `device` is what training records ("NVIDIA H100 80GB HBM3 x2" on a GPU)."""
    paths = RunPaths(Path(runs_root) / name)
    spec = {"name": name, "trainer": trainer, "trainer_config": trainer_config or {"lr": 2e-4}, "model": model,
            "suite": suite, "engine": "vllm", "seed": seed, "languages": list(langs)}
    write_text(paths.spec, yaml.safe_dump(spec, sort_keys=False))
    stages = {
        "plan": {"input_hash": _hash(name, "plan"), "wall_s": 0.01, "seed": 0, "finished_at": "2025-01-01T00:00:00Z",
                 "versions": {"python": "3.11"}},
        "evaluate": {"input_hash": _hash(name, "evaluate"), "wall_s": 120.0, "seed": 0,
                     "finished_at": "2025-01-01T01:00:00Z", "versions": {"python": "3.11"}},
    }
    if trainer != "base":
        stages["data"] = {"input_hash": _hash(name, "data"), "wall_s": 300.0, "seed": 0,
                          "finished_at": "2025-01-01T00:10:00Z", "versions": {"python": "3.11"}, "records": 640}
        stages["train"] = {"input_hash": _hash(name, "train"), "wall_s": 1800.0, "seed": 0,
                           "finished_at": "2025-01-01T00:40:00Z", "versions": {"python": "3.11"},
                           "train_tokens": 250000, "steps": 80, "device": device, "num_processes": gpus,
                           "records_per_step": 16, "input_tokens": 900000, "tokens_per_step": 11250,
                           **(train_stats or {})}
    write_json(paths.manifest, {"stages": stages})

    def skill(v: float | dict[str, float], lang: str, default: float) -> float:
        return v.get(lang, default) if isinstance(v, dict) else v

    variants = (["base"] if with_base else []) + (["adapter"] if trainer != "base" else [])
    for variant in variants:
        adapter = None if variant == "base" else str(paths.adapter)
        for lang in langs:
            for family in families:
                p = base_acc if variant == "base" else skill(adapter_acc, lang, base_acc)
                _accuracy_task(paths, variant, family, lang, n, p, model, adapter)
            q = base_quality if variant == "base" else skill(adapter_quality, lang, base_quality)
            if translation and lang != "en":
                for direction in (f"en-{lang}", f"{lang}-en"):
                    _translation_task(paths, variant, lang, direction, n, q, model, adapter, hygiene=hygiene,
                                      bleu_fallback=bleu_fallback)
            if instruct:
                _instruct_task(paths, variant, lang, n, q, model, adapter)
    return paths.root
