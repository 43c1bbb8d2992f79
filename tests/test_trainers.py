"""Trainers' data: transfer-set construction, code-switching, translators and their cache, errors."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.engines import Generation
from harness.core.errors import HarnessError
from harness.core.langs import LANGUAGES
from harness.trainer_api import TrainContext, build_config, load_trainers, setting_names, settings_of
from trainers.codeswitch import code_switch, load_lexicon, translatable_words
from trainers.config import ParallelConfig, TrainConfig
from trainers.instructions import load_instructions
from trainers.parallel import load_parallel
from trainers.sdrrl import SDRRLConfig, SDRRLTrainer
from trainers.translate_sft import TranslateSFTConfig
from trainers.translators import CachedTranslator, FileTranslator, LexiconTranslator, Translator, make_translator

try:  # tests/ as a plain folder on sys.path (pytest's default) or as a package
    from tiny_model import build_tiny_llama
except ImportError:
    from tests.tiny_model import build_tiny_llama

EN, CS, JA, DA = (LANGUAGES[c] for c in ("en", "cs", "ja", "da"))

SMOKE = {
    "instructions": "builtin:alpaca-smoke",
    "num_instructions": "6",
    "translator": "lexicon",
    "parallel_data": "builtin:opus-smoke",
    "parallel_per_lang": "3",
    "code_switch_variants": "2",
    "code_switch_ratio": "0.5",
    "answer_max_new_tokens": "12",
    "keep_truncated_answers": "true",  # the tiny random model never ends its turn
    "keep_wrong_language_answers": "true",  # nor speaks a language
}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "model")


def _ctx(model_dir: Path, work: Path, langs=(CS, JA)) -> TrainContext:
    return TrainContext(model_dir=model_dir, languages=[EN, *langs], work_dir=work, engine="hf", seed=3)


# --- the SDRRL transfer set -----------------------------------------------------------------


@pytest.fixture(scope="module")
def sdrrl_run(tiny_model, tmp_path_factory):
    work = tmp_path_factory.mktemp("work")
    trainer = SDRRLTrainer(build_config(SDRRLTrainer, SMOKE))
    records = trainer.build_dataset(_ctx(tiny_model, work))
    return trainer, records, work


def test_sdrrl_pair_types_per_language(sdrrl_run):
    _, records, _ = sdrrl_run
    kinds = {(r["kind"], r["lang"]) for r in records}
    assert ("en_self", "en") in kinds
    for lang in ("cs", "ja"):
        assert {("mt", lang), ("code_switch", lang)} <= kinds
        assert any(k.startswith("parallel_") and l == lang for k, l in kinds)
    for r in records:
        assert set(r) == {"id", "group", "kind", "lang", "messages"}
        assert [m["role"] for m in r["messages"]] == ["user", "assistant"]
    assert len({r["id"] for r in records}) == len(records)


def test_sdrrl_variants_share_their_source_group(sdrrl_run):
    _, records, _ = sdrrl_run
    by_group: dict[str, list[dict]] = {}
    for r in records:
        by_group.setdefault(r["group"], []).append(r)
    source_groups = [g for g, rs in by_group.items() if not rs[0]["kind"].startswith("parallel")]
    assert len(source_groups) == 6
    for g in source_groups:
        rs = by_group[g]
        assert {r["kind"] for r in rs} >= {"en_self", "mt"}
        english = next(r for r in rs if r["kind"] == "en_self")
        mt_cs = next(r for r in rs if r["kind"] == "mt" and r["lang"] == "cs")
        # the translated pair is the lexicon translation of the English self-distilled pair
        lex = LexiconTranslator()
        assert mt_cs["messages"][0]["content"] == lex.translate([english["messages"][0]["content"]], EN, CS)[0]
        assert mt_cs["messages"][1]["content"] == lex.translate([english["messages"][1]["content"]], EN, CS)[0]
    parallel_groups = [g for g, rs in by_group.items() if rs[0]["kind"].startswith("parallel")]
    assert all(len(by_group[g]) == 1 for g in parallel_groups)


def test_sdrrl_parallel_pairs_per_language(sdrrl_run):
    _, records, _ = sdrrl_run
    for lang in ("cs", "ja"):
        pairs = [r for r in records if r["kind"].startswith("parallel") and r["lang"] == lang]
        assert len(pairs) == 3
        # the default: partial translation and completion, 2:1 of 3 pairs by largest remainder
        assert sorted(r["kind"] for r in pairs) in (
            ["parallel_completion", "parallel_partial", "parallel_partial"],
            ["parallel_completion", "parallel_completion", "parallel_partial"],
        )
        assert not any(r["messages"][0]["content"].startswith("Translate the following") for r in pairs)


def test_sdrrl_code_switch_ratio_is_honoured(sdrrl_run):
    _, records, work = sdrrl_run
    stats = json.loads((work / "sdrrl_stats.json").read_text())
    for lang in ("cs", "ja"):
        assert stats["code_switch_ratio_achieved"][lang] == pytest.approx(0.5, abs=0.12)
        n = sum(1 for r in records if r["kind"] == "code_switch" and r["lang"] == lang)
        assert 6 <= n <= 6 * 2  # 2 variants per example; one is skipped only when nothing could be switched


def test_sdrrl_rerun_uses_caches(sdrrl_run, tiny_model, monkeypatch):
    trainer, records, work = sdrrl_run

    def boom(*args, **kwargs):
        raise AssertionError("regenerated although cached")

    monkeypatch.setattr("harness.engines.generate_chat", boom)
    monkeypatch.setattr(LexiconTranslator, "_translate", boom)
    again = trainer.build_dataset(_ctx(tiny_model, work))
    assert again == records  # same seed: identical, nothing generated or translated twice
    assert (work / "self_answers.jsonl").is_file() and (work / "translations.jsonl").is_file()


def _fake_generate(truncated_every: int):
    def fake(model_dir, conversations, max_new_tokens, engine="vllm", settings=None, on_batch=None):
        return [Generation(f"Answer {i} about {c[0]['content'][:10]}", i % truncated_every == 0) for i, c in enumerate(conversations)]

    return fake


def test_sdrrl_drops_truncated_self_answers_and_counts_them(tmp_path, monkeypatch):
    monkeypatch.setattr("harness.engines.generate_chat", _fake_generate(truncated_every=3))
    settings = {**SMOKE, "keep_truncated_answers": "false", "parallel_per_lang": "0", "code_switch_variants": "0"}
    trainer = SDRRLTrainer(build_config(SDRRLTrainer, settings))
    records = trainer.build_dataset(_ctx(Path("/no-model"), tmp_path))
    stats = trainer.data_stats
    assert stats["truncated_answers"] == 2 and stats["dropped_truncated_answers"] == 2  # answers 0 and 3 of 6
    assert len([r for r in records if r["kind"] == "en_self"]) == 4
    assert not any(r["messages"][1]["content"].startswith(("Answer 0 ", "Answer 3 ")) for r in records)
    kept = SDRRLTrainer(build_config(SDRRLTrainer, {**settings, "keep_truncated_answers": "true"}))
    assert len([r for r in kept.build_dataset(_ctx(Path("/no-model"), tmp_path)) if r["kind"] == "en_self"]) == 6
    assert kept.data_stats["truncated_answers"] == 2 and kept.data_stats["dropped_truncated_answers"] == 0


def test_sdrrl_drops_self_answers_not_in_the_source_language_and_counts_them(tmp_path, monkeypatch):
    answers = ["The museum opens at nine in the morning and closes at five in the evening.",
               "Le musée ouvre à neuf heures du matin et ferme à cinq heures du soir.",  # French, for an English source
               "Yes.",  # too short to tell: kept
               "Water the plant once a week and give it plenty of light every day.",
               "Das Museum öffnet um neun Uhr morgens und schließt um fünf Uhr abends.",
               "Preheat the oven, mix the flour with the eggs and bake the cake for forty minutes."]

    def fake(model_dir, conversations, max_new_tokens, engine="vllm", settings=None, on_batch=None):
        return [Generation(answers[i], False) for i in range(len(conversations))]

    monkeypatch.setattr("harness.engines.generate_chat", fake)
    settings = {**SMOKE, "keep_wrong_language_answers": "false", "parallel_per_lang": "0", "code_switch_variants": "0"}
    trainer = SDRRLTrainer(build_config(SDRRLTrainer, settings))
    records = trainer.build_dataset(_ctx(Path("/no-model"), tmp_path / "a"))
    assert trainer.data_stats["dropped_wrong_language_answers"] == 2
    kept = {r["messages"][1]["content"] for r in records if r["kind"] == "en_self"}
    assert kept == {answers[i] for i in (0, 2, 3, 5)}
    keep = SDRRLTrainer(build_config(SDRRLTrainer, {**settings, "keep_wrong_language_answers": "true"}))
    assert len([r for r in keep.build_dataset(_ctx(Path("/no-model"), tmp_path / "b")) if r["kind"] == "en_self"]) == 6
    assert keep.data_stats["dropped_wrong_language_answers"] == 0


def test_sdrrl_reference_answer_ablation_uses_the_data_sets_answers(tmp_path, monkeypatch):
    def no_generation(*a, **k):
        raise AssertionError("the reference-answer ablation must not self-distil")

    monkeypatch.setattr("harness.engines.generate_chat", no_generation)
    settings = {**SMOKE, "answer_source": "reference", "parallel_per_lang": "0", "code_switch_variants": "0"}
    trainer = SDRRLTrainer(build_config(SDRRLTrainer, settings))
    records = trainer.build_dataset(_ctx(Path("/no-model"), tmp_path))
    references = {ex["id"]: ex["output"] for ex in load_instructions("builtin:alpaca-smoke", 6, seed=3)}
    source = [r for r in records if r["lang"] == "en"]
    assert {r["kind"] for r in source} == {"en_reference"} and len(source) == 6
    assert all(r["messages"][1]["content"] == references[r["group"]] for r in source)


def test_sdrrl_ablation_settings_produce_the_records_they_should(tmp_path, monkeypatch):
    monkeypatch.setattr("harness.engines.generate_chat", _fake_generate(truncated_every=10**9))

    def kinds(**overrides):
        trainer = SDRRLTrainer(build_config(SDRRLTrainer, {**SMOKE, **{k: str(v) for k, v in overrides.items()}}))
        return {r["kind"] for r in trainer.build_dataset(_ctx(Path("/no-model"), tmp_path))}, trainer.config

    full, _ = kinds()
    assert {"en_self", "mt", "code_switch", "parallel_partial", "parallel_completion"} <= full
    no_cs, _ = kinds(code_switch_variants=0)
    assert "code_switch" not in no_cs and "mt" in no_cs
    no_parallel, _ = kinds(parallel_per_lang=0)
    assert not any(k.startswith("parallel") for k in no_parallel)
    translation_only, _ = kinds(parallel_formats="translation:1")
    assert {k for k in translation_only if k.startswith("parallel")} == {"parallel_translation"}
    _, config = kinds(same_batch="false")
    assert config.train.same_batch is False  # the grouping ablation acts in the sampler (tests/test_lora.py)


def test_parallel_formats_build_the_records_they_should():
    from trainers.parallel import parallel_records

    pairs = [("The cat sleeps on the warm sofa today.", "Kočka dnes spí na teplé pohovce.")] * 4
    cfg = build_config(SDRRLTrainer, {"parallel_formats": "translation:1,partial:1,completion:2"})
    records = parallel_records(pairs, EN, CS, cfg.parallel, seed=0)
    by_kind = {}
    for r in records:
        by_kind.setdefault(r["kind"], []).append(r)
    assert {k: len(v) for k, v in by_kind.items()} == {"parallel_translation": 1, "parallel_partial": 1, "parallel_completion": 2}
    full = by_kind["parallel_translation"][0]["messages"]
    assert pairs[0][0] in full[0]["content"] and full[1]["content"] == pairs[0][1]
    partial = by_kind["parallel_partial"][0]["messages"]
    prefix = partial[0]["content"].split("Started translation: ")[1].split("\n")[0]
    assert pairs[0][0] in partial[0]["content"] and f"{prefix} {partial[1]['content']}" == pairs[0][1]
    for r in by_kind["parallel_completion"]:
        prompt, rest = r["messages"][0]["content"], r["messages"][1]["content"]
        assert pairs[0][0] not in prompt  # target language only
        assert f"{prompt.splitlines()[-1]} {rest}" == pairs[0][1]
    flores_prompt = "Translate the following sentence from English to Czech."
    assert not any(flores_prompt.split(" from")[0] in r["messages"][0]["content"] for r in records)
    with pytest.raises(HarnessError, match="unknown parallel format 'sentence'"):
        parallel_records(pairs, EN, CS, ParallelConfig(parallel_formats="sentence:1"), seed=0)


def test_sdrrl_refuses_flores_and_missing_lexicon(tiny_model, tmp_path):
    with pytest.raises(HarnessError, match="FLORES"):  # refused with the settings, before any work
        build_config(SDRRLTrainer, {**SMOKE, "parallel_data": "openlanguagedata/flores_plus"})
    # what the run lacks is found by check(), which the plan stage calls before any model is loaded
    danish = SDRRLTrainer(build_config(SDRRLTrainer, {**SMOKE, "parallel_per_lang": "0"}))
    with pytest.raises(HarnessError) as err:
        danish.check([EN, DA])
    message = str(err.value)
    assert "en-da.txt" in message and "cs, fr, ja" in message and "\n" not in message
    with pytest.raises(HarnessError, match="no .*en-da.jsonl; it has: en-cs, en-fr, en-ja, fr-cs"):
        SDRRLTrainer(build_config(SDRRLTrainer, SMOKE)).check([EN, DA])
    french = SDRRLTrainer(build_config(SDRRLTrainer, {**SMOKE, "source_lang": "fr", "parallel_data": "Helsinki-NLP/opus-100"}))
    with pytest.raises(HarnessError, match="English-centric pairs only, so no fr-cs pairs"):
        french.check([EN, CS])
    with pytest.raises(HarnessError, match="bad value for sdrrl.source_lang: 'de'; expected one of: en, fr"):
        build_config(SDRRLTrainer, {**SMOKE, "source_lang": "de"})
    with pytest.raises(HarnessError, match="bad value for sdrrl.parallel_formats: unknown parallel format 'full'"):
        build_config(SDRRLTrainer, {**SMOKE, "parallel_formats": "full:1"})
    with pytest.raises(HarnessError, match="bad value for sdrrl.answer_source: 'mine'; expected one of: self, reference"):
        build_config(SDRRLTrainer, {**SMOKE, "answer_source": "mine"})


# --- the other trainers ---------------------------------------------------------------------


def test_nllb_cache_key_names_half_precision_on_a_gpu(monkeypatch):
    import trainers.translators as translators

    monkeypatch.setattr(translators, "on_gpu", lambda: False)
    assert translators.NLLBTranslator("org/nllb").id == "nllb:org/nllb:beams=4"  # the key CPU caches always had
    monkeypatch.setattr(translators, "on_gpu", lambda: True)
    assert translators.NLLBTranslator("org/nllb").id == "nllb:org/nllb:fp16:beams=4"


def test_all_trainers_are_registered():
    assert {"base", "english_sft", "translate_sft", "sdrrl"} <= set(load_trainers())


def test_every_setting_of_every_trainer_says_what_it_does_and_what_backs_its_default():
    from harness.core.rules import PAPER_WORDS
    from harness.trainer_api import setting_infos

    for name, cls in load_trainers().items():
        infos = setting_infos(cls)
        assert [i.name for i in infos] == setting_names(cls.Config)
        for info in infos:
            assert len(info.help) >= 10, f"{name}.{info.name} has no help text (declare it with harness.core.rules.setting)"
            assert info.paper in PAPER_WORDS, f"{name}.{info.name}: paper={info.paper!r}"
    with pytest.raises(ValueError, match="the paper's.*valid: confirmed"):
        from harness.core.rules import setting

        setting(1, help="x", paper="the paper's")


def test_translate_sft_and_english_sft(tmp_path):
    trainers = load_trainers()
    ctx = _ctx(Path("/nonexistent-model"), tmp_path)  # neither generates: the model is never touched
    tsft = trainers["translate_sft"]
    records = tsft(build_config(tsft, {"instructions": "builtin:alpaca-smoke", "num_instructions": "5", "translator": "lexicon"})).build_dataset(ctx)
    assert sorted({(r["kind"], r["lang"]) for r in records}) == [("en_ref", "en"), ("mt_ref", "cs"), ("mt_ref", "ja")]
    assert len(records) == 15 and len({r["group"] for r in records}) == 5
    en_sft = trainers["english_sft"]
    records = en_sft(build_config(en_sft, {"instructions": "builtin:alpaca-smoke", "num_instructions": "0"})).build_dataset(ctx)
    assert len(records) == 32 and {r["kind"] for r in records} == {"en_ref"}
    base = trainers["base"](trainers["base"].Config())
    assert base.trains is False and base.build_dataset(ctx) == []
    with pytest.raises(HarnessError, match="does not train"):
        base.train(ctx, [], tmp_path / "adapter")


def test_config_overrides_are_coerced():
    cfg = build_config(SDRRLTrainer, {"code_switch_ratio": "0.25", "target_modules": "q_proj,v_proj", "same_batch": "false", "lora_rank": "8"})
    assert cfg.code_switch.code_switch_ratio == 0.25 and cfg.train.target_modules == ["q_proj", "v_proj"]
    assert cfg.train.same_batch is False and cfg.train.lora_rank == 8
    with pytest.raises(HarnessError, match="unknown setting"):
        build_config(SDRRLTrainer, {"no_such_knob": "1"})


def test_flat_settings_route_to_the_concern_that_declares_them():
    """Users name settings flat; each lands in its concern, and the flat view gives them back in order."""
    cfg = build_config(SDRRLTrainer, {"parallel_per_lang": "7", "lr_scheduler": "linear", "include_source": "false"})
    assert cfg.parallel.parallel_per_lang == 7 and cfg.train.lr_scheduler == "linear" and cfg.include_source is False
    settings = settings_of(cfg)
    assert list(settings) == setting_names(SDRRLConfig) and settings["parallel_per_lang"] == 7
    assert settings_of(build_config(SDRRLTrainer, settings)) == settings
    # Per-trainer defaults live in the concern's default factory.
    assert settings_of(SDRRLConfig())["parallel_per_lang"] == 200 and settings_of(TranslateSFTConfig())["parallel_per_lang"] == 0


def test_a_setting_declared_in_two_concerns_is_refused():
    @dataclass
    class Twice:
        train: TrainConfig = field(default_factory=TrainConfig)
        lora_rank: int = 4

    with pytest.raises(TypeError, match="setting 'lora_rank' is declared twice"):
        setting_names(Twice)


# --- data sources ---------------------------------------------------------------------------


def test_instruction_sampling_and_local_files(tmp_path):
    a = load_instructions("builtin:alpaca-smoke", 5, seed=1)
    assert len(a) == 5 and a == load_instructions("builtin:alpaca-smoke", 5, seed=1)
    assert a != load_instructions("builtin:alpaca-smoke", 5, seed=2)
    path = tmp_path / "mine.jsonl"
    path.write_text('{"instruction": "Say hi.", "input": "", "output": "Hi."}\n', encoding="utf-8")
    assert load_instructions(str(path), 0, 0) == [{"id": "mine-0", "instruction": "Say hi.", "input": "", "output": "Hi."}]
    with pytest.raises(HarnessError, match="builtin:alpaca-smoke"):
        load_instructions("builtin:nope", 1, 0)


def test_parallel_sources():
    pairs = load_parallel("builtin:opus-smoke", EN, JA, 4, seed=0)
    assert len(pairs) == 4 and all(en and ja for en, ja in pairs)
    with pytest.raises(HarnessError, match="en-da.jsonl"):
        load_parallel("builtin:opus-smoke", EN, DA, 4, seed=0)
    with pytest.raises(HarnessError, match="fewer than"):
        load_parallel("builtin:opus-smoke", EN, CS, 17, seed=0)
    with pytest.raises(HarnessError, match="FLORES"):
        load_parallel("facebook/flores", EN, CS, 4, seed=0)


# --- code-switching -------------------------------------------------------------------------


def test_lexicon_format(tmp_path):
    path = tmp_path / "en-xx.txt"
    path.write_text("cat kočka\ncat kocour\ndog\tpes\n\ncapital hlavní město\n", encoding="utf-8")
    lex = load_lexicon(path)
    assert lex == {"cat": ["kočka", "kocour"], "dog": ["pes"], "capital": ["hlavní město"]}


def test_code_switch_ratio_and_determinism():
    lex = load_lexicon(Path(__file__).parent.parent / "trainers" / "data" / "lexicons" / "en-cs.txt")
    text = "The cat and the dog play in the garden every morning, and the children eat bread with milk."
    n = len(translatable_words(text, lex))
    assert n >= 10
    for ratio in (0.0, 0.3, 0.5, 1.0):
        switched, k = code_switch(text, lex, ratio, random.Random(7))
        assert k == round(ratio * n)
        assert (switched == text) == (k == 0)
    assert code_switch(text, lex, 0.5, random.Random(7)) == code_switch(text, lex, 0.5, random.Random(7))
    switched, _ = code_switch("Zorblax quibbles.", lex, 1.0, random.Random(0))
    assert switched == "Zorblax quibbles."  # unknown words are never touched
    switched, _ = code_switch("Cat.", lex, 1.0, random.Random(0))
    assert switched == "Kočka."  # capitalisation and punctuation kept
    with pytest.raises(HarnessError):
        code_switch(text, lex, 1.5, random.Random(0))


# --- translators ----------------------------------------------------------------------------


class CountingTranslator(Translator):
    def __init__(self):
        self.calls: list[list[str]] = []

    @property
    def id(self) -> str:
        return "counting"

    def _translate(self, texts, src, tgt):
        self.calls.append(list(texts))
        return [f"<{tgt.code}>{t}" for t in texts]


def test_translation_cache(tmp_path):
    inner = CountingTranslator()
    cache_path = tmp_path / "translations.jsonl"
    cached = CachedTranslator(inner, cache_path, chunk_size=2)
    assert cached.translate(["a", "b", "a", "", "c"], EN, CS) == ["<cs>a", "<cs>b", "<cs>a", "", "<cs>c"]
    assert inner.calls == [["a", "b"], ["c"]]  # unique, non-empty, in chunks
    assert cached.translate(["c", "a"], EN, CS) == ["<cs>c", "<cs>a"] and len(inner.calls) == 2
    assert cached.translate(["a"], EN, JA) == ["<ja>a"] and len(inner.calls) == 3  # the key includes the language
    with open(cache_path, "a", encoding="utf-8") as fh:
        fh.write('{"key": "half-writ')  # a killed run's last line
    fresh_inner = CountingTranslator()
    reloaded = CachedTranslator(fresh_inner, cache_path)
    assert reloaded.translate(["b", "a"], EN, CS) == ["<cs>b", "<cs>a"]
    assert fresh_inner.calls == []  # a rerun translates nothing twice
    assert cached.translate(["x"], EN, EN) == ["x"]  # same language: passed through


def test_lexicon_and_file_translators(tmp_path):
    lex = LexiconTranslator()
    assert lex.translate(["The cat drinks milk, 3 times."], EN, CS) == ["The kočka drinks mléko, 3 times."]
    assert lex.translate(["kočka"], CS, EN) == ["cat"]  # the inverse lexicon
    with pytest.raises(HarnessError) as err:
        lex.translate(["cat"], EN, DA)
    assert "en-da.txt" in str(err.value) and "cs, fr, ja" in str(err.value)

    path = tmp_path / "mt.jsonl"
    path.write_text(
        json.dumps({"src_lang": "en", "tgt_lang": "ces_Latn", "source": "Hello.", "translation": "Ahoj."}) + "\n", encoding="utf-8"
    )
    ft = FileTranslator(path)
    assert ft.translate(["Hello.", ""], EN, CS) == ["Ahoj.", ""]
    with pytest.raises(HarnessError, match="no en->cs translation for 1 of 1 texts"):
        ft.translate(["Goodbye."], EN, CS)
    with pytest.raises(HarnessError, match="does not exist"):
        FileTranslator(tmp_path / "missing.jsonl")


def test_translator_factory_errors(tmp_path):
    with pytest.raises(HarnessError, match="unknown translator 'google'; valid: file, lexicon, llm, nllb, nllb-ct2"):
        make_translator("google")
    with pytest.raises(HarnessError, match="translations_file"):
        make_translator("file")
    assert isinstance(make_translator("lexicon", cache_dir=tmp_path), CachedTranslator)
    nllb = make_translator("nllb", model=str(tmp_path / "no-such-nllb"))
    with pytest.raises(HarnessError, match="could not be loaded"):
        nllb.translate(["Hello."], EN, CS)


def test_llm_translator_makes_one_generation_call_for_all_languages(tmp_path, monkeypatch):
    calls = []

    def fake_generate(model_dir, conversations, max_new_tokens, engine="vllm", settings=None, on_batch=None):
        calls.append(conversations)
        return [Generation(f"T{i}", False) for i in range(len(conversations))]

    monkeypatch.setattr("harness.engines.generate_chat", fake_generate)
    translator = make_translator("llm", model_dir=tmp_path, engine="hf", cache_dir=tmp_path)
    out = translator.translate_jobs([(["Hello.", ""], EN, CS), (["Hello."], EN, JA), (["x"], EN, EN)])
    assert out == [["T0", ""], ["T1"], ["x"]]
    assert len(calls) == 1 and len(calls[0]) == 2
    assert "into Czech" in calls[0][0][0]["content"] and calls[0][0][0]["content"].endswith("Hello.")
    assert translator.translate(["Hello."], EN, JA) == ["T1"] and len(calls) == 1  # cached


def test_run_engine_settings_reach_self_distillation_and_llm_translation(tmp_path, monkeypatch):
    from harness.engines import EngineSettings

    seen = []

    def fake(model_dir, conversations, max_new_tokens, engine="vllm", settings=None, on_batch=None):
        seen.append((settings, max_new_tokens))
        return [Generation(f"A{i}", False) for i in range(len(conversations))]

    monkeypatch.setattr("harness.engines.generate_chat", fake)
    settings = EngineSettings(seed=7, max_model_len=512)
    ctx = TrainContext(model_dir=Path("/no-model"), languages=[EN, CS], work_dir=tmp_path, engine="hf", seed=7, settings=settings)
    overrides = {**SMOKE, "translator": "llm", "parallel_per_lang": "0", "code_switch_variants": "0"}
    SDRRLTrainer(build_config(SDRRLTrainer, overrides)).build_dataset(ctx)
    assert [s for s, _ in seen] == [settings, settings]  # self-distillation, then the LLM translator
    assert seen[0][1] == 12  # answer_max_new_tokens
