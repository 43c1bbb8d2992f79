"""The translator interface both translator modules implement (trainers.translators,
trainers.ct2_translator): a module below both, so neither imports the other to reach it.

    Translator.translate(texts, src, tgt) -> translations, one per text, in order
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from harness.core.langs import Language

DEFAULT_NLLB_MODEL = "facebook/nllb-200-distilled-600M"

Job = tuple[list[str], Language, Language]  # texts, source language, target language


class Translator(ABC):
    """Translate lists of texts between harness languages."""

    @property
    @abstractmethod
    def id(self) -> str:
        """Identifies the translator and its model/data: part of the cache key."""

    @abstractmethod
    def _translate(self, texts: list[str], src: Language, tgt: Language) -> list[str]:
        """Translate non-empty texts, src != tgt."""

    def translate(self, texts: list[str], src: Language, tgt: Language) -> list[str]:
        return self.translate_jobs([(texts, src, tgt)])[0]

    def translate_jobs(self, jobs: list[Job]) -> list[list[str]]:
        """Several (texts, src, tgt) requests at once; a translator that loads a model per call
        (LLMTranslator) overrides this to do one call. Empty texts and src == tgt pass through."""
        results: list[list[str]] = []
        for texts, src, tgt in jobs:
            if src == tgt:
                results.append(list(texts))
                continue
            todo = [i for i, t in enumerate(texts) if t.strip()]
            out = [""] * len(texts)
            for i, translated in zip(todo, self._translate([texts[i] for i in todo], src, tgt) if todo else []):
                out[i] = translated
            results.append(out)
        return results
