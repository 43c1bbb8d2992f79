"""The figures of one finished `harness run`: wall time per stage (manifest.json) and items per second per
variant and request type (each lm-eval call's wall time, eval/<variant>/<task>/scores.json), beside the
issue-24 targets for an H200. Used by benchmarks/gpu_e2e.sh; runs anywhere on a run folder.

    python benchmarks/e2e_figures.py runs/gpu --e2e-seconds 85 --json out/e2e.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emit import emit  # noqa: E402

# Issue 24's targets on one H200 (README command 1 with --engine hf); printed beside the figures, never judged.
TARGET_GENERATION_ITEMS_PER_S = 20.0
TARGET_E2E_S = 90.0


def stage_seconds(run_dir: Path) -> dict[str, float]:
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    return {stage: entry["wall_s"] for stage, entry in manifest["stages"].items()}


def items_per_second(run_dir: Path) -> dict[str, dict[str, dict]]:
    """{variant: {request type: {items, seconds, items_per_s, engines}}}; a call scoring several tasks counts once."""
    out: dict[str, dict[str, dict]] = {}
    for variant_dir in sorted((run_dir / "eval").iterdir()) if (run_dir / "eval").is_dir() else []:
        calls: dict[tuple, float] = {}
        per_kind: dict[str, dict] = {}
        for scores_path in sorted(variant_dir.glob("*/scores.json")):
            scores = json.loads(scores_path.read_text(encoding="utf-8"))
            kind = scores.get("kind", "?")
            entry = per_kind.setdefault(kind, {"items": 0, "seconds": 0.0, "engines": set()})
            entry["items"] += int(scores.get("n_samples", 0))
            entry["engines"].add(scores.get("engine", "?"))
            call = scores.get("engine_call")
            if call:  # the call's whole time, once, however many tasks it scored
                calls.setdefault((kind, tuple(call["tasks"])), float(call["wall_s"]))
            else:
                entry["seconds"] += float(scores.get("wall_s", 0.0))
        for (kind, _), seconds in calls.items():
            per_kind[kind]["seconds"] += seconds
        out[variant_dir.name] = {
            kind: {"items": e["items"], "seconds": round(e["seconds"], 2), "engines": sorted(e["engines"]),
                   "items_per_s": round(e["items"] / e["seconds"], 2) if e["seconds"] > 0 else None}
            for kind, e in sorted(per_kind.items())
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--e2e-seconds", type=float, help="the whole command's wall time, timed by the caller")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rates = items_per_second(args.run_dir)
    generation = [v["generation"]["items_per_s"] for v in rates.values() if v.get("generation", {}).get("items_per_s")]
    emit({
        "run": str(args.run_dir), "stages_s": stage_seconds(args.run_dir), "e2e_s": args.e2e_seconds,
        "items_per_s": rates,
        "targets": {"generation_items_per_s_per_variant": TARGET_GENERATION_ITEMS_PER_S, "e2e_s": TARGET_E2E_S,
                    "slowest_generation_variant_items_per_s": min(generation) if generation else None},
    }, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
