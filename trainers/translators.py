"""Machine translation behind one interface, with a content cache.

    Translator.translate(texts, src, tgt) -> translations, one per text, in order

The interface is trainers.translator_base's. Implementations: `NLLBTranslator` (an NLLB seq2seq
model through transformers), `CT2NLLBTranslator` (the same through CTranslate2; trainers.ct2_translator),
`LLMTranslator` (the base model itself, prompted), `LexiconTranslator` (word by word through MUSE
lexicons; offline, for tests and smoke runs), `FileTranslator` (precomputed translations from a JSONL
file). `CachedTranslator` wraps any of them so a rerun translates nothing twice; `make_translator`
builds one by name.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from harness.engines import EngineSettings
from harness.engines.base import OnBatch, on_gpu
from harness.core.errors import HarnessError, unknown
from harness.core.langs import Language, iso_code
from harness.core.runstore import JsonlCache, sha256_file, sha256_json
from harness.core.textfile import read_utf8
from trainers.codeswitch import WORD_RE, Lexicon, match_case
from trainers.generation import CacheBatches
from trainers.ct2_translator import CT2NLLBTranslator
from trainers.lexicons import BUILTIN_LEXICON_DIR, lexicon_from_folder
from trainers.sentences import translate_by_sentence
from trainers.translator_base import DEFAULT_NLLB_MODEL, Job, Translator

LLM_TRANSLATION_PROMPT = (
    "Translate the following {src} text into {tgt}. Reply with the translation only, nothing else.\n\n{text}"
)


# --------------------------------------------------------------------------------------------
# NLLB
# --------------------------------------------------------------------------------------------


class NLLBTranslator(Translator):
    """An NLLB-200 model (hub id or local folder); languages by their FLORES-200 codes."""

    def __init__(self, model: str = DEFAULT_NLLB_MODEL, batch_size: int | None = None, num_beams: int = 4, max_length: int = 512):
        self.model_name = model or DEFAULT_NLLB_MODEL
        self.batch_size = batch_size  # None: our default for the device, set when the model loads
        self.num_beams = num_beams
        self.max_length = max_length
        self._model = None
        self._tokenizer = None

    @property
    def id(self) -> str:
        # Half precision on a GPU changes the translations, so it is part of the cache key (fp32 keeps
        # the key it always had).
        precision = ":fp16" if on_gpu() else ""
        return f"nllb:{self.model_name}{precision}:beams={self.num_beams}"

    def _load(self):
        if self._model is None:
            import torch
            from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

            try:
                self._tokenizer = AutoTokenizer.from_pretrained(self.model_name)
                model = AutoModelForSeq2SeqLM.from_pretrained(self.model_name, trust_remote_code=False)
            except Exception as exc:  # offline, missing folder, bad id: all end the same way for the user
                raise HarnessError(
                    f"NLLB model {self.model_name!r} could not be loaded ({type(exc).__name__}); give a local folder "
                    "(translator_model=...) or use translator=lexicon|file|llm"
                ) from None
            gpu = on_gpu()
            # On a GPU, batch 16 leaves it waiting on per-step overhead: batch 64 translated 3.1x more sentences
            # per second with 4 beams, in half precision (benchmarks/RESULTS.md, "On a GPU"). Our defaults.
            self.batch_size = self.batch_size or (64 if gpu else 16)
            self._model = (model.to("cuda", dtype=torch.float16) if gpu else model).eval()
        return self._model, self._tokenizer

    def _translate(self, texts: list[str], src: Language, tgt: Language) -> list[str]:
        return translate_by_sentence(texts, tgt, lambda sentences: self.translate_sentences(sentences, src, tgt))

    def translate_sentences(self, sentences: list[str], src: Language, tgt: Language) -> list[str]:
        import torch

        model, tokenizer = self._load()
        tokenizer.src_lang = src.flores
        forced_bos = tokenizer.convert_tokens_to_ids(tgt.flores)
        # Longest first, so each batch pads little.
        order = sorted(range(len(sentences)), key=lambda i: -len(sentences[i]))
        out = [""] * len(sentences)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            enc = tokenizer([sentences[i] for i in idx], return_tensors="pt", padding=True, truncation=True, max_length=self.max_length)
            enc = {k: v.to(model.device) for k, v in enc.items()}
            with torch.no_grad():
                gen = model.generate(**enc, forced_bos_token_id=forced_bos, num_beams=self.num_beams, max_length=self.max_length)
            for i, text in zip(idx, tokenizer.batch_decode(gen, skip_special_tokens=True)):
                out[i] = text.strip()
        return out


# --------------------------------------------------------------------------------------------
# The base model itself
# --------------------------------------------------------------------------------------------


class LLMTranslator(Translator):
    """The model translates, prompted with `prompt` ({src}, {tgt}, {text}), greedy, through harness.engines."""

    def __init__(
        self,
        model_dir: Path,
        engine: str = "auto",
        max_new_tokens: int = 1024,
        prompt: str = LLM_TRANSLATION_PROMPT,
        settings: EngineSettings | None = None,
    ):
        self.model_dir = Path(model_dir)
        self.engine = engine
        self.settings = settings or EngineSettings()
        self.max_new_tokens = max_new_tokens
        self.prompt = prompt

    @property
    def id(self) -> str:
        return "llm:" + sha256_json([str(self.model_dir), self.prompt, self.max_new_tokens])[:16]

    def _conversation(self, text: str, src: Language, tgt: Language) -> list[dict]:
        return [{"role": "user", "content": self.prompt.format(src=src.name, tgt=tgt.name, text=text)}]

    def _translate(self, texts: list[str], src: Language, tgt: Language) -> list[str]:
        return self.translate_jobs([(texts, src, tgt)])[0]

    def translate_jobs(self, jobs: list[Job], on_batch: OnBatch | None = None) -> list[list[str]]:
        """All jobs in one generation call: vLLM loads the model once. `on_batch` gets the answers as
        batches finish, in the order of the jobs' non-empty texts (src == tgt jobs skipped)."""
        from trainers.generation import generate

        conversations, where = [], []
        results = [list(texts) if src == tgt else [""] * len(texts) for texts, src, tgt in jobs]
        for j, (texts, src, tgt) in enumerate(jobs):
            if src == tgt:
                continue
            for i, text in enumerate(texts):
                if text.strip():
                    conversations.append(self._conversation(text, src, tgt))
                    where.append((j, i))
        answers = generate(self.model_dir, conversations, self.max_new_tokens, self.engine, self.settings, on_batch)
        for (j, i), answer in zip(where, answers):
            results[j][i] = answer.text
        return results


