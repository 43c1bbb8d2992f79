"""Stage `evaluate`: run tasks through lm-eval on one model (plus optional LoRA adapter).

Each task's result lands in <out_dir>/<task>/{scores.json,samples.jsonl}, written atomically.
A task whose scores.json carries the same evaluation key is skipped, so an interrupted
evaluation resumes at the first unfinished task.
"""

from __future__ import annotations

import gc
import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import comet, genmetrics
from harness.engines import EngineSettings, check_engine, lm_eval_model_args, prepare_vllm_env
from harness.errors import HarnessError, unknown
from harness.models import cache_root
from harness.progress import silence_git_probe
from harness.runstore import read_json, read_jsonl, sha256_file, sha256_json, write_json, write_jsonl
from harness.tasks import TaskInfo, tasks_dir


EVAL_FORMAT = 2  # bump when scores.json / samples.jsonl change shape: old caches are then ignored


@dataclass
class EvalRequest:
    model_dir: Path
    tasks: list[TaskInfo]
    out_dir: Path  # runs/<name>/eval/<variant>
    variant: str = "base"  # "base" or "adapter"
    adapter: Path | None = None
    engine: str = "vllm"
    data_dir: Path | None = None
    limit: int | None = None
    settings: EngineSettings = field(default_factory=EngineSettings)
    hf_batch_size: int = 8
    use_shared_cache: bool = True  # False (harness run --force): recompute, then refresh the cache


def adapter_fingerprint(adapter: Path | None) -> str | None:
    if adapter is None:
        return None
    weights = Path(adapter) / "adapter_model.safetensors"
    if not weights.exists():
        raise HarnessError(f"adapter folder {str(adapter)!r} has no adapter_model.safetensors")
    return sha256_file(weights)


def model_fingerprint(model_dir: Path) -> str:
    """Config plus, per weight file, its size and the hash of its first and last 4 MiB.

    Cheap even for multi-GB checkpoints, and different for two random models of one shape.
    """
    parts: list = [(Path(model_dir) / "config.json").read_text()]
    for f in sorted(Path(model_dir).glob("*.safetensors")):
        size = f.stat().st_size
        with open(f, "rb") as fh:
            head = fh.read(4 << 20)
            fh.seek(max(0, size - (4 << 20)))
            tail = fh.read()
        parts.append((f.name, size, hashlib.sha256(head + tail).hexdigest()))
    return sha256_json(parts)


def eval_key(req: EvalRequest, task: TaskInfo, model_fp: str, adapter_fp: str | None) -> str:
    return sha256_json(
        {
            "model": model_fp,
            "adapter": adapter_fp,
            "engine": req.engine,
            "task_code": _task_code_hash(task),
            "data_dir": str(req.data_dir) if req.data_dir else None,
            "limit": req.limit,
            "max_model_len": req.settings.max_model_len,
            "max_gen_toks": req.settings.max_gen_toks,
            "lora_scoring": req.settings.lora_scoring if adapter_fp else None,
            "format": EVAL_FORMAT,
            "genmetrics": genmetrics.VERSION if task.kind == "generation" else None,
            "comet": comet.settings_key(comet.from_env()) if task.kind == "generation" else None,
        }
    )


def _task_code_hash(task: TaskInfo) -> str:
    """The task's YAML, its family's templates and utils, and the shared task modules."""
    folder = task.yaml_path.parent
    files = [task.yaml_path, *sorted(folder.glob("_*")), *sorted(folder.glob("*.py")), *sorted(tasks_dir().glob("*.py"))]
    return sha256_json([(f.name, f.read_text(encoding="utf-8")) for f in files if f.is_file()])


LORA_SCORING = ("merge", "serial")


def merged_model_dir(model_dir: Path, adapter: Path, adapter_fp: str) -> Path:
    """The base weights with the LoRA adapter merged in, built once per (model, adapter), as safetensors."""
    import shutil
    import tempfile

    target = cache_root() / "merged" / sha256_json([model_fingerprint(model_dir), adapter_fp])[:20]
    if (target / "config.json").exists():
        return target
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".merging.", dir=target.parent))
    try:
        base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, use_safetensors=True)
        merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
        merged.save_pretrained(tmp, safe_serialization=True)
        AutoTokenizer.from_pretrained(model_dir).save_pretrained(tmp)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _serving(req: EvalRequest, task: TaskInfo) -> str:
    """How the adapter reaches the engine for this task: lora, merged, or none (base model)."""
    if req.adapter is None:
        return "none"
    if req.engine == "vllm" and task.kind != "generation" and req.settings.lora_scoring == "merge":
        return "merged"
    return "lora"


