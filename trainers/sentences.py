"""Sentence splitting for sentence-level MT models, for scripts with and without spaces.

    split_for_translation(text) -> sentences per line;  join_translation(lines, tgt) -> text

NLLB translates long paragraphs badly, so a text is cut into lines, then sentences; the
translations are joined back the same way. Japanese, Chinese, Khmer, Myanmar and the Indic scripts
end a sentence with a mark of their own (。！？ ។ ៕ ။ । ...) that is often not followed by a space, so
the sentence ends at the mark. Latin-style . ! ? end a sentence only before a space (not 3.5, e.g.).
Thai has no sentence mark at all: a space between two Thai words separates sentences (or clauses,
which NLLB also translates well on their own).
"""

from __future__ import annotations

import re
from typing import Callable

from harness.core.langs import Language

# The sentence ends right after these, with or without a space: CJK 。！？．, Khmer ។ ៕, Myanmar ။,
# Devanagari/Bengali danda । ॥, Ethiopic ።, Armenian ։, Arabic-script ؟ ۔.
_OWN_SCRIPT_MARKS = "。！？．។៕။।॥።։؟۔"
_CLOSERS = "\"'”’」』）)\\]»"
_THAI = "\u0e00-\u0e7f"
_BOUNDARY = re.compile(
    rf"[{_OWN_SCRIPT_MARKS}]+[{_CLOSERS}]*\s*"
    rf"|(?<=[^\d\s])[.!?]+[{_CLOSERS}]*\s+"
    rf"|(?<=[{_THAI}])\s+(?=[{_THAI}])"
)
# Scripts written without spaces between sentences: their translations are joined with nothing.
_UNSPACED_SCRIPTS = ("Jpan", "Hans", "Hant")


def split_sentences(line: str) -> list[str]:
    """The sentences of one line, each stripped, none empty."""
    sentences, start = [], 0
    for boundary in _BOUNDARY.finditer(line):
        sentence_end = boundary.start() + len(boundary.group().rstrip())
        sentences.append(line[start:sentence_end])
        start = boundary.end()
    sentences.append(line[start:])
    return [s.strip() for s in sentences if s.strip()]


def split_for_translation(text: str) -> list[list[str]]:
    """Per line of `text`, its sentences (an empty line: none, kept so it comes back)."""
    return [split_sentences(line) for line in text.split("\n")]


def sentence_joiner(lang: Language) -> str:
    return "" if lang.flores.endswith(_UNSPACED_SCRIPTS) else " "


def join_translation(lines: list[list[str]], tgt: Language) -> str:
    """Inverse of `split_for_translation` on the translated sentences."""
    joiner = sentence_joiner(tgt)
    return "\n".join(joiner.join(sentences) for sentences in lines)


def translate_by_sentence(texts: list[str], tgt: Language, translate_sentences: Callable[[list[str]], list[str]]) -> list[str]:
    """Each text cut into sentences, all sentences translated in one call, the texts put back together."""
    split = [split_for_translation(text) for text in texts]
    flat = [sentence for lines in split for line in lines for sentence in line]
    translated = iter(translate_sentences(flat) if flat else [])
    return [join_translation([[next(translated) for _ in line] for line in lines], tgt) for lines in split]
