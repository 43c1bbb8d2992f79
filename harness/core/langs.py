"""The language table: one row per language, the single source for tasks, suites and trainers."""

from __future__ import annotations

from dataclasses import dataclass

from harness.core.errors import HarnessError, shown, unknown


@dataclass(frozen=True)
class Language:
    code: str  # ISO 639-1, the harness's own name for the language
    name: str
    flores: str  # FLORES-200 code; also the Belebele, SIB-200 and NLLB config name

    @property
    def is_english(self) -> bool:
        return self.code == "en"


LANGUAGES: dict[str, Language] = {
    lang.code: lang
    for lang in [
        Language("en", "English", "eng_Latn"),
        Language("fr", "French", "fra_Latn"),  # a resource-rich source language (SDRRL's source_lang=fr)
        Language("cs", "Czech", "ces_Latn"),
        Language("da", "Danish", "dan_Latn"),
        Language("uk", "Ukrainian", "ukr_Cyrl"),
        Language("bg", "Bulgarian", "bul_Cyrl"),
        Language("fi", "Finnish", "fin_Latn"),
        Language("hu", "Hungarian", "hun_Latn"),
        Language("no", "Norwegian Bokmål", "nob_Latn"),
        Language("id", "Indonesian", "ind_Latn"),
        Language("ja", "Japanese", "jpn_Jpan"),
        Language("ko", "Korean", "kor_Hang"),
        Language("pt", "Portuguese", "por_Latn"),
        Language("sl", "Slovenian", "slv_Latn"),
        Language("vi", "Vietnamese", "vie_Latn"),
        Language("pl", "Polish", "pol_Latn"),
        Language("th", "Thai", "tha_Thai"),
        Language("km", "Khmer", "khm_Khmr"),
    ]
}

_BY_FLORES: dict[str, Language] = {lang.flores: lang for lang in LANGUAGES.values()}


def by_flores(flores: str) -> Language | None:
    """The language whose FLORES-200 code is `flores` ('ces_Latn'), or None."""
    return _BY_FLORES.get(flores)


def iso_code(code: str) -> str:
    """The harness's code for 'cs' or a FLORES-200 code such as 'ces_Latn'; other strings unchanged."""
    lang = _BY_FLORES.get(code)
    return lang.code if lang else code


# Named language sets. The suites in tasks/ refer to these by name.
LANGUAGE_SETS: dict[str, tuple[str, ...]] = {
    "paper15": ("en", "cs", "da", "uk", "bg", "fi", "hu", "no", "id", "ja", "ko", "pt", "sl", "vi", "pl"),
    "sea": ("th", "km"),
    "smoke": ("en", "cs", "ja"),
    "smoke_fr": ("fr", "en", "cs"),
}


def get_language(code: str) -> Language:
    try:
        return LANGUAGES[code]
    except KeyError:
        raise unknown("language", code, list(LANGUAGES)) from None


def parse_languages(spec: str) -> list[Language]:
    """'cs,ja' or a set name ('paper15') -> languages, in the given order, without repeats.

    A part written twice ('cs,cs') is refused: it is a typo for another language more often than
    not. A code that a named set also holds ('sea,th') is a union on purpose, and kept once."""
    codes: list[str] = []
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    repeated = sorted({p for p in parts if parts.count(p) > 1})
    if repeated:
        raise HarnessError(f"languages {shown(spec)} name {', '.join(map(repr, repeated))} more than once; name each language once")
    for part in parts:
        codes.extend(LANGUAGE_SETS.get(part, (part,)))
    seen: dict[str, Language] = {}
    for code in codes:
        seen.setdefault(code, get_language(code))
    return list(seen.values())
