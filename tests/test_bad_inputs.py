"""The bad-input battery: every bad input ends in one line naming the bad value, exit code 2, no
traceback, and before any model is loaded (hooks below fail the case if one is). How long each case
took is in the table (timing is not asserted here: speed targets live in benchmarks).

Each case calls harness.app.cli.main in-process. Set BATTERY_TABLE=<file> to get the table
(case, seconds to fail, message) written out.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from pathlib import Path

import pytest

from harness.app.cli import main
from harness.evaluation.registry import all_tasks as real_all_tasks

try:  # tests/ as a plain folder on sys.path (pytest's default) or as a package
    from broken_inputs import baseline_runs, broken_adapters, broken_data, broken_models, misc_files
except ImportError:
    from tests.broken_inputs import baseline_runs, broken_adapters, broken_data, broken_models, misc_files

_TABLE: list[tuple[str, float, str]] = []


class ModelLoaded(BaseException):
    """Raised by the hooks; a BaseException, so the CLI's last-resort handler does not swallow it."""


_ALL_TASKS = functools.lru_cache(maxsize=None)(real_all_tasks)


def _model_load(*_a, **_k):
    raise ModelLoaded("a model was loaded (or generation/training/evaluation started) for a bad input")


@pytest.fixture()
def no_model_loads(monkeypatch, tmp_path):
    """Every way the harness reaches a model (load, generate, train, evaluate) fails the case."""
    import transformers

    import harness.engines
    import harness.evaluation.evaluate
    import harness.app.pipeline
    import trainers.generation
    import trainers.kernels
    import trainers.lora
    import trainers.sdrrl
    from harness.trainer_api import load_trainers

    for target in (
        (harness.evaluation.evaluate, "evaluate"), (harness.evaluation.evaluate, "build_lm"), (harness.app.pipeline, "evaluate"),
        (harness.engines, "generate_chat"), (trainers.generation, "generate"), (trainers.sdrrl, "generate"),
        (trainers.lora, "train_lora"), (transformers.PreTrainedModel, "from_pretrained"),
        (transformers.AutoModelForCausalLM, "from_pretrained"),
    ):
        monkeypatch.setattr(*target, _model_load)
    monkeypatch.setattr(trainers.kernels, "liger_installed", lambda: False)  # as on these machines, also where it is installed
    import harness.evaluation.registry

    # The task registry is re-read from ~100 YAML files per call (0.35 s here); it cannot change
    # during the battery, so one read serves every case.
    monkeypatch.setattr(harness.evaluation.registry, "all_tasks", _ALL_TASKS)
    for cls in load_trainers().values():
        monkeypatch.setattr(cls, "build_dataset", _model_load)
        monkeypatch.setattr(cls, "train", _model_load)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SDRRL_EVAL_CACHE", str(tmp_path / "eval-cache"))
    vllm_before = "vllm" in sys.modules
    yield
    assert vllm_before or "vllm" not in sys.modules, "vLLM was imported for a bad input"


def _call(argv: list[str], capsys) -> tuple[int, str, float]:
    capsys.readouterr()
    started = time.perf_counter()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own one-line errors
        code = exc.code
    seconds = time.perf_counter() - started
    return code, capsys.readouterr().err.strip(), seconds


@pytest.fixture(scope="module")
def world(tiny_llama, tmp_path_factory) -> dict[str, dict[str, Path] | Path]:
    root = tmp_path_factory.mktemp("battery")
    return {
        "model": tiny_llama,
        "models": broken_models(tiny_llama, root / "models"),
        "data": broken_data(root / "data"),
        "misc": misc_files(root / "misc"),
        "runs": baseline_runs(root / "runs"),
        "adapters": broken_adapters(tiny_llama, root / "adapters"),
        "same_model_run": _same_model_run(tiny_llama, root / "runs"),
    }


def _same_model_run(model: Path, root: Path) -> Path:
    try:
        from run_fixtures import make_run
    except ImportError:
        from tests.run_fixtures import make_run
    return make_run(root, "same-model-run", langs=("en", "cs"), n=2, model=str(model))


# --------------------------------------------------------------------------------------------
# The cases: (id, argv as a function of the world, parts the one line must hold)
# --------------------------------------------------------------------------------------------

RUN = ["run", "--trainer", "sdrrl", "--suite", "smoke", "--limit", "2", "--engine", "hf"]


def run_with(*extra: str):
    return lambda w: [*RUN, "--model", str(w["model"]), *extra]


def run_model(variant: str, trainer: str = "sdrrl"):
    return lambda w: ["run", "--trainer", trainer, "--suite", "smoke", "--engine", "hf", "--model", str(w["models"][variant])]


def run_data(variant: str):
    return lambda w: [*RUN, "--model", str(w["model"]), "--data-dir", str(w["data"][variant])]


def run_config(name: str):
    return lambda w: [*RUN, "--model", str(w["model"]), "--config", str(w["misc"][name])]


def eval_with(*extra: str):
    return lambda w: ["eval", "--suite", "smoke", "--engine", "hf", "--model", str(w["model"]), *extra]


def setting(key_value: str, trainer: str = "sdrrl"):
    return lambda w: ["run", "--trainer", trainer, "--suite", "smoke", "--model", str(w["model"]), "--set", key_value]


