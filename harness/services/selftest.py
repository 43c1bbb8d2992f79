"""`harness selftest`: every installed engine checked on this machine, timed, and the route table written.

For each engine (harness.engines: built-in and plugins) and each way it serves an adapter, on one
small model (the built-in one by default) and a small LoRA adapter built once and cached:

  stages   load -> score log-likelihoods -> generate greedily     (through lm-eval's model class,
           the path evaluation takes), per serving: base, merged, lora (those the engine declares)
  checks   the engine loads and generates text; the adapter is applied (it moves the log-likelihoods
           and changes the greedy outputs: lm-eval issue 2432 scored the base model silently);
           LoRA-served equals merged; every engine's log-likelihoods agree with the reference
           engine's (HF transformers, the design's cross-check) within LOGLIKELIHOOD_TOLERANCE
  timing   items/s per request type, engine and serving (best of two rounds after a warm-up round)
  result   per request type, the fastest engine that passed every check, with its fastest adapter
           serving, written to the user's cache (harness.engines.measured); `--engine auto` takes
           it from then on. A failed engine is listed there, and auto never routes to it.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.core.models import adapter_fingerprint, cache_root, merged_model_dir, model_fingerprint
from harness.core.runstore import atomic_dir
from harness.engines import EngineSettings, all_engines, engine_class, get_engine
from harness.engines.measured import MeasuredRoute, MeasuredRoutes, machine_id, write_routes
from harness.engines.routing import AUTO_ENGINE, hardware

# The log-likelihood agreement the engine tests hold (tests/test_eval_integration.py): per request,
# absolute, in nats. Also what "LoRA-served equals merged" allows.
LOGLIKELIHOOD_TOLERANCE = 1e-3
# An adapter that moves no log-likelihood by more than this was not applied (our default; the
# selftest adapter moves them by whole nats).
APPLIED_MIN_SHIFT = 1e-2
REFERENCE_ENGINE = "hf"
# Another engine replaces the design default only when it is this much faster (our default): a few
# seconds of timing on a shared machine are too noisy to overturn it on a small difference.
ROUTE_MARGIN = 1.25
ADAPTER_RANK = 8

# The workload, shaped as evaluation's requests: multiple choice (a passage shared by its choices, as
# Belebele's; and short prompts, as SIB-200's) and short greedy generations.
PASSAGE = (
    "The river town grew around a wooden bridge that merchants crossed on their way to the coast. Each spring "
    "the water rose and the bridge had to be repaired, so the town council hired carpenters who lived on the "
    "east bank. Over the years the carpenters formed a guild, trained apprentices and, when the old bridge "
    "finally collapsed in a flood, built a stone one in its place. The new bridge needed no yearly repairs, and "
    "many carpenters moved to the coast, where ships were built. The guild hall on the east bank is now a museum "
    "that shows their tools, the plans of both bridges and letters the apprentices wrote home."
)
CONTEXTS = (
    f"{PASSAGE}\nQuestion: Why did many carpenters leave the town?\nAnswer:",
    f"{PASSAGE}\nQuestion: What is the guild hall today?\nAnswer:",
    "Question: Which animal barks?\nAnswer:",
    "Translate to Czech: The cat sleeps.\nCzech:",
)
CHOICES = (" A", " B", " a dog", " kočka spí")
PROMPTS = (
    "Write one sentence about the sea.",
    "List three colours:",
    "Question: What is 2 + 3?\nAnswer:",
    "Once upon a time",
)
MAX_NEW_TOKENS = 16
TIMED_ROUNDS = 2


@dataclass
class Served:
    """What one engine produced with one adapter serving ("none": the base model)."""

    engine: str
    serving: str
    loglikelihoods: list[float] = field(default_factory=list)
    generations: list[str] = field(default_factory=list)
    items_per_s: dict[str, float] = field(default_factory=dict)  # request type -> items/s
    error: str | None = None

    @property
    def label(self) -> str:
        return self.engine if self.serving == "none" else f"{self.engine}+{self.serving}"


@dataclass
class Finding:
    engine: str
    text: str

    def line(self) -> str:
        return f"selftest: {self.engine}: {self.text}"


@dataclass
class SelftestResult:
    model: Path
    served: list[Served]
    findings: list[Finding]
    skipped: dict[str, str]  # engine -> why it was not tested (not installed)
    table: MeasuredRoutes
    routes_path: Path | None = None

    @property
    def passed(self) -> bool:
        return not self.findings


# --------------------------------------------------------------------------- the adapter


def selftest_adapter(model_dir: Path) -> Path:
    """A small random LoRA adapter for `model_dir`, built once and kept in the user's cache."""
    target = cache_root() / "selftest" / "adapters" / model_fingerprint(model_dir)[:20]
    if (target / "adapter_config.json").exists():
        return target
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, use_safetensors=True)
    # Non-zero B (init_lora_weights=False): the adapter moves every output from the start.
    lora = LoraConfig(r=ADAPTER_RANK, lora_alpha=2 * ADAPTER_RANK, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    with atomic_dir(target) as tmp:
        get_peft_model(model, lora).save_pretrained(tmp, safe_serialization=True)
    return target


# --------------------------------------------------------------------------- the stages


def _requests() -> tuple[list[Any], list[Any]]:
    from lm_eval.api.instance import Instance

    pairs = [(c, x) for c in CONTEXTS for x in CHOICES]
    ll = [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)]
    gen_kwargs = {"until": ["\n\n"], "max_gen_toks": MAX_NEW_TOKENS, "do_sample": False, "temperature": 0.0}
    gen = [Instance("generate_until", {}, (p, dict(gen_kwargs)), i) for i, p in enumerate(PROMPTS)]
    return ll, gen


