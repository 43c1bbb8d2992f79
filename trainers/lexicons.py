"""A bilingual lexicon for every language pair the trainers code-switch.

Where a lexicon `<src>-<tgt>.txt` (MUSE format) comes from, first match wins:
  1. the user's `lexicon_dir`;
  2. the active mirror's lexicons/ (written by `harness fetch`);
  3. the lexicons shipped in trainers/data/lexicons (en-cs, en-ja);
  4. the content cache `<cache_dir>/lexicons/` (an earlier MUSE download or induction);
  5. MUSE (github.com/facebookresearch/MUSE, "ground-truth bilingual dictionaries", CC BY-NC 4.0),
     downloaded, when MUSE has the pair: English to 44 languages (Khmer is not among them) and
     the pairs among de, es, fr, it, pt;
  6. induced: the `n_words` most frequent words of the source language (the `wordfreq` package's
     top_n_list) translated one by one with the configured translator. Cached by content (the
     translator's id and the word list), with a `.json` beside it saying it was induced.
Induced lexicons are noisier than MUSE's (a sentence-level MT model translating isolated words);
the size, 3000 words, is our default.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import HarnessError
from harness.core.runstore import sha256_json, write_json, write_text
from trainers.codeswitch import DATA_DIR, Lexicon, compose_lexicons, invert_lexicon, load_lexicon

MUSE_URL = "https://dl.fbaipublicfiles.com/arrival/dictionaries/{src}-{tgt}.txt"
MUSE_LICENCE = "CC BY-NC 4.0"
# MUSE's English dictionaries (README, "Ground-truth bilingual dictionaries"), by ISO 639-1 code.
MUSE_FROM_ENGLISH = frozenset(
    "af ar bg bn bs ca cs da de el es et fa fi fr he hi hr hu id it ja ko lt lv mk ms nl no pl pt ro ru "
    "sk sl sq sv ta th tl tr uk vi zh".split()
)
MUSE_EUROPEAN = frozenset("de es fr it pt".split())  # MUSE also pairs these among themselves
WORDFREQ_CODES = {"no": "nb"}  # harness code -> wordfreq's code where they differ
DEFAULT_INDUCED_WORDS = 3000
BUILTIN_LEXICON_DIR = DATA_DIR / "lexicons"


@dataclass(frozen=True)
class LexiconOrigin:
    path: Path
    origin: str  # user | mirror | builtin | muse | induced


def muse_url(src: str, tgt: str) -> str | None:
    """The MUSE download of src-tgt, or None when MUSE has no such dictionary."""
    if "en" in (src, tgt) and ({src, tgt} - {"en"}) <= MUSE_FROM_ENGLISH and src != tgt:
        return MUSE_URL.format(src=src, tgt=tgt)
    if src in MUSE_EUROPEAN and tgt in MUSE_EUROPEAN and src != tgt:
        return MUSE_URL.format(src=src, tgt=tgt)
    return None


def find_lexicon_file(src: str, tgt: str, lexicon_dir: Path | str | None, cache_dir: Path | None = None) -> LexiconOrigin | None:
    """The first existing src-tgt lexicon file in the search order (steps 1-4 above, then an induced
    one), without any download or translation."""
    from harness.core import mirror

    name = f"{src}-{tgt}.txt"
    root = mirror.active_root()
    places = [("user", Path(lexicon_dir) if lexicon_dir else None), ("mirror", mirror.lexicon_dir(root) if root else None),
              ("builtin", BUILTIN_LEXICON_DIR), ("muse", Path(cache_dir) / "lexicons" if cache_dir else None)]
    for origin, folder in places:
        if folder is not None and (folder / name).is_file():
            return LexiconOrigin(folder / name, origin)
    if cache_dir is not None:
        for path in sorted((Path(cache_dir) / "lexicons").glob(f"{src}-{tgt}.induced.*.txt")):
            return LexiconOrigin(path, "induced")
    return None


def lexicon_path(lexicon_dir: Path, src: str, tgt: str) -> Path:
    return Path(lexicon_dir) / f"{src}-{tgt}.txt"


def lexicon_from_folder(lexicon_dir: Path, src: str, tgt: str, pivot: str = "en") -> Lexicon:
    """The src->tgt lexicon from the files of one folder: its own file, the inverse of tgt->src, or
    composed through `pivot` (src->en->tgt) when only English-centric lexicons exist (MUSE has few
    non-English pairs). Loads it; nothing is downloaded or induced."""

    def direct(a: str, b: str) -> Lexicon | None:
        if lexicon_path(lexicon_dir, a, b).is_file():
            return load_lexicon(lexicon_path(lexicon_dir, a, b))
        if lexicon_path(lexicon_dir, b, a).is_file():
            return invert_lexicon(load_lexicon(lexicon_path(lexicon_dir, b, a)))
        return None

    found = direct(src, tgt)
    if found is None and pivot not in (src, tgt):
        first, second = direct(src, pivot), direct(pivot, tgt)
        if first is not None and second is not None:
            found = compose_lexicons(first, second)
    if found is None:
        raise missing_lexicon(lexicon_dir, src, tgt)
    return found


def missing_lexicon(lexicon_dir: Path, src: str, tgt: str) -> HarnessError:
    lexicon_dir = Path(lexicon_dir)
    pairs = sorted(f.stem for f in lexicon_dir.glob("*-*.txt")) if lexicon_dir.is_dir() else []
    langs = sorted({code for pair in pairs for code in pair.split("-")} - {"en"})
    pivot = "" if "en" in (src, tgt) else f", nor both {src}-en and en-{tgt} to compose"
    return HarnessError(
        f"no lexicon for {src}->{tgt}: {lexicon_path(lexicon_dir, src, tgt)} does not exist (nor {tgt}-{src}{pivot}); "
        f"lexicons there cover: {', '.join(langs) or 'none'} "
        "(MUSE format, 'source target' per line; set lexicon_dir to a folder holding it)"
    )


def resolve_lexicon(src_code: str, tgt_code: str, lexicon_dir: Path | str | None, translator, cache_dir: Path,
                    n_words: int = DEFAULT_INDUCED_WORDS) -> Path:
    """The path of a src-tgt lexicon: found, downloaded from MUSE, or induced with `translator`."""
    found = find_lexicon_file(src_code, tgt_code, lexicon_dir, cache_dir)
    if found is not None and found.origin != "induced":
        return found.path
    url = muse_url(src_code, tgt_code)
    if url is not None:
        return download_muse(src_code, tgt_code, Path(cache_dir) / "lexicons")
    if translator is None:
        raise HarnessError(
            f"no {src_code}-{tgt_code} lexicon (MUSE has none) and no translator to induce one; "
            f"put {src_code}-{tgt_code}.txt ('source target' per line) in lexicon_dir"
        )
    return induce_lexicon(src_code, tgt_code, translator, Path(cache_dir) / "lexicons", n_words)


def download_muse(src: str, tgt: str, folder: Path) -> Path:
    from harness.core import hub

    url = muse_url(src, tgt)
    if url is None:
        raise HarnessError(f"MUSE has no {src}-{tgt} dictionary")
    dest = Path(folder) / f"{src}-{tgt}.txt"
    if dest.is_file():
        return dest
    try:
        hub.download_url(url, dest)
    except OSError as exc:
        raise HarnessError(
            f"cannot download the MUSE lexicon {url} ({type(exc).__name__}); run `harness fetch` where it is "
            f"reachable and pass --data-dir, or put {src}-{tgt}.txt in lexicon_dir"
        ) from None
    load_lexicon(dest)  # a garbled download fails here, not in the data stage
    return dest


def frequency_words(lang: str, n: int) -> list[str]:
    """The `n` most frequent words of `lang` (wordfreq), letters only, at least two characters."""
    try:
        import wordfreq
    except ImportError:
        raise HarnessError("inducing a lexicon needs the `wordfreq` package: pip install 'wordfreq>=3.1,<4'") from None
    code = WORDFREQ_CODES.get(lang, lang)
    if code not in wordfreq.available_languages():
        raise HarnessError(f"wordfreq has no word list for {lang!r}; give a lexicon file {lang}-<xx>.txt in lexicon_dir")
    words = [w for w in wordfreq.top_n_list(code, n * 3) if w.isalpha() and len(w) > 1]
    return words[:n]


def induce_lexicon(src: str, tgt: str, translator, folder: Path, n_words: int = DEFAULT_INDUCED_WORDS) -> Path:
    """Translate the frequent source words one by one; keep translations that differ from the word."""
    from harness.core.langs import get_language

    words = frequency_words(src, n_words)
    key = sha256_json([translator.id, src, tgt, words])[:16]
    path = Path(folder) / f"{src}-{tgt}.induced.{key}.txt"
    if path.is_file():
        return path
    translations = translator.translate(words, get_language(src), get_language(tgt))
    lines = []
    for word, translated in zip(words, translations):
        first = (str(translated).strip().splitlines() or [""])[0].strip(" .,;:!?\"'")
        if first and first.lower() != word.lower():
            lines.append(f"{word} {first}")
    if not lines:
        raise HarnessError(f"inducing a {src}-{tgt} lexicon with {translator.id} gave no translations")
    write_text(path, "\n".join(lines) + "\n")
    write_json(path.with_suffix(".json"), {"origin": "induced", "translator": translator.id, "word_list": f"wordfreq top_n_list({src!r})",
                                "words": len(words), "pairs": len(lines)})
    return path