# --------------------------------------------------------------------------------------------
# Word by word through lexicons
# --------------------------------------------------------------------------------------------


class LexiconTranslator(Translator):
    """Word-by-word translation through MUSE lexicons `<dir>/<src>-<tgt>.txt` (or the inverse file).

    Each known word becomes its first listed translation; unknown words, numbers and punctuation
    stay as they are. Crude, but offline and deterministic: meant for tests and smoke runs.
    """

    def __init__(self, lexicon_dir: Path | str | None = None):
        self.lexicon_dir = Path(lexicon_dir) if lexicon_dir else BUILTIN_LEXICON_DIR
        self._lexicons: dict[tuple[str, str], Lexicon] = {}

    @property
    def id(self) -> str:
        files = sorted(self.lexicon_dir.glob("*-*.txt")) if self.lexicon_dir.is_dir() else []
        return "lexicon:" + sha256_json([[f.name, sha256_file(f)] for f in files])[:16]

    def lexicon(self, src: Language, tgt: Language) -> Lexicon:
        key = (src.code, tgt.code)
        if key not in self._lexicons:
            self._lexicons[key] = lexicon_from_folder(self.lexicon_dir, src.code, tgt.code)
        return self._lexicons[key]

    def _translate(self, texts: list[str], src: Language, tgt: Language) -> list[str]:
        lexicon = self.lexicon(src, tgt)

        def word(m: re.Match) -> str:
            translations = lexicon.get(m.group(0).lower())
            return match_case(m.group(0), translations[0]) if translations else m.group(0)

        return [WORD_RE.sub(word, text) for text in texts]


