"""Output hygiene: the one rule that extracts a translation from a model's output, and its flags.

The extraction rule (applied to every system alike, base model and adapters):
  1. split the raw output into lines and drop blank ones;
  2. drop leading preamble lines (at most MAX_PREAMBLE_LINES): a line is a preamble when it ends
     with a colon ("Here is the translation:", "Czech:") or opens with a chat formula
     ("Sure", "Certainly", "Here is", "Translation", ...; English formulas, since that is what
     chat models open with whatever the target language);
  3. take the first remaining line, remove a leading "<language name>:" label, Markdown bold and
     quotes wrapped around the whole line.
An output whose lines are all preamble yields "".

Flags per output (each a 0/1 item metric, averaged into a share per task):
  empty         the extracted text is empty
  preamble      the first non-blank line of the raw output is a preamble
  cut_at_limit  the output used the whole generation budget (max_gen_toks), so it was cut off
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_PREAMBLE_LINES = 2
CHAT_FORMULAS = (
    "sure", "certainly", "of course", "absolutely", "okay", "ok,", "ok!", "here is", "here's", "here are",
    "below is", "the translation", "translation", "translated", "i'd be happy", "i would be happy",
    "i can help", "happy to help",
)
_FORMULA = re.compile("^(?:" + "|".join(re.escape(f) for f in CHAT_FORMULAS) + r")(?!\w)")
_QUOTES = ('"', "'", "“", "”", "„", "«", "»", "「", "」", "`")


def is_preamble(line: str) -> bool:
    text = line.strip().lstrip("*#> ").strip()
    if not text:
        return False
    if text.rstrip("*").rstrip().endswith((":", "：")):
        return True
    return bool(_FORMULA.match(text.lower()))


def content_lines(text: str) -> list[str]:
    """Non-blank lines after the leading preamble lines."""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    skipped = 0
    while lines and skipped < MAX_PREAMBLE_LINES and is_preamble(lines[0]):
        lines.pop(0)
        skipped += 1
    return lines


def _unwrap(text: str, label_names: tuple[str, ...]) -> str:
    for name in label_names:
        if text.lower().startswith(name.lower() + ":"):
            text = text[len(name) + 1:].strip()
            break
    if text.startswith("**") and text.endswith("**") and len(text) > 4:
        text = text[2:-2].strip()
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    return text


def extract_translation(raw: str, label_names: tuple[str, ...] = ()) -> str:
    """The translation in a raw output, by the rule in the module docstring."""
    lines = content_lines(raw)
    return _unwrap(lines[0], label_names) if lines else ""


def first_line(raw: str) -> str:
    return next((ln.strip() for ln in str(raw).splitlines() if ln.strip()), "")


@dataclass(frozen=True)
class Hygiene:
    empty: float
    preamble: float
    cut_at_limit: float | None  # None when the token count is unknown

    def as_metrics(self) -> dict[str, float]:
        out = {"empty": self.empty, "preamble": self.preamble}
        if self.cut_at_limit is not None:
            out["cut_at_limit"] = self.cut_at_limit
        return out


def hygiene(raw: str, extracted: str, n_tokens: int | None, max_gen_toks: int | None) -> Hygiene:
    cut = None if n_tokens is None or not max_gen_toks else float(n_tokens >= max_gen_toks)
    return Hygiene(empty=float(not extracted.strip()), preamble=float(is_preamble(first_line(raw))), cut_at_limit=cut)