CASES = [
    # --- the issue's own cases -------------------------------------------------------------
    ("set learning_rate=-1", setting("learning_rate=-1"), ["learning_rate", "-1", ">= 0"]),
    ("set epochs=0", setting("epochs=0"), ["epochs", "max_steps >= 1"]),
    ("set lr_scheduler=foo", setting("lr_scheduler=foo"), ["'foo'", "cosine", "linear"]),
    ("set precision=foo", setting("precision=foo"), ["'foo'", "bf16", "fp32"]),
    ("set translator=foo", setting("translator=foo"), ["'foo'", "nllb", "lexicon"]),
    ("set lora_rank=1000", setting("lora_rank=1000"), ["lora_rank", "1000", "[1, 64]"]),
    ("--limit -1", run_with("--limit", "-1"), ["--limit", "-1", ">= 1"]),
    ("--max-gen-toks -5", run_with("--max-gen-toks", "-5"), ["--max-gen-toks", "-5", ">= 1"]),
    ("--adapter-serving foo", run_with("--adapter-serving", "foo"), ["'foo'", "auto", "merged", "lora"]),
    ("model: truncated config.json", run_model("truncated_config"), ["config.json", "not valid JSON"]),
    ("--data-dir missing", run_with("--data-dir", "/no/such/data"), ["/no/such/data", "not a folder"]),
    ("--config malformed YAML", run_config("bad_yaml"), ["bad_yaml", "not valid YAML", "line"]),
    ("--runs-dir not writable", lambda w: [*run_with()(w), "--runs-dir", str(w["models"]["a_file"] / "runs")], ["--runs-dir", "not a writable folder"]),
    ("baseline --tolerance acc=abc", lambda w: ["baseline", str(w["misc"]["adapter_empty"]), "--out", "x.json", "--tolerance", "acc=abc"], ["acc=abc", ">= 0"]),
    ("data: missing language", run_data("missing_lang"), ["belebele/jpn_Jpan/test.jsonl"]),
    ("data: truncated row", run_data("truncated_row"), ["belebele/ces_Latn/test.jsonl", "invalid JSON"]),
    ("data: missing field", run_data("missing_field"), ["test.jsonl", "question"]),
    ("data: correct_answer_num 7", run_data("answer_7"), ["correct_answer_num", "'7'", "'1'..'4'"]),
    ("trainer base --set x=1", setting("x=1", trainer="base"), ["'base'", "no settings", "'x'"]),
    ("set epochs=abc", setting("epochs=abc"), ["'abc'", "an integer", "[0, 1000]", "max_steps"]),
    # --- every CLI flag ----------------------------------------------------------------------
    ("--limit 0", run_with("--limit", "0"), ["--limit", "0", ">= 1"]),
    ("--limit abc", run_with("--limit", "abc"), ["--limit", "'abc'"]),
    ("--max-gen-toks 0", run_with("--max-gen-toks", "0"), ["--max-gen-toks", ">= 1"]),
    ("--max-model-len 0", run_with("--max-model-len", "0"), ["--max-model-len", ">= 16"]),
    ("--max-model-len x", run_with("--max-model-len", "x"), ["--max-model-len", "'x'"]),
    ("--seed -1", run_with("--seed", "-1"), ["--seed", "-1", "[0, 4294967295]"]),
    ("--seed 2**32", run_with("--seed", str(2**32)), ["--seed", str(2**32)]),
    ("--engine tensorrt", run_with("--engine", "tensorrt"), ["'tensorrt'", "hf", "vllm"]),
    ("--suite paper99", run_with("--suite", "paper99"), ["'paper99'", "smoke", "paper15"]),
    ("--langs cs,xx", run_with("--langs", "cs,xx"), ["'xx'"]),
    ("--langs ja,th (not in suite)", run_with("--langs", "ja,th"), ["'th'", "cs", "ja"]),
    ("--force everything", run_with("--force", "everything"), ["'everything'", "evaluate", "train"]),
    ("--keep-cache without --force", run_with("--keep-cache"), ["--keep-cache", "--force"]),
    ("--name ../escape", run_with("--name", "../escape"), ["'../escape'", "folder name"]),
    ("--name a/b", run_with("--name", "a/b"), ["'a/b'"]),
    ("--runs-dir is a file", lambda w: [*run_with()(w), "--runs-dir", str(w["models"]["a_file"])], ["--runs-dir", "a-file"]),
    ("--data-dir is a file", lambda w: [*RUN, "--model", str(w["model"]), "--data-dir", str(w["data"]["a_file"])], ["a-file", "not a folder"]),
    ("--trainer magic", lambda w: ["run", "--trainer", "magic", "--model", str(w["model"])], ["'magic'", "sdrrl", "translate_sft"]),
    ("--set without =", run_with("--set", "epochs"), ["'epochs'", "key=value"]),
    ("--set =1", run_with("--set", "=1"), ["'=1'", "key=value"]),
    ("--set unknown key", run_with("--set", "epoch=2"), ["'epoch'", "epochs"]),
    ("--config missing file", lambda w: [*RUN, "--model", str(w["model"]), "--config", "/no/such.yaml"], ["/no/such.yaml", "does not exist"]),
    ("--config a folder", lambda w: [*RUN, "--model", str(w["model"]), "--config", str(w["misc"]["adapter_empty"])], ["adapter-empty", "does not exist"]),
    ("--config top-level list", run_config("list_yaml"), ["list_yaml", "mapping"]),
    ("--config epochs: abc", run_config("typed_yaml"), ["epochs", "'abc'", "an integer"]),
    ("--config lora_rank: 1000", run_config("rank_yaml"), ["lora_rank", "1000", "[1, 64]"]),
    ("--config same_batch: 3", run_config("bool_yaml"), ["same_batch", "3", "true or false"]),
    ("--config unknown key", run_config("unknown_yaml"), ["'epoch'", "epochs"]),
    # --- each kind of broken model folder -----------------------------------------------------
    ("model: no such folder", lambda w: [*RUN, "--model", "/no/such/model"], ["'/no/such/model'", "smollm2-135m"]),
    ("model: a file", run_model("a_file"), ["a-file", "config.json"]),
    ("model: no config.json", run_model("no_config"), ["no_config", "config.json"]),
    ("model: config.json a list", run_model("config_list"), ["config.json", "model_type"]),
    ("model: config without model_type", run_model("no_model_type"), ["config.json", "model_type"]),
    ("model: no weights", run_model("no_weights"), ["no_weights", "no safetensors"]),
    ("model: .bin weights only", run_model("bin_weights"), ["no safetensors", "pytorch_model.bin"]),
    ("model: truncated weights", run_model("truncated_weights"), ["model.safetensors", "truncated"]),
    ("model: garbage weights", run_model("garbage_weights"), ["model.safetensors", "not a valid safetensors"]),
    ("model: index names missing shard", run_model("missing_shard"), ["model-00002-of-00002.safetensors", "missing"]),
    ("model: no tokenizer", run_model("no_tokenizer"), ["no_tokenizer", "tokenizer.json"]),
    ("model: truncated tokenizer_config", run_model("bad_tokenizer_config"), ["tokenizer_config.json", "not valid JSON"]),
    ("model: no chat template (sdrrl)", run_model("no_chat_template"), ["no_chat_template", "chat template"]),
    ("model: hub id, offline", lambda w: [*RUN, "--model", "no-such-org/no-such-model"], ["'no-such-org/no-such-model'", "smollm2-135m"]),
    # --- each kind of broken data file --------------------------------------------------------
    ("data: missing split file", run_data("missing_split"), ["sib200/ces_Latn/train.jsonl"]),
    ("data: row not an object", run_data("row_not_object"), ["test.jsonl:1", "JSON object"]),
    ("data: empty file", run_data("empty_file"), ["flores200/ces_Latn/devtest.jsonl", "no records"]),
    ("data: flores id missing in target", run_data("flores_missing_id"), ["jpn_Jpan/devtest.jsonl", "missing"]),
    ("data: flores row without text", run_data("flores_no_text"), ["eng_Latn/devtest.jsonl", "text"]),
    ("data: unknown SIB category", run_data("sib_category"), ["'cooking'", "travel"]),
    ("eval: data missing language", lambda w: [*eval_with()(w), "--data-dir", str(w["data"]["missing_lang"])], ["belebele/jpn_Jpan/test.jsonl"]),
    ("eval: answer 7", lambda w: [*eval_with()(w), "--data-dir", str(w["data"]["answer_7"])], ["correct_answer_num", "'7'"]),
    # --- each trainer setting -------------------------------------------------------------------
    ("set lora_rank=0", setting("lora_rank=0"), ["lora_rank", "[1, 64]"]),
    ("set lora_alpha=0", setting("lora_alpha=0"), ["lora_alpha", "> 0"]),
    ("set lora_dropout=1.5", setting("lora_dropout=1.5"), ["lora_dropout", "[0, 1)"]),
    ("set target_modules=", setting("target_modules="), ["target_modules", "non-empty"]),
    ("set learning_rate=abc", setting("learning_rate=abc"), ["learning_rate", "'abc'", "a number >= 0"]),
    ("set learning_rate=nan", setting("learning_rate=nan"), ["learning_rate", "nan"]),
    ("set max_steps=-1", setting("max_steps=-1"), ["max_steps", "[0, 10000000]"]),
    ("set batch_size=0", setting("batch_size=0"), ["batch_size", ">= 1"]),
    ("set grad_accum_steps=0", setting("grad_accum_steps=0"), ["grad_accum_steps", ">= 1"]),
    ("set micro_batch_size=0", setting("micro_batch_size=0"), ["micro_batch_size", ">= 1"]),
    ("set tokens_per_step=-1", setting("tokens_per_step=-1"), ["tokens_per_step", ">= 0"]),
    ("comparison: set tokens_per_step=abc", run_with("--trainer", "sdrrl,english_sft", "--set", "tokens_per_step=abc"),
     ["tokens_per_step", "'abc'", "an integer"]),
    ("set max_seq_len=4", setting("max_seq_len=4"), ["max_seq_len", ">= 8"]),
    ("set warmup_ratio=2", setting("warmup_ratio=2"), ["warmup_ratio", "[0, 1]"]),
    ("set weight_decay=-1", setting("weight_decay=-1"), ["weight_decay", ">= 0"]),
    ("set max_grad_norm=-1", setting("max_grad_norm=-1"), ["max_grad_norm", ">= 0"]),
    ("set gradient_checkpointing=maybe", setting("gradient_checkpointing=maybe"), ["'maybe'", "auto"]),
    ("set same_batch=maybe", setting("same_batch=maybe"), ["same_batch", "'maybe'", "true or false"]),
    ("set log_every=-1", setting("log_every=-1"), ["log_every", ">= 0"]),
    ("set num_instructions=-1", setting("num_instructions=-1"), ["num_instructions", ">= 0"]),
    ("set instructions=builtin:nope", setting("instructions=builtin:nope"), ["'builtin:nope'", "builtin:alpaca-smoke"]),
    ("set instructions=./nope.json", setting("instructions=./nope.json"), ["'./nope.json'", "does not exist"]),
    ("set instructions=FLORES", setting("instructions=openlanguagedata/flores_plus"), ["flores_plus", "evaluation set"]),
    ("set parallel_data=builtin:nope", setting("parallel_data=builtin:nope"), ["'builtin:nope'", "builtin:opus-smoke"]),
    ("set parallel_data=FLORES", setting("parallel_data=facebook/flores"), ["facebook/flores", "evaluation set"]),
    ("set parallel_per_lang=-1", setting("parallel_per_lang=-1"), ["parallel_per_lang", ">= 0"]),
    ("set parallel_direction=sideways", setting("parallel_direction=sideways"), ["'sideways'", "src-xx", "both"]),
    ("set parallel_formats=full:1", setting("parallel_formats=full:1"), ["parallel_formats", "'full'", "partial"]),
    ("set parallel_formats=partial:x", setting("parallel_formats=partial:x"), ["parallel_formats", "'x'"]),
    ("set source_lang=de", setting("source_lang=de"), ["source_lang", "'de'", "en, fr"]),
    ("set answer_source=mine", setting("answer_source=mine"), ["answer_source", "'mine'", "reference"]),
    ("set translator=file, no file", setting("translator=file"), ["translations_file", "translator=file"]),
    ("set translations_file with a bad row", lambda w: setting("translator=file")(w) + ["--set", f"translations_file={w['misc']['translations_bad_row']}"],
     ["translations_bad_row.txt:2", "src_lang, tgt_lang, source, translation"]),
    ("lexicon in Latin-1", lambda w: [*setting(f"lexicon_dir={w['misc']['lexicons_latin1']}")(w), "--langs", "en,cs"],
     ["en-cs.txt:2", "not UTF-8"]),
    ("lexicon missing for a language", lambda w: [*setting(f"lexicon_dir={w['misc']['lexicons_cs_only']}")(w), "--langs", "en,ja"],
     ["en-ja.txt", "cover: cs"]),
    ("set lexicon_dir=/nope", setting("lexicon_dir=/nope"), ["lexicon_dir", "/nope"]),
    ("set answer_max_new_tokens=0", setting("answer_max_new_tokens=0"), ["answer_max_new_tokens", ">= 1"]),
    ("set min_answer_chars=-1", setting("min_answer_chars=-1"), ["min_answer_chars", ">= 0"]),
    ("set code_switch_variants=-1", setting("code_switch_variants=-1"), ["code_switch_variants", ">= 0"]),
    ("set code_switch_ratio=1.5", setting("code_switch_ratio=1.5"), ["code_switch_ratio", "[0, 1]"]),
    ("set code_switch_side=left", setting("code_switch_side=left"), ["'left'", "question", "answer"]),
    ("translate_sft: set translator=foo", setting("translator=foo", "translate_sft"), ["translate_sft.translator", "'foo'"]),
    ("english_sft: set num_instructions=x", setting("num_instructions=x", "english_sft"), ["english_sft.num_instructions", "'x'"]),
    ("english_sft: set translator=nllb", setting("translator=nllb", "english_sft"), ["'translator'", "instructions"]),
    # --- eval's own inputs -------------------------------------------------------------------
    ("eval --adapter missing", eval_with("--adapter", "/no/such/adapter"), ["/no/such/adapter", "does not exist"]),
    ("eval --adapter without config", lambda w: [*eval_with()(w), "--adapter", str(w["misc"]["adapter_empty"])], ["adapter_config.json"]),
    ("eval --adapter rank 128", lambda w: [*eval_with()(w), "--adapter", str(w["misc"]["adapter_r128"])], ["128", "1 to 64"]),
    ("eval --tasks not in suite", eval_with("--tasks", "belebele_zz"), ["'belebele_zz'", "belebele_cs"]),
    ("eval --out is a file", lambda w: [*eval_with()(w), "--out", str(w["models"]["a_file"])], ["--out", "a-file"]),
    ("eval --limit 0", eval_with("--limit", "0"), ["--limit", ">= 1"]),
    ("eval: model without weights", lambda w: ["eval", "--engine", "hf", "--model", str(w["models"]["no_weights"])], ["no safetensors"]),
    # --- baseline, check and report files -------------------------------------------------------
    ("baseline --tolerance acc=-1", lambda w: ["baseline", "r", "--out", "x.json", "--tolerance", "acc=-1"], ["acc=-1", ">= 0"]),
    ("baseline --tolerance acc", lambda w: ["baseline", "r", "--out", "x.json", "--tolerance", "acc"], ["'acc'", "METRIC=POINTS"]),
    ("baseline --tolerance =0.1", lambda w: ["baseline", "r", "--out", "x.json", "--tolerance", "=0.1"], ["'=0.1'"]),
    ("baseline --tolerance acc=nan", lambda w: ["baseline", "r", "--out", "x.json", "--tolerance", "acc=nan"], ["acc=nan"]),
    ("baseline: no such run", lambda w: ["baseline", "/no/such/run", "--out", "x.json"], ["/no/such/run", "not a run folder"]),
    ("baseline: folder without spec", lambda w: ["baseline", str(w["misc"]["run_folder_no_spec"]), "--out", "x.json"], ["no spec.yaml"]),
    ("check: baseline missing", lambda w: ["check", "r", "--against", "/no/such.json"], ["/no/such.json", "not found"]),
    ("check: baseline bad JSON", lambda w: ["check", "r", "--against", str(w["misc"]["baseline_bad_json"])], ["baseline_bad_json"]),
    ("check: baseline without cells", lambda w: ["check", "r", "--against", str(w["misc"]["baseline_no_cells"])], ["cells"]),
    ("check: baseline bad cell key", lambda w: ["check", "r", "--against", str(w["misc"]["baseline_bad_cell"])], ["'acc'", "<variant>/<task>/<metric>"]),
    ("check: baseline a list", lambda w: ["check", "r", "--against", str(w["misc"]["baseline_list"])], ["not a JSON object"]),
    ("report: no such run", lambda w: ["report", "/no/such/run"], ["/no/such/run"]),
    # --- inputs that used to pass the plan stage and start work (issue 20) -----------------------
    ("--langs cs,cs", run_with("--langs", "cs,cs"), ["'cs'", "more than once"]),
    ("--ablations, trainer without presets", lambda w: [*RUN, "--model", str(w["model"]), "--trainer", "english_sft", "--ablations"],
     ["--ablations", "english_sft", "sdrrl", "translate_sft"]),
    ("--ablations, only +presets named", lambda w: [*RUN, "--model", str(w["model"]), "--trainer", "sdrrl+no_cs", "--ablations"],
     ["--ablations", "sdrrl+no_cs"]),
    ("--config key given twice", run_config("dup_key_yaml"), ["dup_key_yaml", "'epochs'", "twice", "lines 1 and 3"]),
    ("--config alias bomb", run_config("bomb_yaml"), ["bomb_yaml", "alias", "10000"]),
    ("--config epochs: 1_000", run_config("underscore_yaml"), ["epochs", "'1_000'", "an integer"]),
    ("set parallel_formats=partial:nan", setting("parallel_formats=partial:nan,completion:1"), ["parallel_formats", "'nan'", "a number >= 0"]),
    ("set parallel_formats=partial:inf", setting("parallel_formats=partial:inf"), ["parallel_formats", "'inf'", "a number >= 0"]),
    ("set parallel_formats, a format twice", setting("parallel_formats=partial:0.5,partial:0.5"), ["parallel_formats", "'partial' twice"]),
    ("set epochs=1_000", setting("epochs=1_000"), ["sdrrl.epochs", "'1_000'", "an integer"]),
    ("set epochs=Arabic-Indic 12", setting("epochs=\u0661\u0662"), ["sdrrl.epochs", "'\u0661\u0662'", "an integer"]),
    ("set learning_rate=1_0e-4", setting("learning_rate=1_0e-4"), ["sdrrl.learning_rate", "'1_0e-4'", "a number"]),
    ("set instructions=relative/missing.json", setting("instructions=data/missing.json"), ["'data/missing.json'", "does not exist"]),
    ("set instructions=missing.jsonl", setting("instructions=missing.jsonl"), ["'missing.jsonl'", "does not exist"]),
    ("set instructions=hub id, offline", setting("instructions=no-such-org/no-such-set"), ["no-such-org/no-such-set", "hub is unreachable", "harness fetch"]),
    ("set instructions=a folder", lambda w: setting(f"instructions={w['misc']['adapter_empty']}")(w), ["adapter-empty", "a folder", "JSON"]),
    ("set instructions, a null instruction", lambda w: setting(f"instructions={w['misc']['instructions_null']}")(w),
     ["instructions_null.json", "row 2", "'instruction'", "None"]),
    ("set instructions, a Latin-1 file", lambda w: setting(f"instructions={w['misc']['instructions_latin1']}")(w),
     ["instructions_latin1.jsonl", "UTF-8"]),
    ("set translations_file, an empty file", lambda w: setting("translator=file")(w) + ["--set", f"translations_file={w['misc']['translations_empty']}"],
     ["translations_empty.txt", "no translations"]),
    ("set translations_file, a Latin-1 file", lambda w: setting("translator=file")(w) + ["--set", f"translations_file={w['misc']['translations_latin1']}"],
     ["translations_latin1.jsonl:1", "UTF-8"]),
    ("eval --tasks ''", eval_with("--tasks", ""), ["--tasks", "names no task", "belebele_cs"]),
    ("eval --tasks ,", eval_with("--tasks", ","), ["--tasks", "names no task"]),
    ("eval --tasks a task twice", eval_with("--tasks", "belebele_cs,belebele_cs"), ["belebele_cs", "more than once"]),
    # --- data a user would call valid, with an undefined result ----------------------------------
    ("data: null question", run_data("null_question"), ["belebele/ces_Latn/test.jsonl:3", "'question'", "null"]),
    ("data: null passage", run_data("null_passage"), ["belebele/ces_Latn/test.jsonl:1", "'flores_passage'", "null"]),
    ("data: null instruct instruction", run_data("null_instruct"), ["instruct/ces_Latn/test.jsonl:2", "'instruction'", "null"]),
    ("data: flores empty text", run_data("flores_empty_text"), ["flores200/eng_Latn/devtest.jsonl:4", "'text'", "empty"]),
    ("data: flores id twice (same text)", run_data("flores_dup_id_source"), ["flores200/ces_Latn/devtest.jsonl", "id 1", "twice"]),
    ("data: flores id twice (other text)", run_data("flores_dup_id_target"), ["flores200/jpn_Jpan/devtest.jsonl", "id 2", "twice"]),
    # --- internal errors that were not one line --------------------------------------------------
    ("--name of 300 characters", run_with("--name", "r" * 300), ["--name", "300 characters", "at most 128"]),
    ("data: a Latin-1 file", run_data("latin1"), ["belebele/ces_Latn/test.jsonl:1", "not UTF-8", "byte 0xe1"]),
    ("data: a field of two types", run_data("mixed_types"), ["belebele/ces_Latn/test.jsonl:2", "'question_number'", "a string", "a number"]),
    ("baseline --out is a folder", lambda w: ["baseline", str(w["misc"]["adapter_empty"]), "--out", str(w["misc"]["adapter_empty"])],
     ["--out", "adapter-empty", "is a folder"]),
    ("check: baseline of another suite and model", lambda w: ["check", str(w["runs"]["smoke"]), "--against", str(w["runs"]["paper15_baseline"])],
     ["suite 'paper15'", "'smoke'", "model 'other-model'", "'tiny-model'"]),
    ("run --min-effect acc=-1", run_with("--min-effect", "acc=-1"), ["acc=-1", "> 0"]),
    ("run --min-effect acx=0.1", run_with("--min-effect", "acx=0.1"), ["'acx'", "acc", "bleu"]),
    ("report --min-effect bleu", lambda w: ["report", "/no/such/run", "--min-effect", "bleu"], ["'bleu'", "bleu=1"]),
    # --- issue 25: an adapter is checked against the base model it is applied to -------------------
    ("eval --adapter of another base model", lambda w: [*eval_with()(w), "--adapter", str(w["adapters"]["other_base"])],
     ["other-base", "'Qwen/Qwen2.5-0.5B-Instruct'", "base_model_name_or_path", "--model"]),
    ("eval --adapter of another architecture", lambda w: [*eval_with()(w), "--adapter", str(w["adapters"]["other_arch"])],
     ["other-arch", "'transformer.h.0.attn.c_attn'", "does not have", "another architecture"]),
    ("eval --adapter of another model size", lambda w: [*eval_with()(w), "--adapter", str(w["adapters"]["other_size"])],
     ["other-size", "lora_A.weight has shape [4, 64]", "q_proj.weight has shape [128, 32]"]),
    ("report: a hand-edited scores.json", lambda w: ["report", str(w["runs"]["tampered"])],
     ["tampered-run/eval/adapter/belebele_cs/scores.json is damaged", "integrity record", "cannot be trusted", "harness run"]),
    ("check: a hand-edited scores.json", lambda w: ["check", str(w["runs"]["tampered"]), "--against", str(w["runs"]["smoke_baseline"])],
     ["tampered-run/eval/adapter/belebele_cs/scores.json is damaged", "cannot be trusted"]),
    # --- issue 25: a baseline's tolerances and values are finite and non-negative -------------------
    *[(f"baseline --noise-multiple {v}", (lambda v: lambda w: ["baseline", str(w["runs"]["smoke"]), "--out", "x.json", "--noise-multiple", v])(v),
       ["--noise-multiple", "finite number > 0"]) for v in ("nan", "inf", "-1", "0")],
    *[(f"check: baseline with {what}", (lambda name: lambda w: ["check", str(w["runs"]["smoke"]), "--against", str(w["runs"][f"baseline_{name}"])])(name), parts)
      for what, name, parts in [
          ("a NaN tolerance", "nan_tolerance", ["nan_tolerance.json", "tolerance of 'acc' is nan", "finite number >= 0"]),
          ("an infinite tolerance", "inf_tolerance", ["inf_tolerance.json", "tolerance of 'acc' is inf", "finite number >= 0"]),
          ("a negative tolerance", "negative_tolerance", ["negative_tolerance.json", "tolerance of 'acc' is -0.1", ">= 0"]),
          ("a tolerance in quotes", "text_tolerance", ["text_tolerance.json", "tolerance of 'acc' is '0.1'", "finite number"]),
          ("a NaN cell value", "nan_value", ["nan_value.json", "'adapter/belebele_cs/acc' has value nan", "finite number"]),
          ("an infinite cell value", "inf_value", ["inf_value.json", "'adapter/belebele_cs/acc' has value -inf", "finite number"]),
          ("n_samples in words", "text_n_samples", ["text_n_samples.json", "n_samples 'four'", "an integer >= 0"]),
          ("a min in words", "text_min", ["text_min.json", "min 'half'", "finite number"]),
          ("a multiple in words", "text_multiple", ["text_multiple.json", "multiple is 'three'", "finite number > 0"]),
      ]],
    ("check --update: baseline without its noise", lambda w: ["check", str(w["runs"]["smoke"]), "--against", str(w["runs"]["baseline_no_noise"]), "--update"],
     ["no_noise.json", "'noise'", "--update", "harness baseline"]),
    ("run --min-effect acc=inf", run_with("--min-effect", "acc=inf"), ["acc=inf", "finite number > 0"]),
    # --- issue 25: the internal errors, now one line before any model ----------------------------
    *[(f"comparison: max_steps {what}", (lambda extra: lambda w: [*run_with("--trainer", "sdrrl,english_sft")(w), *extra(w)])(extra),
       ["max_steps", shown_value]) for what, extra, shown_value in [
          ("abc", lambda w: ["--set", "max_steps=abc"], "'abc'"),
          ("1.5", lambda w: ["--set", "max_steps=1.5"], "'1.5'"),
          ("a list in a config file", lambda w: ["--config", str(w["misc"]["max_steps_list_yaml"])], "[1]"),
          ("null in a config file", lambda w: ["--config", str(w["misc"]["max_steps_null_yaml"])], "None"),
      ]],
    ("--seeds 5000000000", run_with("--seeds", "0,5000000000"), ["--seeds", "'0,5000000000'", "[0, 4294967295]"]),
    ("report --out is a file", lambda w: ["report", str(w["runs"]["smoke"]), "--out", str(w["models"]["a_file"])], ["--out", "a-file", "is a file"]),
    ("report --out read-only", lambda w: ["report", str(w["runs"]["smoke"]), "--out", "/sys/sdrrl-report"], ["--out", "/sys/sdrrl-report", "not a writable folder"]),
    ("baseline --out read-only", lambda w: ["baseline", str(w["runs"]["smoke"]), "--out", "/sys/sdrrl-baseline.json"], ["--out", "/sys", "not a writable folder"]),
    ("check --update onto a read-only folder", lambda w: ["check", str(w["runs"]["smoke"]), "--against", "/sys/sdrrl-baseline.json", "--update"],
     ["check --update: baseline", "/sys", "not a writable folder"]),
    ("--include-path with a Latin-1 YAML (run)", lambda w: [*run_with()(w), "--include-path", str(w["misc"]["tasks_latin1"])],
     ["mytask.yaml", "not UTF-8", "byte 0xe9"]),
    ("--include-path with a Latin-1 YAML (list tasks)", lambda w: ["list", "tasks", "--include-path", str(w["misc"]["tasks_latin1"])],
     ["mytask.yaml", "not UTF-8"]),
    ("eval --tasks arc_easy offline", eval_with("--tasks", "arc_easy"), ["'arc_easy'", "'allenai/ai2_arc'", "hub", "harness fetch"]),
    # --- issue 25: accepted before, refused now -----------------------------------------------
    ("--seeds ''", run_with("--seeds", ""), ["--seeds", "e.g. 0,1,2"]),
    ("--seeds in Arabic-Indic digits", run_with("--seeds", "\u0660,\u0661"), ["--seeds", "'\u0660'"]),
    ("--seed in Arabic-Indic digits", run_with("--seed", "\u0661"), ["--seed", "invalid integer value", "'\u0661'"]),
    ("--limit 1_0", run_with("--limit", "1_0"), ["--limit", "invalid integer value", "'1_0'"]),
    ("set epochs=010", setting("epochs=010"), ["sdrrl.epochs", "'010'", "an integer"]),
    ("--config epochs: 010", run_config("octal_yaml"), ["epochs", "'010'", "an integer"]),
    ("set epochs=1000000000", setting("epochs=1000000000"), ["sdrrl.epochs", "1000000000", "[0, 1000]"]),
    ("--steps 1000000000", run_with("--steps", "1000000000"), ["--steps", "1000000000", "[1, 10000000]"]),
    ("--set a key twice", run_with("--set", "epochs=1", "--set", "epochs=2"), ["--set 'epochs'", "twice", "'1'", "'2'"]),
    ("--steps with --trainer base", lambda w: ["run", "--trainer", "base", "--suite", "smoke", "--model", str(w["model"]), "--steps", "5"],
     ["--steps 5", "'base'", "trains"]),
    ("--seed beside --seeds", run_with("--seed", "1", "--seeds", "0,1"), ["--seed 1", "--seeds '0,1'"]),
    ("--judge-engine tensorrt without --judge", run_with("--judge-engine", "tensorrt"), ["'tensorrt'", "hf", "vllm"]),
    ("--judge-engine hf without --judge", run_with("--judge-engine", "hf"), ["--judge-engine 'hf'", "--judge MODEL"]),
    ("data: a number as the question", run_data("numeric_text"), ["belebele/ces_Latn/test.jsonl:2", "'question'", "a number", "a text"]),
    ("data: a list as the question", run_data("list_question"), ["belebele/ces_Latn/test.jsonl:2", "'question'", "a list"]),
    ("data: a key twice in one record", run_data("key_twice"), ["belebele/ces_Latn/test.jsonl:1", "'question'", "twice"]),
    ("set target_modules=foo_proj", setting("target_modules=foo_proj"), ["'foo_proj'", "no layer", "q_proj", "v_proj"]),
    # liger-kernel is not installed on these machines (it needs Triton and a CUDA GPU)
    ("set kernels=liger without liger-kernel", setting("kernels=liger"), ["kernels=liger", "not installed", "pip install -e '.[gpu]'", "kernels=none"]),
    ("set kernels=fused", setting("kernels=fused"), ["kernels", "'fused'", "none, liger"]),
    # --- issue 25: messages that now name the bad value and the valid ones -------------------------
    ("--name -x", run_with("--name", "-x"), ["--name", "--name=VALUE"]),
    ("--config key 1: 2", run_config("int_key_yaml"), ["int_key_yaml", "key 1", "setting name"]),
    ("set translate_sft.epochs on an sdrrl run", setting("translate_sft.epochs=2"), ["'translate_sft.epochs'", "'translate_sft'", "does not train", "--trainer"]),
    ("comparison: max_steps=-3", run_with("--trainer", "sdrrl,english_sft", "--set", "max_steps=-3"), ["max_steps", "-3", "[0, 10000000]"]),
    ("eval --adapter is a file", lambda w: [*eval_with()(w), "--adapter", str(w["models"]["a_file"])], ["a-file", "is a file", "adapter folder"]),
    ("data: a pretty-printed JSON array", run_data("pretty_array"), ["belebele/ces_Latn/test.jsonl:1", "pretty-printed", "one JSON object per line"]),
    ("data: a folder as the data file", run_data("folder_as_file"), ["belebele/ces_Latn/test.jsonl", "is a folder"]),
    ("data: a symlink loop as the data file", run_data("symlink_loop"), ["belebele/ces_Latn/test.jsonl", "leads nowhere"]),
    ("data: FLORES ids as strings in one file", run_data("flores_string_ids"), ["jpn_Jpan/devtest.jsonl", "strings", "numbers", "same ids"]),
    ("eval --out onto a run of another model", lambda w: [*eval_with()(w), "--out", str(w["runs"]["smoke"])],
     ["--out", "smoke-run", "model 'tiny-model'", "another model's", "give another --out"]),
]