def build_lm(req: EvalRequest, serving: str = "lora", adapter_fp: str | None = None) -> Any:
    """One lm-eval model object, reused across the tasks of the request that are served the same way."""
    check_engine(req.engine)
    if serving == "merged":
        merged = merged_model_dir(req.model_dir, req.adapter, adapter_fp or adapter_fingerprint(req.adapter))
        args = lm_eval_model_args(req.engine, merged, None, req.settings)
    else:
        args = lm_eval_model_args(req.engine, req.model_dir, req.adapter, req.settings)
    if req.engine == "vllm":
        prepare_vllm_env()
        # harness.scoring_vllm.SharedPrefixVLLM (context blocks reused) is not the default yet: in the
        # evaluate integration test some of its cache-read log-probability entries lacked their token
        # (caught and rescored), which is not understood yet.
        from lm_eval.models.vllm_causallms import VLLM

        return VLLM(**args, batch_size="auto")
    from harness.scoring import SharedContextHFLM  # lm-eval's HFLM, each multiple-choice context run once

    return SharedContextHFLM(**args, batch_size=req.hf_batch_size)


def _metric_values(task_result: dict) -> dict[str, float]:
    """lm-eval reports 'acc,none' and 'acc_stderr,none'; keep plain names and numbers."""
    values: dict[str, float] = {}
    for key, value in task_result.items():
        if "," not in key or not isinstance(value, (int, float)):
            continue
        name, _filter = key.split(",", 1)
        values[name] = float(value)
    return values


def _corpus_pair(sample: dict) -> tuple[str, str] | None:
    """lm-eval's corpus metrics log (reference, hypothesis, ...) per document: the scored hypothesis."""
    for name in sample.get("metrics", []):
        value = sample.get(name)
        if isinstance(value, (list, tuple)) and len(value) >= 2 and all(isinstance(v, str) for v in value[:2]):
            return value[0], value[1]
    return None


def _sample_rows(samples: list[dict], kind: str) -> list[dict]:
    """Per item: the scored output, plus continuous signals the regression check compares
    (reports/check.py): sentence chrF++ and a hash of the raw output for generation; the gold and
    the chosen choice's log-likelihood for multiple choice."""
    from sacrebleu.metrics import CHRF

    chrf = CHRF(word_order=2)  # chrF++, as the tasks' corpus metric
    rows = []
    for s in sorted(samples, key=lambda s: s["doc_id"]):
        numeric = {m: float(s[m]) for m in s.get("metrics", []) if isinstance(s.get(m), (int, float))}
        row: dict[str, Any] = {"doc_id": s["doc_id"], "doc_hash": s["doc_hash"], "target": s["target"], "metrics": numeric}
        resps = s.get("filtered_resps") or []
        if kind == "generation":
            raw = resps[0] if resps else ""
            raw = raw if isinstance(raw, str) else str(raw)
            pair = _corpus_pair(s)
            row["reference"], row["prediction"] = pair if pair else (str(s["target"]), raw)
            row["raw_output"] = raw
            row["chrf"] = round(float(chrf.sentence_score(row["prediction"], [row["reference"]]).score), 4)
            row["output_sha256"] = hashlib.sha256(raw.encode("utf-8")).hexdigest()
            doc = s.get("doc") or {}
            row.update({k: doc[k] for k in ("source", "instruction") if k in doc})  # for COMET and the judge
        else:
            # multiple choice: one (loglikelihood, is_greedy) per choice; the prediction is the argmax
            lls = [r[0] if isinstance(r, (list, tuple)) else r for r in resps]
            row["prediction"] = max(range(len(lls)), key=lls.__getitem__) if lls else None
            row["loglikelihoods"] = [round(float(x), 6) for x in lls]
            gold = int(s["target"]) if str(s["target"]).isdigit() else s["target"]
            row["gold_ll"] = row["loglikelihoods"][gold] if isinstance(gold, int) and 0 <= gold < len(lls) else None
            row["chosen_ll"] = row["loglikelihoods"][row["prediction"]] if lls else None
        rows.append(row)
    return rows


def _uses_chat_template(lm: Any, task: TaskInfo) -> bool:
    # Instruction-tuned models answer open generation in their chat format; multiple-choice
    # loglikelihoods are scored on the plain prompt, as lm-eval's reference numbers are.
    # A task can opt out (the few-shot FLORES variant, written for base models).
    tokenizer = getattr(lm, "tokenizer", None)
    wanted = task.metadata.get("chat_template", True) is not False
    return task.kind == "generation" and wanted and bool(getattr(tokenizer, "chat_template", None))


def _token_counter(lm: Any):
    tokenizer = getattr(lm, "tokenizer", None)
    if tokenizer is None:
        return None
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])


