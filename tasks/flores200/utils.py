"""FLORES-200 devtest translation: data loading (source and target joined by id) and scoring.

Records as in openlanguagedata/flores_plus (one config per language, split devtest): id,
iso_639_3, iso_15924, glottocode, text, url, domain, topic, has_image, has_hyperlink, last_updated.
The task's docs are {id, source, target, ...} pairs; BLEU and chrF++ are corpus-level: each doc
yields (reference, hypothesis, settings) and the aggregation functions score the whole corpus.
The sacreBLEU settings come from the task metadata (`sacrebleu:`) and travel inside the docs,
so the scores follow the same settings that harness.evaluation.metrics.sacrebleu_signatures reports.

The hypothesis scored is what harness.evaluation.hygiene.extract_translation takes from the raw output (the
first line that is not a chat preamble, without a "<target language>:" label or wrapping quotes):
one rule for every system. The few-shot variant (family flores200_fewshot) also loads the `dev`
split, the only source of its examples; devtest sentences are never shown as examples.
"""

from __future__ import annotations

from pathlib import Path

from harness.core.errors import HarnessError, shown
from harness.evaluation.hygiene import extract_translation
from harness.evaluation import metrics
from harness.core.langs import by_flores
from tasks import dataio

TASKS_ROOT = Path(__file__).resolve().parent.parent  # relative suite data dirs start here
SPLIT = "devtest"
FEWSHOT_SPLIT = "dev"
REQUIRED_FIELDS = ("id", "text")


def load(
    *,
    family: str,
    source_config: str,
    target_config: str,
    dataset: str | None = None,
    sacrebleu: dict | None = None,
    data_dir=None,
    suite_data_dir=None,
    fewshot_split: str | None = None,
    **_,
):
    """custom_dataset: lm-eval calls it with the task metadata and dataset_kwargs as keywords."""
    splits = {SPLIT: _docs(SPLIT, family, source_config, target_config, dataset, sacrebleu, data_dir, suite_data_dir)}
    if fewshot_split:
        if fewshot_split == SPLIT:
            raise HarnessError(f"few-shot examples must not come from the evaluated split {SPLIT!r}; use {FEWSHOT_SPLIT!r}")
        splits[fewshot_split] = _docs(fewshot_split, family, source_config, target_config, dataset, sacrebleu,
                                      data_dir, suite_data_dir)
    return dataio.to_dataset_dict(splits)


def _data_family(family: str) -> str:
    # Local data of the few-shot variant lives beside the zero-shot one: <data_dir>/flores200/...
    return "flores200" if family.startswith("flores200") else family


def data_files(root: Path, metadata: dict) -> list[Path]:
    """The local files `load` reads for a task with this metadata (the evaluation cache hashes them)."""
    splits = [SPLIT] + ([metadata["fewshot_split"]] if metadata.get("fewshot_split") else [])
    family = _data_family(metadata["family"])
    return [dataio.split_path(root, family, metadata[side], split)
            for split in splits for side in ("source_config", "target_config")]


def _docs(split, family, source_config, target_config, dataset, sacrebleu, data_dir, suite_data_dir) -> list[dict]:
    kw = dict(family=_data_family(family), split=split, dataset=dataset,
              required=REQUIRED_FIELDS, data_dir=data_dir, suite_data_dir=suite_data_dir, tasks_root=TASKS_ROOT)
    src, src_where = dataio.read_split(config=source_config, **kw)
    tgt, tgt_where = dataio.read_split(config=target_config, **kw)
    _by_id(src, src_where)
    by_id = _by_id(tgt, tgt_where)
    missing = [r["id"] for r in src if r["id"] not in by_id]
    kinds = {type(r["id"]).__name__ for r in src[:1]}, {type(r["id"]).__name__ for r in tgt[:1]}
    if missing and kinds[0] != kinds[1]:  # 1 and "1" are two ids
        words = {"int": "numbers", "str": "strings"}
        raise HarnessError(f"sentence ids of {src_where} are {words.get(*kinds[0], *kinds[0])} (e.g. {shown(src[0]['id'])}) but those of "
                           f"{tgt_where} are {words.get(*kinds[1], *kinds[1])} (e.g. {shown(tgt[0]['id'])}); give both files the same ids")
    if missing:
        listed = ", ".join(str(i) for i in missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise HarnessError(f"{len(missing)} sentence id(s) of {src_where} are missing from {tgt_where}: {listed}")
    bleu = (sacrebleu or {}).get("bleu", {})
    chrf = (sacrebleu or {}).get("chrf", {})
    return [
        {
            "id": r["id"],
            "source": r["text"],
            "target": by_id[r["id"]]["text"],
            "source_config": source_config,
            "target_config": target_config,
            "bleu_tokenize": bleu.get("tokenize", "flores200"),
            "bleu_fallback_tokenize": bleu.get("fallback_tokenize") or "",
            "chrf_char_order": int(chrf.get("char_order", 6)),
            "chrf_word_order": int(chrf.get("word_order", 2)),
        }
        for r in src
    ]


def _by_id(records: list[dict], where: str) -> dict:
    """Records by sentence id; an id given twice is refused: en->xx would take the later row as the
    reference, xx->en would score the sentence twice."""
    by_id: dict = {}
    for n, r in enumerate(records, 1):
        if r["id"] in by_id:
            raise HarnessError(f"{where}: sentence id {shown(r['id'])} is given twice (records {by_id[r['id']][0]} and {n}); "
                               "give each sentence once")
        by_id[r["id"]] = (n, r)
    return {key: r for key, (_, r) in by_id.items()}


def process_results(doc: dict, results: list) -> dict:
    target = by_flores(doc["target_config"])
    hyp = extract_translation(results[0], (target.name,) if target else ()) if results else ""
    ref = doc["target"]
    return {
        "bleu": (ref, hyp, doc["bleu_tokenize"], doc["bleu_fallback_tokenize"]),
        "chrf": (ref, hyp, doc["chrf_char_order"], doc["chrf_word_order"]),
    }


def _settings(items: list, name: str) -> tuple:
    settings = {tuple(item[2:]) for item in items}
    if len(settings) != 1:
        raise HarnessError(f"{name}: documents disagree on sacreBLEU settings: {sorted(settings)}")
    return settings.pop()


def agg_bleu(items: list) -> float:
    tokenize, fallback = _settings(items, "bleu")
    return metrics.corpus_bleu([i[0] for i in items], [i[1] for i in items], tokenize=tokenize, fallback=fallback or None)


def agg_chrf(items: list) -> float:
    char_order, word_order = _settings(items, "chrf")
    return metrics.corpus_chrf([i[0] for i in items], [i[1] for i in items], char_order=int(char_order), word_order=int(word_order))
