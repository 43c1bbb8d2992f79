"""The CTranslate2 NLLB translator against the transformers one, on a tiny random NLLB-shaped model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.core.errors import HarnessError
from harness.core.langs import LANGUAGES
from tiny_nllb import build_tiny_nllb
from trainers.ct2_translator import CT2NLLBTranslator
from trainers.sentences import join_translation, split_for_translation
from trainers.translators import NLLBTranslator, make_translator

EN, FR, JA, TH = (LANGUAGES[c] for c in ("en", "fr", "ja", "th"))
# English texts that both translators cut into the same sentences (". " between them), of mixed
# lengths so that batching by length reorders them.
TEXTS = [
    "The cat sees the dog. The dog runs to the house.",
    "water",
    "A big red house near the river, always. People speak a language!",
    "Small blue tree.\nThe morning question, the evening answer.",
    "the a cat dog sees runs to from house tree water sky blue red big small the a cat dog sees runs",
]
MAX_LENGTH = 24


@pytest.fixture(scope="module")
def tiny_nllb(tmp_path_factory) -> Path:
    return build_tiny_nllb(tmp_path_factory.mktemp("tiny-nllb") / "model")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SDRRL_HOME", str(tmp_path / "home"))


def ct2(model: Path, beams: int = 1) -> CT2NLLBTranslator:
    return CT2NLLBTranslator(str(model), device="cpu", compute_type="float32", beam_size=beams, max_length=MAX_LENGTH)


@pytest.fixture(scope="module")
def hf_translations(tiny_nllb) -> dict[int, list[str]]:
    """transformers' `generate` through NLLBTranslator, by beam size (batches of 2: padding included)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model on a busy machine: 2 threads spent 30 s waiting on each other, 1 takes 1 s
    try:
        return {beams: NLLBTranslator(str(tiny_nllb), batch_size=2, num_beams=beams, max_length=MAX_LENGTH).translate(TEXTS, EN, FR) for beams in (1, 4)}
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("beams", [1, 4])
def test_ct2_translations_equal_transformers_generate(tiny_nllb, hf_translations, beams):
    expected = hf_translations[beams]
    assert len(set(expected)) == len(TEXTS) and all(expected)  # the random model's outputs tell inputs apart
    assert ct2(tiny_nllb, beams).translate(TEXTS, EN, FR) == expected


def test_a_broken_conversion_is_caught(tiny_nllb, hf_translations, monkeypatch):
    """The comparison above has power: positions off by NLLB's offset of 2 change the outputs."""
    from ctranslate2.converters.transformers import M2M100Loader

    monkeypatch.setattr(M2M100Loader, "set_position_encodings", lambda self, spec, module: setattr(spec, "encodings", module.weights))
    assert ct2(tiny_nllb).translate(TEXTS, EN, FR) != hf_translations[1]


def test_conversion_is_cached_per_compute_type(tiny_nllb, tmp_path):
    ct2(tiny_nllb).translate(["water"], EN, FR)
    int8 = CT2NLLBTranslator(str(tiny_nllb), device="cpu", max_length=MAX_LENGTH)
    assert int8.id.endswith(":int8:beams=4")  # CPU default
    int8.translate(["water"], EN, FR)
    converted = sorted(p.name for p in (tmp_path / "home" / "ct2").iterdir())
    assert sorted(name.rsplit("-", 2)[1] for name in converted) == ["float32", "int8"]  # <model>-<type>-<key>
    mtimes = [p.stat().st_mtime_ns for p in (tmp_path / "home" / "ct2").glob("*/model.bin")]
    ct2(tiny_nllb).translate(["The dog."], EN, FR)  # a new translator: no second conversion
    assert [p.stat().st_mtime_ns for p in (tmp_path / "home" / "ct2").glob("*/model.bin")] == mtimes


def test_registered_by_name(tiny_nllb):
    translator = make_translator("nllb-ct2", model=str(tiny_nllb))
    assert isinstance(translator, CT2NLLBTranslator) and translator.id.startswith(f"nllb-ct2:{tiny_nllb}:")


def test_bad_settings_and_missing_model_fail_in_one_line(tmp_path):
    with pytest.raises(HarnessError, match="unknown nllb-ct2 compute type 'int4'; valid: .*float16.*int8"):
        CT2NLLBTranslator(compute_type="int4")
    with pytest.raises(HarnessError, match="unknown nllb-ct2 device 'tpu'; valid: auto, cpu, cuda"):
        CT2NLLBTranslator(device="tpu")
    missing = CT2NLLBTranslator(str(tmp_path / "no-such-nllb"), device="cpu")
    with pytest.raises(HarnessError, match="no-such-nllb.*translator=nllb"):
        missing.translate(["Hello."], EN, FR)


def test_a_folder_without_safetensors_is_refused_in_one_line(tiny_nllb, tmp_path):
    folder = tmp_path / "bin-only"
    shutil.copytree(tiny_nllb, folder, ignore=shutil.ignore_patterns("*.safetensors"))
    with pytest.raises(HarnessError, match="bin-only.*could not be converted.*safetensors"):
        CT2NLLBTranslator(str(folder), device="cpu").translate(["Hello."], EN, FR)
    assert not any((tmp_path / "home" / "ct2").glob("*/model.bin"))  # nothing half-converted left behind


@pytest.mark.parametrize(
    "text, sentences",
    [
        ("今日は晴れ。明日は雨！本当？", ["今日は晴れ。", "明日は雨！", "本当？"]),
        ("「行く。」と言った。", ["「行く。」", "と言った。"]),
        ("すごい！？次です。", ["すごい！？", "次です。"]),
        ("สวัสดีครับ วันนี้อากาศดีมาก", ["สวัสดีครับ", "วันนี้อากาศดีมาก"]),
        ("ราคา 100 บาท", ["ราคา 100 บาท"]),  # a space next to a digit is not between Thai words
        ("ខ្ញុំទៅផ្សារ។គាត់នៅផ្ទះ។ យើងញ៉ាំបាយ៕", ["ខ្ញុំទៅផ្សារ។", "គាត់នៅផ្ទះ។", "យើងញ៉ាំបាយ៕"]),
        ("It costs 3.5 euros. Fine! Really?", ["It costs 3.5 euros.", "Fine!", "Really?"]),
        ("He said \"stop.\" Then left...", ["He said \"stop.\"", "Then left..."]),
        ("no mark at all", ["no mark at all"]),
    ],
)
def test_sentences_split_for_their_script(text, sentences):
    assert split_for_translation(text) == [sentences]


def test_lines_survive_and_sentences_join_for_the_target_script():
    text = "First one. Second one.\n\nThird."
    lines = split_for_translation(text)
    assert lines == [["First one.", "Second one."], [], ["Third."]]
    assert join_translation(lines, EN) == text
    assert join_translation([["今日は晴れ。", "明日は雨。"]], JA) == "今日は晴れ。明日は雨。"
    assert join_translation([["สวัสดีครับ", "วันนี้อากาศดี"]], TH) == "สวัสดีครับ วันนี้อากาศดี"
