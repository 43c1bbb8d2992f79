"""What a run needs from outside the repository, derived from the suite's task files and the
trainer's config: task data splits, instructions, parallel pairs, lexicons, models, the
SentencePiece model. `harness fetch` downloads these; `harness doctor` checks them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.hub import is_hub_id
from harness.evaluation.registry import Suite, read_yaml
from harness.trainer_api import settings_of

SPLIT_KEYS = ("training_split", "validation_split", "test_split", "fewshot_split")


@dataclass(frozen=True)
class SplitNeed:
    family: str
    config: str  # FLORES-200 code: the hub config and the mirror folder
    split: str
    dataset: str | None  # hub id from the task metadata

    @property
    def relative(self) -> Path:
        return Path(self.family) / self.config / f"{self.split}.jsonl"


@dataclass
class TrainerNeeds:
    instructions: str | None = None  # hub id, when the instructions come from the hub
    parallel: str | None = None  # hub id of the parallel corpus
    parallel_per_lang: int = 0
    lexicon_pairs: list[tuple[str, str]] = field(default_factory=list)  # (src, tgt) code-switching needs
    translator: str | None = None  # nllb | llm | lexicon | file
    translator_model: str | None = None  # hub id of an NLLB model
    target_langs: list[str] = field(default_factory=list)


def split_needs(suite: Suite) -> list[SplitNeed]:
    """Every (family, config, split) the suite's tasks read, in suite order, without repeats."""
    needs: dict[SplitNeed, None] = {}
    for task in suite.tasks:
        meta = task.metadata
        if "config" not in meta:
            continue  # a plain lm-eval task: its YAML names its own data, read when it is evaluated
        cfg = read_yaml(task.yaml_path)
        configs = [meta.get("source_config"), meta.get("target_config")] if meta.get("source_config") else [meta["config"]]
        splits = sorted({str(cfg[k]) for k in SPLIT_KEYS if cfg.get(k)})
        for config in configs:
            for split in splits:
                needs[SplitNeed(task.family, str(config), split, meta.get("dataset"))] = None
    return list(needs)


def spm_tokenizers(suite: Suite) -> set[str]:
    """sacreBLEU tokenizers the suite's BLEU uses that need a SentencePiece model file."""
    from harness.evaluation.metrics import needs_model_file

    names = {str(((t.metadata.get("sacrebleu") or {}).get("bleu") or {}).get("tokenize", "")) for t in suite.tasks}
    return {n for n in names if n and needs_model_file(n)}


def trainer_needs(config: Any, langs: list[str], trains: bool) -> TrainerNeeds:
    """What the trainer's config reads from outside (settings it lacks count as not needed)."""
    if not trains or config is None:
        return TrainerNeeds()
    get = settings_of(config).get
    source = str(get("source_lang", "en") or "en")
    targets = [code for code in langs if code != source]
    needs = TrainerNeeds(target_langs=targets, translator=get("translator"))
    if is_hub_id(get("instructions")):
        needs.instructions = get("instructions")
    if int(get("parallel_per_lang", 0) or 0) > 0 and is_hub_id(get("parallel_data")):
        needs.parallel, needs.parallel_per_lang = get("parallel_data"), int(get("parallel_per_lang"))
    if int(get("code_switch_variants", 0) or 0) > 0:
        needs.lexicon_pairs = [(source, code) for code in targets if code != source]
    if needs.translator in ("nllb", "nllb-ct2"):
        from trainers.translators import DEFAULT_NLLB_MODEL

        model = get("translator_model") or DEFAULT_NLLB_MODEL
        needs.translator_model = model if is_hub_id(model) else None
    return needs