def _timed(run, requests: list) -> tuple[list, float]:
    """The answers and the rate (items/s): the best of TIMED_ROUNDS after a warm-up round, so that lazy
    initialisation and a busy moment on a shared machine do not decide the route."""
    out = run(requests)
    best = float("inf")
    for _ in range(TIMED_ROUNDS):
        started = time.perf_counter()
        run(requests)
        best = min(best, time.perf_counter() - started)
    return out, len(requests) / max(best, 1e-9)


def serve(engine_name: str, serving: str, model_dir: Path, adapter: Path, settings: EngineSettings) -> Served:
    """Load `engine_name` with the adapter served as `serving`, score and generate; a failure is recorded, not raised."""
    served = Served(engine_name, serving)
    engine = get_engine(engine_name)
    lm = None
    try:
        if serving == "merged":
            args = engine.model_args(merged_model_dir(model_dir, adapter, adapter_fingerprint(adapter)), None, settings)
        else:
            args = engine.model_args(model_dir, adapter if serving == "lora" else None, settings)
        lm = engine.lm(args, 8)
        ll_requests, gen_requests = _requests()
        if "loglikelihood" in type(engine).request_types:
            engine.before_task(lm, serving, "multiple_choice")
            answers, served.items_per_s["loglikelihood"] = _timed(lm.loglikelihood, ll_requests)
            served.loglikelihoods = [float(a[0]) for a in answers]
        if "generation" in type(engine).request_types:
            engine.before_task(lm, serving, "generation")
            texts, served.items_per_s["generation"] = _timed(lm.generate_until, gen_requests)
            served.generations = [str(t) for t in texts]
    except Exception as exc:  # any failure is this engine's finding, the others still run
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        served.error = f"{type(exc).__name__}: {first}"
    finally:
        lm = None
        gc.collect()
    return served


# --------------------------------------------------------------------------- the checks


def _max_gap(a: list[float], b: list[float]) -> float:
    return max((abs(x - y) for x, y in zip(a, b)), default=0.0)


def check_engine(runs: dict[str, Served]) -> list[Finding]:
    """One engine's own checks: loads and generates; the adapter applied; LoRA-served equals merged."""
    findings: list[Finding] = []
    for served in runs.values():
        if served.error:
            findings.append(Finding(served.engine, f"{served.label} failed: {served.error}"))
        elif served.generations and not any(t.strip() for t in served.generations):
            findings.append(Finding(served.engine, f"{served.label} generated only empty text for {len(served.generations)} prompts"))
    base = runs.get("none")
    if base is None or base.error:
        return findings
    not_applied = set()
    for serving in ("merged", "lora"):
        with_adapter = runs.get(serving)
        if with_adapter is None or with_adapter.error:
            continue
        shift = _max_gap(with_adapter.loglikelihoods, base.loglikelihoods)
        unmoved = bool(with_adapter.loglikelihoods) and shift <= APPLIED_MIN_SHIFT
        same_text = bool(base.generations) and with_adapter.generations == base.generations
        if unmoved or same_text:
            not_applied.add(serving)
            what = ([f"log-likelihoods within {shift:.2g} of the base model's"] if unmoved else []) + \
                   (["greedy outputs identical to the base model's"] if same_text else [])
            findings.append(Finding(served.engine, f"{with_adapter.label}: the adapter was not applied ({'; '.join(what)})"))
    merged, lora = runs.get("merged"), runs.get("lora")
    if merged and lora and not merged.error and not lora.error and merged.loglikelihoods and not not_applied:
        gap = _max_gap(lora.loglikelihoods, merged.loglikelihoods)
        if gap > LOGLIKELIHOOD_TOLERANCE:
            findings.append(Finding(lora.engine, f"LoRA-served log-likelihoods differ from the merged copy's by {gap:.3g} "
                                                 f"(tolerance {LOGLIKELIHOOD_TOLERANCE:g})"))
    return findings


