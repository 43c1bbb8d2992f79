"""Estimated GPU hours of a full paper15 SDRRL comparison, LLaMA-2-7B on one H100.

    python benchmarks/cost_model.py            # the table in README "Cost model"
    python benchmarks/cost_model.py --json

Inputs are named below: our defaults for the data sizes, public hardware figures, assumed
utilisations and decode rates, and two GPU measurements (training and NLLB translation throughput, benchmarks/RESULTS.md
"On a GPU"). Scoring takes FLOPs / (peak x utilisation) with 2N FLOPs per token; training takes
the measured tokens per second; generation an assumed decode rate.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass


@dataclass
class Assumptions:
    params: float = 6.74e9  # LLaMA-2-7B
    peak_flops: float = 989e12  # H100 SXM, dense bf16
    util_prefill: float = 0.40  # assumed model-FLOPs utilisation when scoring/prefilling
    # Measured: LoRA r=16 on a randomly initialised LLaMA-2-7B-shaped model, bf16, 512-token records, micro-batch 8,
    # no gradient checkpointing (44 GB peak), one H200 (benchmarks/gpu_suite.py). An H100 has the same peak
    # compute and less memory bandwidth: expect this rate or a little less there.
    train_tokens_per_s: float = 10927.0
    decode_tokens_per_s: float = 5000.0  # assumed vLLM offline decode rate, 7B, many sequences at once
    lora_decode_slowdown: float = 1.5  # assumed cost of serving a LoRA adapter in generation
    # Measured: NLLB-200-600M shape, fp16, HF generate at our translator's GPU defaults (batch 64, 4 beams), one H200.
    nllb_tokens_per_s: float = 5536.0
    instructions: int = 5000  # our default num_instructions
    languages: int = 14  # paper15 without English
    question_tokens: int = 100  # assumed mean English instruction length
    answer_tokens: int = 250  # assumed mean self-distilled answer length (cap: answer_max_new_tokens 512)
    sentences_per_text: float = 6.0  # assumed: a question ~1 sentence, an answer ~5
    tokens_per_sentence: float = 30.0  # assumed NLLB output tokens per sentence
    record_tokens: float = 450.0  # assumed mean tokens per training record (template + Q + A, non-Latin scripts longer)
    epochs: int = 3  # our default
    parallel_per_lang: int = 200  # our default
    belebele_items: int = 900
    belebele_tokens: int = 550  # assumed passage + question + options
    sib_items: int = 204
    sib_tokens: int = 120
    flores_sentences: int = 1012
    flores_out_tokens: int = 45
    trainers: int = 3  # sdrrl, translate_sft, english_sft


def estimate(a: Assumptions) -> dict[str, float]:
    hours = {}
    hours["self-distillation (7B generates English answers)"] = a.instructions * a.answer_tokens / a.decode_tokens_per_s / 3600
    sentences = a.instructions * a.sentences_per_text * a.languages
    hours["translation (NLLB-600M, Q and A into 14 languages)"] = sentences * a.tokens_per_sentence / a.nllb_tokens_per_s / 3600
    # SDRRL records per instruction: English + per language (translated, code-switched).
    records = a.instructions * (1 + 2 * a.languages) + a.parallel_per_lang * a.languages
    hours["training, one trainer (sdrrl-sized data)"] = records * a.record_tokens * a.epochs / a.train_tokens_per_s / 3600
    langs = a.languages + 1
    score_tokens = langs * (a.belebele_items * a.belebele_tokens + a.sib_items * a.sib_tokens)
    scoring = 2 * a.params * score_tokens / (a.peak_flops * a.util_prefill) / 3600
    generation = 2 * a.languages * a.flores_sentences * a.flores_out_tokens / a.decode_tokens_per_s / 3600
    hours["evaluation, base model"] = scoring + generation
    hours["evaluation, one adapter"] = scoring + generation * a.lora_decode_slowdown
    hours["total: 3 trainers, same-sized training each"] = (
        hours["self-distillation (7B generates English answers)"]
        + hours["translation (NLLB-600M, Q and A into 14 languages)"]
        + a.trainers * hours["training, one trainer (sdrrl-sized data)"]
        + hours["evaluation, base model"]
        + a.trainers * hours["evaluation, one adapter"]
    )
    return hours


def member_jobs(hours: dict[str, float], trainers: int, seeds: int, measured_budget: bool) -> list[tuple[str, float, tuple[str, ...]]]:
    """The plan's jobs (harness/app/plan.py) with their hours and dependencies: the base evaluation, then per
    seed the budget member (it also builds the self-distilled and translated data) and the other trainers,
    which wait for it when their budget is measured from it (no --steps / tokens_per_step given)."""
    data = hours["self-distillation (7B generates English answers)"] + hours["translation (NLLB-600M, Q and A into 14 languages)"]
    member = hours["training, one trainer (sdrrl-sized data)"] + hours["evaluation, one adapter"]
    jobs = [("base", hours["evaluation, base model"], ())]
    for seed in range(seeds):
        budget = f"t0-s{seed}"
        jobs.append((budget, data + member, ("base",)))
        jobs += [(f"t{t}-s{seed}", member, ("base", budget) if measured_budget else ("base",)) for t in range(1, trainers)]
    return jobs


def wall_clock(jobs: list[tuple[str, float, tuple[str, ...]]], gpus: int) -> float:
    """Hours until the last job ends with `gpus` one-GPU member jobs at once: whenever a GPU is free,
    the first job of the plan whose dependencies are done starts (what --parallel N does; a Slurm
    queue with N GPUs does about the same)."""
    now, running, end = 0.0, [], {}  # running: (end time, name)
    left = list(jobs)
    while left or running:
        for name, h, after in list(left):
            if len(running) < gpus and all(d in end and end[d] <= now for d in after):
                running.append((now + h, name))
                left.remove((name, h, after))
        running.sort()
        now, name = running.pop(0)
        end[name] = now
    return max(end.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per trainer, for the wall-clock table (default 1)")
    args = parser.parse_args(argv)
    a = Assumptions()
    hours = estimate(a)
    gpu_counts = (1, 2, 3, 4, 8)
    walls = {measured: {n: wall_clock(member_jobs(hours, a.trainers, args.seeds, measured), n) for n in gpu_counts}
             for measured in (True, False)}
    if args.json:
        print(json.dumps({"assumptions": asdict(a), "hours": hours, "seeds": args.seeds,
                          "wall_clock_hours": {"budget_measured": walls[True], "budget_given": walls[False]}}, indent=2))
        return 0
    print("| stage | hours (estimate) |\n|---|---:|")
    for stage, h in hours.items():
        print(f"| {stage} | {h:.2f} |")
    gpu_hours = sum(h for _, h, _ in member_jobs(hours, a.trainers, args.seeds, True))
    print(f"\nWall-clock hours, {a.trainers} trainers x {args.seeds} seed(s) ({gpu_hours:.1f} GPU-hours), one GPU per member job:\n")
    print("| GPUs | " + " | ".join(map(str, gpu_counts)) + " |\n|---|" + "---:|" * len(gpu_counts))
    print("| budget measured by the first trainer (default) | " + " | ".join(f"{walls[True][n]:.1f}" for n in gpu_counts) + " |")
    print("| `--steps N --set tokens_per_step=T` given | " + " | ".join(f"{walls[False][n]:.1f}" for n in gpu_counts) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