# --------------------------------------------------------------------------------------------
# Precomputed translations
# --------------------------------------------------------------------------------------------

class FileTranslator(Translator):
    """Look translations up in a JSONL file of {src_lang, tgt_lang, source, translation}.

    Languages may be written as harness codes (cs) or FLORES-200 codes (ces_Latn).
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        if not self.path.is_file():
            raise HarnessError(f"translations file {self.path} does not exist")
        self.table: dict[tuple[str, str, str], str] = {}
        for lineno, line in enumerate(read_utf8(self.path, "translations file").split("\n"), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                key = (self._code(row["src_lang"]), self._code(row["tgt_lang"]), row["source"])
                self.table[key] = row["translation"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise HarnessError(
                    f"{self.path}:{lineno}: expected JSON with src_lang, tgt_lang, source, translation ({str(exc)[:120]})"
                ) from None
        if not self.table:  # it would fail at the first text to translate, after self-distillation
            raise HarnessError(f"translations file {str(self.path)!r} holds no translations "
                               "(one JSON object a line: src_lang, tgt_lang, source, translation)")

    @staticmethod
    def _code(lang: str) -> str:
        return iso_code(lang)

    @property
    def id(self) -> str:
        return f"file:{sha256_file(self.path)[:16]}"

    def _translate(self, texts: list[str], src: Language, tgt: Language) -> list[str]:
        missing = [t for t in texts if (src.code, tgt.code, t) not in self.table]
        if missing:
            shown = missing[0] if len(missing[0]) <= 60 else missing[0][:57] + "..."
            raise HarnessError(
                f"{self.path} has no {src.code}->{tgt.code} translation for {len(missing)} of {len(texts)} texts, "
                f"e.g. {shown!r}"
            )
        return [self.table[(src.code, tgt.code, t)] for t in texts]


# --------------------------------------------------------------------------------------------
# The content cache
# --------------------------------------------------------------------------------------------


class CachedTranslator(Translator):
    """Translations cached by content: key = sha256(translator id, src, tgt, text).

    The cache is a harness.core.runstore.JsonlCache appended chunk by chunk, so a killed run keeps every
    finished chunk and two runs sharing it store each translation once.
    """

    def __init__(self, inner: Translator, cache_path: Path, chunk_size: int = 64):
        self.inner = inner
        self.cache_path = Path(cache_path)
        self.chunk_size = chunk_size
        self.inner_id = inner.id  # computed once: it may hash lexicon or translation files
        self.store = JsonlCache(self.cache_path)
        self.translated = 0  # texts sent to the inner translator by this instance

    @property
    def id(self) -> str:
        return self.inner_id

    def key(self, text: str, src: Language, tgt: Language) -> str:
        return sha256_json([self.inner_id, src.code, tgt.code, text])

    def _translate(self, texts: list[str], src: Language, tgt: Language) -> list[str]:
        return self.translate_jobs([(texts, src, tgt)])[0]

    def translate_jobs(self, jobs: list[Job]) -> list[list[str]]:
        from rich.progress import Progress

        # Unique texts not yet cached, per language pair.
        todo: dict[tuple[Language, Language], dict[str, None]] = {}  # dict: ordered, unique
        for texts, src, tgt in jobs:
            if src == tgt:
                continue
            pending = todo.setdefault((src, tgt), {})
            for text in texts:
                if text.strip() and self.key(text, src, tgt) not in self.store:
                    pending[text] = None
        # One inner job per chunk; translators that batch everything themselves get one big call.
        chunks: list[Job] = []
        for (src, tgt), unique in todo.items():
            texts = list(unique)
            size = len(texts) if isinstance(self.inner, LLMTranslator) else self.chunk_size
            chunks.extend((texts[i : i + size], src, tgt) for i in range(0, len(texts), max(1, size)))
        total = sum(len(c[0]) for c in chunks)
        if total:
            with Progress(transient=True) as progress:
                task = progress.add_task(f"translating ({self.inner_id.split(':')[0]})", total=total)
                if isinstance(self.inner, LLMTranslator):  # one generation call; its batches cached as they finish
                    self._store(chunks, self.inner.translate_jobs(chunks, self._batches(chunks)))
                    progress.update(task, advance=total)
                else:
                    for chunk in chunks:
                        self._store([chunk], self.inner.translate_jobs([chunk]))
                        progress.update(task, advance=len(chunk[0]))
        return [
            list(texts) if src == tgt else [self.store[self.key(t, src, tgt)]["translation"] if t.strip() else "" for t in texts]
            for texts, src, tgt in jobs
        ]

    def _row(self, text: str, src: Language, tgt: Language) -> dict:
        return {"key": self.key(text, src, tgt), "translator": self.inner_id, "src": src.code, "tgt": tgt.code, "source": text}

    def _batches(self, chunks: list[Job]) -> CacheBatches:
        """Stores the LLM's translations of `chunks` (all non-empty, src != tgt) batch by batch."""
        rows = [self._row(text, src, tgt) for texts, src, tgt in chunks for text in texts]
        return CacheBatches(self.cache_path, rows, "translation")

    def _store(self, chunks: list[Job], results: list[list[str]]) -> None:
        rows = []
        for (texts, src, tgt), translations in zip(chunks, results):
            if len(translations) != len(texts):
                raise HarnessError(f"translator {self.inner_id} returned {len(translations)} translations for {len(texts)} texts")
            rows.extend({**self._row(text, src, tgt), "translation": translation} for text, translation in zip(texts, translations))
        self.translated += len(rows)
        self.store.add(rows)