# (id, environment: name -> value (None: unset), argv, parts the one line must hold)
ENV_CASES = [
    ("SDRRL_HOME is a file", lambda w: {"SDRRL_HOME": str(w["models"]["a_file"])}, run_with(), ["SDRRL_HOME", "a-file", "is a file"]),
    ("SDRRL_EVAL_CACHE is a file", lambda w: {"SDRRL_EVAL_CACHE": str(w["models"]["a_file"])}, eval_with(), ["SDRRL_EVAL_CACHE", "a-file", "is a file"]),
    ("a read-only HOME without SDRRL_HOME", lambda w: {"HOME": "/sys/sdrrl-home", "SDRRL_HOME": None}, run_with(),
     ["default cache folder", "/sys/sdrrl-home/.cache/sdrrl-harness", "not a writable folder", "SDRRL_HOME"]),
    ("SDRRL_DATA_DIR pointing nowhere", lambda w: {"SDRRL_DATA_DIR": "/no/such/data"}, run_with(), ["$SDRRL_DATA_DIR", "'/no/such/data'", "not a folder"]),
]


@pytest.mark.parametrize("case, env, argv, parts", ENV_CASES, ids=[c[0] for c in ENV_CASES])
def test_a_bad_environment_fails_in_one_line_before_any_model_loads(case, env, argv, parts, world, no_model_loads, capsys, monkeypatch):
    for name, value in env(world).items():
        monkeypatch.delenv(name, raising=False) if value is None else monkeypatch.setenv(name, value)
    code, err, seconds = _call(argv(world), capsys)
    _TABLE.append((case, seconds, err))
    assert code == 2 and "Traceback" not in err and len(err.splitlines()) == 1 and err.startswith("harness: error:"), err
    for part in parts:
        assert part in err, f"{part!r} not in: {err}"


