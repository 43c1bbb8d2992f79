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
  degenerate    the scored text echoes the prompt (ECHO_SHARE of its character 4-grams occur in the
                instruction or source sentence) or repeats itself (its most frequent n-gram, of
                REPEAT_N words, or characters for text without spaces, covers REPEAT_SHARE of it);
                such text can be "in the right language" (lang_match) without being an answer
"""

from __future__ import annotations

import re
from collections import Counter
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


# Thresholds of the degenerate flag: our defaults, set so that a translation or an answer never trips them
# on the fixtures while a copied prompt or a looping output does (tests/test_genmetrics.py).
ECHO_SHARE = 0.6
REPEAT_SHARE = 0.5
REPEAT_N = {"words": 3, "chars": 4}
MIN_UNITS = {"words": 8, "chars": 16}


def _normal(text: str) -> str:
    return " ".join(str(text).lower().split())


def is_echo(text: str, prompt: str) -> bool:
    """Most of the text's character 4-grams occur in the prompt: a copy of it, not a new text."""
    out, src = _normal(text), _normal(prompt)
    if len(out) < 4 or len(src) < 4:
        return False
    grams = [out[i:i + 4] for i in range(len(out) - 3)]
    known = {src[i:i + 4] for i in range(len(src) - 3)}
    return sum(g in known for g in grams) / len(grams) >= ECHO_SHARE


def is_repetitive(text: str) -> bool:
    """One n-gram, repeated, covers most of the text (words; characters for text written without spaces)."""
    words = _normal(text).split()
    kind = "words" if len(words) >= MIN_UNITS["words"] else "chars"
    units = words if kind == "words" else list(_normal(text).replace(" ", ""))
    n = REPEAT_N[kind]
    if len(units) < MIN_UNITS[kind]:
        return False
    top = Counter(tuple(units[i:i + n]) for i in range(len(units) - n + 1)).most_common(1)[0][1]
    return min(1.0, top * n / len(units)) >= REPEAT_SHARE


def is_degenerate(text: str, prompt: str = "") -> bool:
    return bool(text.strip()) and (is_echo(text, prompt) or is_repetitive(text))


@dataclass(frozen=True)
class Hygiene:
    empty: float
    preamble: float
    cut_at_limit: float | None  # None when the token count is unknown
    degenerate: float = 0.0

    def as_metrics(self) -> dict[str, float]:
        out = {"empty": self.empty, "preamble": self.preamble, "degenerate": self.degenerate}
        if self.cut_at_limit is not None:
            out["cut_at_limit"] = self.cut_at_limit
        return out


def hygiene(raw: str, extracted: str, n_tokens: int | None, max_gen_toks: int | None, prompt: str = "") -> Hygiene:
    """The flags of one output; `extracted` is the scored text, `prompt` the instruction or source it answers."""
    cut = None if n_tokens is None or not max_gen_toks else float(n_tokens >= max_gen_toks)
    return Hygiene(empty=float(not extracted.strip()), preamble=float(is_preamble(first_line(raw))), cut_at_limit=cut,
                   degenerate=float(is_degenerate(extracted, prompt)))