# --------------------------------------------------------------------------------------------
# Factory
# --------------------------------------------------------------------------------------------

TRANSLATORS = ("nllb", "nllb-ct2", "llm", "lexicon", "file")


def make_translator(
    name: str,
    *,
    model: str = "",
    model_dir: Path | None = None,
    engine: str = "auto",
    settings: EngineSettings | None = None,
    lexicon_dir: Path | str | None = None,
    translations_file: Path | str | None = None,
    cache_dir: Path | None = None,
) -> Translator:
    """A translator by name. `model`: the NLLB hub id or folder (default facebook/nllb-200-distilled-600M);
    `model_dir`: the base model (for `llm`); `cache_dir`: where the content cache lives (none: no cache;
    the `file` translator is never cached, it is a cache already)."""
    if name == "nllb":
        translator: Translator = NLLBTranslator(model or DEFAULT_NLLB_MODEL)
    elif name == "nllb-ct2":
        translator = CT2NLLBTranslator(model or DEFAULT_NLLB_MODEL)
    elif name == "llm":
        if model_dir is None and not model:
            raise HarnessError("translator 'llm' needs the model folder")
        translator = LLMTranslator(Path(model or model_dir), engine=engine, settings=settings)
    elif name == "lexicon":
        translator = LexiconTranslator(lexicon_dir)
    elif name == "file":
        if not translations_file:
            raise HarnessError("translator 'file' needs translations_file=<path to a JSONL of precomputed translations>")
        return FileTranslator(translations_file)
    else:
        raise unknown("translator", name, TRANSLATORS)
    if cache_dir is not None:
        translator = CachedTranslator(translator, Path(cache_dir) / "translations.jsonl")
    return translator
