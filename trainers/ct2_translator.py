"""NLLB through CTranslate2 (translator `nllb-ct2`): int8 on CPU, float16 on a GPU.

The HF checkpoint (hub id or local folder, safetensors only) is converted once per compute type
into `<SDRRL_HOME or ~/.cache/sdrrl-harness>/ct2/`, beside the built-in models, and reused after.
Sentences are split for their script (trainers/sentences.py) and batched by length: CTranslate2
sorts a call's inputs by length and cuts them into batches of at most `max_batch_tokens` tokens.
Same interface, tokenizer and stopping rule as `NLLBTranslator`; tests/test_ct2_translator.py checks
that both give the same translations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError, unknown
from harness.core.langs import Language
from harness.core.models import cache_root, resolve_model
from harness.core.runstore import atomic_dir, sha256_json
from trainers.sentences import translate_by_sentence
from trainers.translator_base import DEFAULT_NLLB_MODEL, Translator

DEVICES = ("auto", "cpu", "cuda")
COMPUTE_TYPES = ("auto", "int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16", "float16", "bfloat16", "float32")


def _import_ctranslate2():
    try:
        import ctranslate2
    except ImportError:
        raise HarnessError("translator 'nllb-ct2' needs the PyPI package ctranslate2; run scripts/install.sh") from None
    return ctranslate2


def converted_model(source: Path, name: str, quantization: str) -> Path:
    """The CTranslate2 conversion of the HF folder `source`, made on first use and cached.

    The key covers the source's files (names and sizes), the quantization and the converter's
    version, so a changed checkpoint or converter converts again."""
    ctranslate2 = _import_ctranslate2()
    files = {p.name: p.stat().st_size for p in sorted(source.iterdir()) if p.is_file()}
    key = sha256_json({"source": str(source), "files": files, "quantization": quantization, "ctranslate2": ctranslate2.__version__})
    target = cache_root() / "ct2" / f"{re.sub(r'[^A-Za-z0-9._-]+', '--', name).strip('-')}-{quantization}-{key[:12]}"
    if (target / "model.bin").exists():
        return target
    from ctranslate2.converters import TransformersConverter

    class SafetensorsConverter(TransformersConverter):
        def load_model(self, model_class, model_name_or_path, **kwargs):
            return model_class.from_pretrained(model_name_or_path, use_safetensors=True, **kwargs)

    try:
        with atomic_dir(target) as tmp:  # trust_remote_code stays at its default, False
            SafetensorsConverter(str(source)).convert(str(tmp), quantization=quantization, force=True)
    except (OSError, ValueError) as exc:  # no safetensors weights, an architecture CTranslate2 lacks
        raise HarnessError(f"{name!r} could not be converted for CTranslate2 ({type(exc).__name__}: {exc}); "
                           "it needs an NLLB/M2M100 folder with safetensors weights") from None
    return target


@dataclass
class CT2NLLBTranslator(Translator):
    """An NLLB-200 model run by CTranslate2; languages by their FLORES-200 codes."""

    model_name: str = DEFAULT_NLLB_MODEL  # hub id or local folder
    device: str = "auto"  # auto: cuda where CTranslate2 sees a GPU, else cpu
    compute_type: str = "auto"  # auto: int8 on cpu, float16 on cuda
    beam_size: int = 4
    max_length: int = 512  # tokens in, and out (as NLLBTranslator's `generate` max_length)
    max_batch_tokens: int = 4096
    threads: int = 0  # CPU threads; 0: CTranslate2's default
    _translator: Any = field(default=None, init=False, repr=False)
    _tokenizer: Any = field(default=None, init=False, repr=False)

    def __post_init__(self):
        if self.device not in DEVICES:
            raise unknown("nllb-ct2 device", self.device, DEVICES)
        if self.compute_type not in COMPUTE_TYPES:
            raise unknown("nllb-ct2 compute type", self.compute_type, COMPUTE_TYPES)
        self.model_name = self.model_name or DEFAULT_NLLB_MODEL

    def _resolve_device(self) -> tuple[str, str]:
        device = self.device
        if device == "auto":
            device = "cuda" if _import_ctranslate2().get_cuda_device_count() > 0 else "cpu"
        compute_type = self.compute_type
        if compute_type == "auto":
            compute_type = "float16" if device == "cuda" else "int8"
        return device, compute_type

    @property
    def id(self) -> str:
        # The compute type changes the translations (int8 vs float16), so it is part of the cache key.
        return f"nllb-ct2:{self.model_name}:{self._resolve_device()[1]}:beams={self.beam_size}"

    def _load(self):
        if self._translator is None:
            ctranslate2 = _import_ctranslate2()
            from transformers import AutoTokenizer

            device, compute_type = self._resolve_device()
            try:
                source = resolve_model(self.model_name)
            except HarnessError as exc:
                raise HarnessError(f"{exc}; or use translator=nllb|lexicon|file|llm") from None
            self._tokenizer = AutoTokenizer.from_pretrained(source)
            model_dir = converted_model(source, self.model_name, compute_type)
            self._translator = ctranslate2.Translator(str(model_dir), device=device, compute_type=compute_type, intra_threads=self.threads)
        return self._translator, self._tokenizer

    def translate_sentences(self, sentences: list[str], src: Language, tgt: Language) -> list[str]:
        """One translation per sentence, no splitting."""
        translator, tokenizer = self._load()
        tokenizer.src_lang = src.flores
        encoded = tokenizer(sentences, truncation=True, max_length=self.max_length)["input_ids"]
        results = translator.translate_batch(
            [tokenizer.convert_ids_to_tokens(ids) for ids in encoded],
            target_prefix=[[tgt.flores]] * len(sentences),
            max_batch_size=self.max_batch_tokens,
            batch_type="tokens",
            beam_size=self.beam_size,
            max_input_length=0,  # the tokenizer truncated already
            # transformers' max_length counts the decoder start token, CTranslate2's does not.
            max_decoding_length=self.max_length - 1,
        )
        return [
            tokenizer.decode(tokenizer.convert_tokens_to_ids(result.hypotheses[0]), skip_special_tokens=True).strip()
            for result in results
        ]

    def _translate(self, texts: list[str], src: Language, tgt: Language) -> list[str]:
        return translate_by_sentence(texts, tgt, lambda sentences: self.translate_sentences(sentences, src, tgt))