def evaluate(req: EvalRequest, progress: Any = None) -> dict[str, dict]:
    """Evaluate every task of `req`; returns {task: scores} for all of them, finished earlier or now."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    silence_git_probe()

    comet_settings = comet.from_env()
    if comet_settings is not None and any(t.kind == "generation" for t in req.tasks):
        comet.check_ready(comet_settings)  # before any model is loaded
    model_fp = model_fingerprint(req.model_dir)
    adapter_fp = adapter_fingerprint(req.adapter)
    results: dict[str, dict] = {}
    pending: list[tuple[TaskInfo, str]] = []
    for task in req.tasks:
        key = eval_key(req, task, model_fp, adapter_fp)
        scores_path = req.out_dir / task.name / "scores.json"
        if scores_path.exists() and read_json(scores_path).get("eval_key") == key:
            results[task.name] = read_json(scores_path)
        elif req.use_shared_cache and (cached := _from_shared_cache(key)) is not None:
            # The same model, adapter, task file, data and settings were evaluated by another run.
            scores, rows = cached
            _write_task(req.out_dir / task.name, {**scores, "variant": req.variant, "reused_from_cache": True}, rows)
            results[task.name] = read_json(scores_path)
        else:
            pending.append((task, key))
    if not pending:
        return results

    metadata = {"data_dir": str(req.data_dir)} if req.data_dir else {}
    manager = TaskManager(include_path=str(tasks_dir()), include_defaults=False, metadata=metadata)
    if req.settings.lora_scoring not in LORA_SCORING:
        raise unknown("LoRA scoring", req.settings.lora_scoring, LORA_SCORING)
    # Tasks served the same way run together, so each engine is built once.
    pending.sort(key=lambda item: _serving(req, item[0]) != "merged")
    lm, served = None, None
    progress_task = progress.add_task(f"eval {req.variant}", total=len(pending)) if progress else None
    for task, key in pending:
        if progress:
            progress.update(progress_task, description=f"eval {req.variant}: {task.name}")
        serving = _serving(req, task)
        if serving != served:
            lm = None
            gc.collect()
            lm, served = build_lm(req, serving, adapter_fp), serving
        if req.engine == "vllm" and serving == "lora":
            # vLLM issue 16668: LoRA + prompt logprobs breaks when one step holds several requests.
            lm.batch_size = 1 if task.kind != "generation" else "auto"
        chat = _uses_chat_template(lm, task)
        counted_before = dict(vars(lm.counts)) if hasattr(lm, "counts") else None
        started = time.perf_counter()
        out = simple_evaluate(
            model=lm,
            tasks=[task.name],
            task_manager=manager,
            limit=req.limit,
            log_samples=True,
            apply_chat_template=chat,
            gen_kwargs={"max_gen_toks": req.settings.max_gen_toks} if req.settings.max_gen_toks else None,
            bootstrap_iters=0,  # intervals come from our own bootstrap in reports/
            random_seed=req.settings.seed,
            numpy_random_seed=req.settings.seed,
            torch_random_seed=req.settings.seed,
            fewshot_random_seed=req.settings.seed,
        )
        wall = time.perf_counter() - started
        rows = _sample_rows(out["samples"][task.name], task.kind)
        metrics = _metric_values(out["results"][task.name])
        gen = genmetrics.GenSettings(genmetrics.task_max_gen_toks(task, req.settings.max_gen_toks),
                                     _token_counter(lm), comet_settings)
        genmetrics.enrich(task, rows, metrics, gen)
        scores = {
            "task": task.name,
            "family": task.family,
            "lang": task.lang,
            "kind": task.kind,
            "primary_metric": task.primary_metric,
            "metrics": metrics,
            "n_samples": len(rows),
            "signatures": _signatures(task),
            "metadata": task.metadata,
            "engine": req.engine,
            "model": str(req.model_dir),
            "adapter": str(req.adapter) if req.adapter else None,
            "adapter_sha256": adapter_fp,
            "adapter_served_as": None if serving == "none" else serving,
            "variant": req.variant,
            "chat_template": chat,
            "limit": req.limit,
            "wall_s": round(wall, 3),
            "eval_key": key,
        }
        if counted_before is not None and task.kind != "generation":
            # Tokens the model ran for this task's log-likelihoods, against one forward per (context, choice).
            scores["scoring_tokens"] = {k: v - counted_before[k] for k, v in vars(lm.counts).items()}
        _write_task(req.out_dir / task.name, scores, rows)
        _write_task(shared_cache_dir() / key, scores, rows)
        results[task.name] = scores
        if progress:
            progress.task_done(f"eval {req.variant}: {task.name}", len(rows), wall)
            progress.advance(progress_task)
    return {t.name: results[t.name] for t in req.tasks}


def shared_cache_dir() -> Path:
    """Finished task evaluations, shared between runs (base-model scores are the same for every trainer)."""
    return Path(os.environ.get("SDRRL_EVAL_CACHE", cache_root() / "evals"))


def _write_task(task_dir: Path, scores: dict, rows: list[dict]) -> None:
    write_jsonl(task_dir / "samples.jsonl", rows)
    write_json(task_dir / "scores.json", scores)  # written last: its presence marks the task done


def _from_shared_cache(key: str) -> tuple[dict, list[dict]] | None:
    entry = shared_cache_dir() / key
    if not (entry / "scores.json").exists():
        return None
    return read_json(entry / "scores.json"), read_jsonl(entry / "samples.jsonl")


def _signatures(task: TaskInfo) -> dict[str, str]:
    from tasks.metrics import sacrebleu_signatures

    return sacrebleu_signatures(task.metadata)