@pytest.mark.parametrize("case, argv, parts", CASES, ids=[c[0] for c in CASES])
def test_bad_input_fails_in_one_line_before_any_model_loads(case, argv, parts, world, no_model_loads, capsys):
    code, err, seconds = _call(argv(world), capsys)
    _TABLE.append((case, seconds, err))
    assert code == 2, f"exit {code}: {err}"
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("harness: error:"), err
    for part in parts:
        assert part in err, f"{part!r} not in: {err}"


def test_the_hook_fires_when_the_input_is_good(world, no_model_loads, capsys):
    """The guard the battery relies on: a good run gets past the plan stage and trips the hook."""
    with pytest.raises(ModelLoaded):
        main(run_with("--runs-dir", "runs")(world))
    # and a model without a chat template is fine for the untrained base model
    with pytest.raises(ModelLoaded):
        main(run_model("no_chat_template", trainer="base")(world))


# Values near the cases above that are accepted on purpose (why: in each id). Each gets past the
# plan stage and trips a hook, which also shows the hooks fire for these very argv shapes.
ACCEPTED = [
    ("--langs smoke,cs: a set and a code it holds are a union", run_with("--langs", "smoke,cs")),
    ("--ablations with one trainer of presets and one without: adds sdrrl's", lambda w: [
        *run_with("--trainer", "sdrrl,english_sft", "--ablations", "--runs-dir", "runs")(w)]),
    ("--config with a small alias: what it expands to is a settings file's size", run_config("small_alias_yaml")),
    ("eval --adapter that fits the model it names", lambda w: [*eval_with()(w), "--adapter", str(w["adapters"]["fits"])]),
    ("eval --out onto a run of the same model: a base evaluation added to it", lambda w: [*eval_with()(w), "--out", str(w["same_model_run"])]),
    ("eval --adapter naming a base folder gone since: its module shapes fit", lambda w: [
        *eval_with()(w), "--adapter", str(w["adapters"]["gone_base"])]),
]


