"""Language fidelity, output hygiene and the one extraction rule (no model needed)."""

from __future__ import annotations

import pytest

from harness.evaluation import genmetrics, hygiene, langid
from harness.evaluation.registry import get_task
from tasks.flores200 import utils as flores_utils


@pytest.mark.parametrize("raw, expected", [
    ("Vědci oznámili objev.", "Vědci oznámili objev."),
    ("Sure! Here is the translation:\n\nVědci oznámili objev.", "Vědci oznámili objev."),
    ("Here's the translation in Czech:\nCzech: \"Vědci oznámili objev.\"", "Vědci oznámili objev."),
    ("**Vědci oznámili objev.**\nEnglish: next", "Vědci oznámili objev."),
    ("Certainly.\nTranslation:\n„Vědci oznámili objev.“", "Vědci oznámili objev."),
    ("Sure! Here is the translation:", ""),
    ("   \n\n", ""),
])
def test_extraction_rule(raw, expected):
    assert hygiene.extract_translation(raw, ("Czech",)) == expected


def test_flores_scores_the_extracted_translation_for_every_system():
    doc = {"target": "Vědci oznámili objev.", "target_config": "ces_Latn", "bleu_tokenize": "13a",
           "bleu_fallback_tokenize": "", "chrf_char_order": 6, "chrf_word_order": 2}
    chatty = flores_utils.process_results(doc, ["Sure! Here is the translation:\nCzech: Vědci oznámili objev."])
    plain = flores_utils.process_results(doc, ["Vědci oznámili objev."])
    assert chatty == plain and chatty["bleu"][1] == "Vědci oznámili objev."


def test_preamble_flags():
    assert hygiene.is_preamble("Sure! Here is the translation:")
    assert hygiene.is_preamble("Translation: Vědci oznámili objev.")
    assert not hygiene.is_preamble("Vědci oznámili objev.")
    assert not hygiene.is_preamble("Surely the museum opens at nine.")  # a formula is a whole word
    assert not hygiene.is_preamble("Translations of this book sold well.")


def test_language_id_on_the_fixture_languages():
    assert langid.detect("Vědci v pondělí oznámili objev nového druhu žáby v deštném pralese.") == "cs"
    assert langid.detect("科学者たちは月曜日に新種のカエルの発見を発表した。") == "ja"
    assert langid.detect("Jeg bor i Oslo og jobber på et sykehus i sentrum av byen.") == "no"  # nb -> no
    assert langid.detect("  ") == "" and langid.lang_match("", "cs") == 0.0


def rows(*raws):
    return [{"doc_id": i, "raw_output": raw, "metrics": {}} for i, raw in enumerate(raws)]


def test_enrich_adds_item_metrics_and_their_means():
    task = get_task("instruct_cs")
    items = rows("Jistě! Zde je odpověď:\nRostlinu zalévejte jednou týdně a dejte jí dost světla.",
                 "Water the plant once a week and give it plenty of light.", "")
    metrics = {"answer_words": 5.0}
    counts = {items[0]["raw_output"]: 16, items[1]["raw_output"]: 12, "": 0}
    genmetrics.enrich(task, items, metrics, genmetrics.GenSettings(max_gen_toks=16, count_tokens=counts.__getitem__))
    assert [r["metrics"]["lang_match"] for r in items] == [1.0, 0.0, 0.0]
    assert [r["detected_lang"] for r in items] == ["cs", "en", ""]
    assert [r["metrics"]["empty"] for r in items] == [0.0, 0.0, 1.0]
    assert [r["metrics"]["cut_at_limit"] for r in items] == [1.0, 0.0, 0.0]
    assert [r["metrics"]["preamble"] for r in items] == [1.0, 0.0, 0.0]  # a first line ending in ":"
    assert metrics["lang_match"] == pytest.approx(1 / 3) and metrics["answer_words"] == 5.0  # lm-eval's own stays
    assert set(metrics) == {"answer_words", "lang_match", "empty", "cut_at_limit", "preamble", "degenerate"}


def test_enrich_judges_flores_on_the_extracted_translation_and_skips_comprehension():
    task = get_task("flores200_en-cs")
    items = [{"doc_id": 0, "raw_output": "Sure! Here is the translation:\nVědci v pondělí oznámili objev nového druhu.",
              "prediction": "Vědci v pondělí oznámili objev nového druhu.", "reference": "x", "metrics": {}}]
    metrics: dict = {}
    genmetrics.enrich(task, items, metrics, genmetrics.GenSettings(max_gen_toks=None))
    assert metrics == {"lang_match": 1.0, "empty": 0.0, "preamble": 1.0, "degenerate": 0.0}  # no token counter: no cut_at_limit
    mc: dict = {}
    genmetrics.enrich(get_task("belebele_cs"), [{"metrics": {}}], mc, genmetrics.GenSettings(max_gen_toks=8))
    assert mc == {}


INSTRUCTION = "Napište krátký recept na bramborovou polévku pro čtyři osoby."


@pytest.mark.parametrize("text, prompt, expected", [
    ("Oloupejte brambory, nakrájejte je a vařte dvacet minut v osolené vodě s cibulí.", INSTRUCTION, False),
    (INSTRUCTION, INSTRUCTION, True),  # the instruction repeated back: in Czech, yet no answer
    ("Napište krátký recept na bramborovou polévku.", INSTRUCTION, True),  # most of it copied
    ("polévka polévka polévka polévka polévka polévka polévka polévka polévka", INSTRUCTION, True),
    ("a to je a to je a to je a to je a to je", "", True),  # a looping phrase
    ("科学者たちは月曜日に新種のカエルの発見を発表した。", "", False),
    ("はいはいはいはいはいはいはいはいはいはいはいはい", "", True),  # characters, for text without spaces
    ("Vědci oznámili objev.", "Scientists announced a discovery.", False),  # a translation is no echo
    ("", INSTRUCTION, False),  # empty is its own flag
])
def test_degenerate_flags_echoes_and_loops_but_not_answers(text, prompt, expected):
    assert hygiene.is_degenerate(text, prompt) is expected


def test_enrich_flags_an_echo_that_lang_match_counts_as_czech():
    task = get_task("instruct_cs")
    items = [{"doc_id": 0, "raw_output": INSTRUCTION, "instruction": INSTRUCTION, "metrics": {}},
             {"doc_id": 1, "raw_output": "Oloupejte brambory a vařte je dvacet minut s cibulí a solí.",
              "instruction": INSTRUCTION, "metrics": {}}]
    metrics: dict = {}
    genmetrics.enrich(task, items, metrics, genmetrics.GenSettings(max_gen_toks=None))
    assert [r["metrics"]["lang_match"] for r in items] == [1.0, 1.0]
    assert [r["metrics"]["degenerate"] for r in items] == [1.0, 0.0]
    assert "degenerate" in genmetrics.LOWER_IS_BETTER and genmetrics.VERSION == 2


def test_fewshot_examples_never_come_from_devtest():
    from harness.core.errors import HarnessError

    with pytest.raises(HarnessError, match=r"few-shot examples must not come from the evaluated split 'devtest'"):
        flores_utils.load(family="flores200_fewshot", source_config="eng_Latn", target_config="ces_Latn",
                          suite_data_dir="fixtures", fewshot_split="devtest")
    loaded = flores_utils.load(family="flores200_fewshot", source_config="eng_Latn", target_config="ces_Latn",
                               suite_data_dir="fixtures", fewshot_split="dev")
    assert set(loaded) == {"devtest", "dev"} and not {d["source"] for d in loaded["dev"]} & {d["source"] for d in loaded["devtest"]}
