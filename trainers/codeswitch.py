"""Bilingual lexicons in MUSE format and word-level code-switching.

A MUSE dictionary (github.com/facebookresearch/MUSE, `en-cs.txt`) has one "source target" pair per
line, separated by a space or a tab; a source word may appear on several lines (several
translations). Code-switching replaces a fraction of the words of a text that the lexicon knows by
one of their translations, giving a mixed-language variant of the same sentence.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from harness.core.errors import HarnessError, shown
from harness.core.textfile import read_utf8

DATA_DIR = Path(__file__).resolve().parent / "data"  # the small offline data shipped with the trainers

Lexicon = dict[str, list[str]]  # lower-cased source word -> its translations, in file order

# A word: letters/digits (any script) with inner apostrophes or hyphens ("don't", "well-known").
WORD_RE = re.compile(r"\w+(?:['’-]\w+)*", re.UNICODE)


def load_lexicon(path: Path) -> Lexicon:
    """Read a MUSE-format lexicon. Blank lines and lines starting with '#' are skipped."""
    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"lexicon {path} does not exist")
    lexicon: Lexicon = {}
    for lineno, line in enumerate(read_utf8(path, "lexicon").split("\n"), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        if len(parts) != 2:
            raise HarnessError(f"{path}:{lineno}: expected 'source target', got {shown(line)}")
        src, tgt = parts[0].lower(), parts[1].strip()
        translations = lexicon.setdefault(src, [])
        if tgt not in translations:
            translations.append(tgt)
    return lexicon


def invert_lexicon(lexicon: Lexicon) -> Lexicon:
    """target -> sources, for translating in the other direction."""
    inverted: Lexicon = {}
    for src, tgts in lexicon.items():
        for tgt in tgts:
            inverted.setdefault(tgt.lower(), [])
            if src not in inverted[tgt.lower()]:
                inverted[tgt.lower()].append(src)
    return inverted


def compose_lexicons(first: Lexicon, second: Lexicon) -> Lexicon:
    """a->c from a->b and b->c (pivot translation): each a word maps to the c translations of its b
    translations, in order, without repeats."""
    composed: Lexicon = {}
    for word, middles in first.items():
        out = [c for b in middles for c in second.get(b.lower(), [])]
        if out:
            composed[word] = list(dict.fromkeys(out))
    return composed


def match_case(original: str, replacement: str) -> str:
    """Carry the source word's capitalisation over (only meaningful for cased scripts)."""
    if original.isupper() and len(original) > 1:
        return replacement.upper()
    if original[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


def translatable_words(text: str, lexicon: Lexicon) -> list[re.Match]:
    return [m for m in WORD_RE.finditer(text) if m.group(0).lower() in lexicon]


def code_switch(text: str, lexicon: Lexicon, ratio: float, rng: random.Random) -> tuple[str, int]:
    """Replace round(ratio * n) of the n lexicon-known words of `text`; return (new text, replaced).

    Which words, and which translation where there are several, is drawn from `rng`, so the result
    is deterministic for a seeded generator. Words the lexicon does not know are never touched.
    """
    if not 0.0 <= ratio <= 1.0:
        raise HarnessError(f"code-switch ratio must be between 0 and 1, got {ratio}")
    candidates = translatable_words(text, lexicon)
    k = int(round(ratio * len(candidates)))
    if k == 0:
        return text, 0
    chosen = sorted(rng.sample(range(len(candidates)), k))
    pieces: list[str] = []
    last = 0
    for idx in chosen:
        m = candidates[idx]
        word = m.group(0)
        replacement = match_case(word, rng.choice(lexicon[word.lower()]))
        pieces.append(text[last : m.start()])
        pieces.append(replacement)
        last = m.end()
    pieces.append(text[last:])
    return "".join(pieces), k