@pytest.mark.parametrize("case, argv", ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_accepted_on_purpose_reaches_the_model(case, argv, world, no_model_loads, capsys):
    with pytest.raises(ModelLoaded):
        main(argv(world))
    assert "harness: error" not in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    setting("lora_rank=" + "7" * 100_000),  # past Python's 4300-digit limit for int()
    setting("translator=" + "x" * 100_000),
    run_config("bomb_yaml"),
], ids=["100000 digits", "100000 characters", "alias bomb"])
def test_a_huge_value_is_quoted_cut_short(argv, world, no_model_loads, capsys):
    code, err, _ = _call(argv(world), capsys)
    assert code == 2 and err.startswith("harness: error:") and len(err) < 400, err[:1000]


def test_what_must_come_from_outside_is_checked_before_the_run_folder_is_written(world, no_model_loads, capsys, tmp_path):
    """The doctor's checks run with the others, before anything is written; a built training set
    no longer needs the instructions, unless --force rebuilds it."""
    argv = setting("instructions=no-such-org/no-such-set")(world) + ["--name", "doc"]
    code, err, _ = _call(argv, capsys)
    assert code == 2 and "instructions: no-such-org/no-such-set not here" in err
    assert not (tmp_path / "runs" / "doc").exists()
    (tmp_path / "runs" / "doc" / "data").mkdir(parents=True)
    (tmp_path / "runs" / "doc" / "data" / "train.jsonl").write_text("")
    code, err, _ = _call([*argv, "--force", "data"], capsys)
    assert code == 2 and "instructions: no-such-org/no-such-set not here" in err
    with pytest.raises(ModelLoaded):
        main(argv)


def test_battery_covers_the_issue_and_forty_more():
    assert len(CASES) >= 14 + 40


@pytest.fixture(scope="module", autouse=True)
def _write_table():
    yield
    out = os.environ.get("BATTERY_TABLE")
    if out and _TABLE:
        lines = ["| case | seconds to fail | message |", "|---|---:|---|"]
        lines += [f"| {c} | {s:.2f} | {m.replace('|', '/')} |" for c, s, m in _TABLE]
        Path(out).write_text("\n".join(lines) + "\n", encoding="utf-8")