def check_agreement(by_engine: dict[str, dict[str, Served]], reference: str, found: list[Finding]) -> list[Finding]:
    """Every engine's log-likelihoods against the reference engine's, per serving both ran; a serving
    already `found` wanting is not compared again (one line per fault)."""
    findings = []
    ref_runs = by_engine.get(reference, {})
    flagged = [(f.engine, f.text) for f in found]
    for name, runs in by_engine.items():
        if name == reference:
            continue
        for serving, served in runs.items():
            ref = ref_runs.get(serving)
            if ref is None or ref.error or served.error or not ref.loglikelihoods or not served.loglikelihoods:
                continue
            if any(text.startswith(f"{s.label}:") for s in (served, ref) for engine, text in flagged if engine == s.engine):
                continue
            gap = _max_gap(served.loglikelihoods, ref.loglikelihoods)
            if gap > LOGLIKELIHOOD_TOLERANCE:
                findings.append(Finding(name, f"{served.label} log-likelihoods differ from {ref.label}'s by {gap:.3g} "
                                              f"(tolerance {LOGLIKELIHOOD_TOLERANCE:g})"))
    return findings


def fastest_routes(by_engine: dict[str, dict[str, Served]], failed: set[str], default: dict[str, str]) -> dict[str, MeasuredRoute]:
    """Per request type, the fastest engine that passed (base-model rate) and its fastest adapter serving;
    the design default (`default`: request type -> engine) unless another is faster by ROUTE_MARGIN."""
    routes: dict[str, MeasuredRoute] = {}
    for kind in ("loglikelihood", "generation"):
        rates = {name: runs["none"].items_per_s[kind] for name, runs in by_engine.items()
                 if name not in failed and "none" in runs and kind in runs["none"].items_per_s}
        if not rates:
            continue
        engine = max(rates, key=rates.__getitem__)
        if default.get(kind) in rates and rates[default[kind]] * ROUTE_MARGIN >= rates[engine]:
            engine = default[kind]
        servings = {s: r.items_per_s.get(kind, 0.0) for s, r in by_engine[engine].items() if s != "none"}
        serving = max(servings, key=servings.__getitem__) if servings else "merged"
        routes[kind] = MeasuredRoute(engine, serving, round(rates[engine], 3))
    return routes


# --------------------------------------------------------------------------- the workflow


def design_default() -> dict[str, str]:
    """Request type -> the engine --engine auto takes on this hardware before any selftest."""
    return {kind: engine for (where, kind), engine in AUTO_ENGINE.items() if where == hardware()}


def installed_engines(wanted: list[str] | None) -> tuple[list[str], dict[str, str]]:
    """The engines to test (all registered, or `wanted`) and those skipped with why (not installed)."""
    names = wanted or list(all_engines())
    skipped = {n: why for n in names if (why := engine_class(n).missing())}
    return [n for n in names if n not in skipped], skipped


def run_selftest(model_dir: Path, engines: list[str] | None = None, settings: EngineSettings | None = None,
                 on_served=None) -> SelftestResult:
    """Check, time and route every installed engine (or `engines`) on `model_dir`; writes the route table."""
    settings = settings or EngineSettings(max_model_len=512)
    names, skipped = installed_engines(engines)
    adapter = selftest_adapter(model_dir)
    by_engine: dict[str, dict[str, Served]] = {}
    for name in names:
        for serving in ("none", *engine_class(name).adapter_servings):
            served = serve(name, serving, model_dir, adapter, settings)
            by_engine.setdefault(name, {})[serving] = served
            if on_served:
                on_served(served)
    findings = [f for runs in by_engine.values() for f in check_engine(runs)]
    reference = REFERENCE_ENGINE if REFERENCE_ENGINE in by_engine else next(iter(by_engine), REFERENCE_ENGINE)
    findings += check_agreement(by_engine, reference, findings)
    failed = {f.engine for f in findings}
    table = MeasuredRoutes(machine=machine_id(), model=model_dir.name,
                           measured_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                           routes=fastest_routes(by_engine, failed, design_default()), failed=tuple(sorted(failed)))
    result = SelftestResult(model_dir, [s for runs in by_engine.values() for s in runs.values()], findings, skipped, table)
    if by_engine:
        result.routes_path = write_routes(table)
    return result
