"""sacreBLEU helpers: corpus BLEU / chrF++ and the signatures that say how scores were computed.

spBLEU uses sacreBLEU's "flores200" tokenizer, a SentencePiece model that sacreBLEU downloads on
first use to ~/.sacrebleu/models (or $SACREBLEU/models). Offline that download fails, so:

* a task names the tokenizer it wants and a fallback (metadata `sacrebleu.bleu.tokenize` and
  `sacrebleu.bleu.fallback_tokenize`: "13a", or "char" for targets written without spaces);
* `resolve_tokenize` uses the SentencePiece tokenizer when its model file is present, or can be
  downloaded (one attempt per process, skipped when SDRRL_OFFLINE=1 or HF_HUB_OFFLINE=1);
  otherwise it logs a warning and returns the fallback;
* the fallback is never hidden: the BLEU signature names the tokenizer actually used (tok:13a),
  and `sacrebleu_signatures` adds a `bleu_fallback` entry saying what was requested and why it
  was not used.

Put the model file in place by hand for offline spBLEU:
  ~/.sacrebleu/models/flores200sacrebleuspm   (from https://tinyurl.com/flores200sacrebleuspm)
"""

from __future__ import annotations

import logging
import os
import tempfile
import urllib.request
from pathlib import Path
from typing import Any, Sequence

from sacrebleu.metrics import BLEU, CHRF, TER

from harness.core.errors import HarnessError
from harness.core.hub import OFFLINE_ENV, downloads_allowed

log = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_S = 30

# tokenizer name -> whether it is usable in this process (decided once; SPM tokenizers only)
_available: dict[str, bool] = {}
_unavailable_reason: dict[str, str] = {}
_warned: set[tuple[str, str]] = set()


def _spm_models() -> dict[str, dict[str, str]]:
    from sacrebleu.tokenizers import tokenizer_spm

    return tokenizer_spm.SPM_MODELS


def needs_model_file(tokenize: str) -> bool:
    """True for the SentencePiece tokenizers (flores200, flores101, spm, spBLEU-1K)."""
    return tokenize in _spm_models()


def spm_model_path(tokenize: str = "flores200") -> Path:
    """Where sacreBLEU looks for (and downloads) the SentencePiece model of `tokenize`."""
    from sacrebleu.tokenizers import tokenizer_spm

    url = _spm_models()[tokenize]["url"]
    return Path(tokenizer_spm.SACREBLEU_DIR) / "models" / os.path.basename(url)


def _download(url: str, dest: Path) -> None:
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp:  # noqa: S310 - sacreBLEU's own URL
        data = resp.read()
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _check_spm(tokenize: str) -> tuple[bool, str]:
    try:
        import sentencepiece as spm
    except ImportError:
        return False, "the sentencepiece package is not installed"
    path = spm_model_path(tokenize)
    if not (path.is_file() and path.stat().st_size > 0):
        if not downloads_allowed():
            return False, f"no SentencePiece model at {path} and downloads are off ({'/'.join(OFFLINE_ENV)})"
        url = _spm_models()[tokenize]["url"]
        try:
            _download(url, path)
        except Exception as exc:  # offline, DNS, TLS, HTTP errors: all mean "not obtainable"
            return False, f"no SentencePiece model at {path} and downloading {url} failed ({type(exc).__name__})"
    try:
        spm.SentencePieceProcessor(model_file=str(path))
    except Exception as exc:
        return False, f"the SentencePiece model at {path} does not load ({type(exc).__name__})"
    return True, ""


def tokenizer_available(tokenize: str) -> bool:
    """Whether `tokenize` can be used here. Built-in tokenizers always; SPM ones need their model."""
    if not needs_model_file(tokenize):
        return True
    if tokenize not in _available:
        ok, reason = _check_spm(tokenize)
        _available[tokenize] = ok
        _unavailable_reason[tokenize] = reason
    return _available[tokenize]


def unavailable_reason(tokenize: str) -> str:
    return "" if tokenizer_available(tokenize) else _unavailable_reason.get(tokenize, "")


def reset_tokenizer_cache() -> None:
    """Forget which tokenizers were found usable (after a model file was added or removed)."""
    _available.clear()
    _unavailable_reason.clear()
    _warned.clear()


def resolve_tokenize(tokenize: str, fallback: str | None = None) -> str:
    """The tokenizer to score with: `tokenize` if usable, else `fallback` (with a warning)."""
    if tokenizer_available(tokenize):
        return tokenize
    reason = _unavailable_reason.get(tokenize, "")
    if not fallback:
        raise HarnessError(f"sacreBLEU tokenizer {tokenize!r} is unavailable: {reason}")
    if (tokenize, fallback) not in _warned:  # once per process, without the machine's paths and URLs
        _warned.add((tokenize, fallback))
        log.warning("BLEU is not spBLEU: tok:%s is unavailable here, so BLEU uses tok:%s; `harness fetch` brings "
                    "its SentencePiece model (`harness doctor` says where it goes)", tokenize, fallback)
    return fallback


def _check_lengths(refs: Sequence[str], hyps: Sequence[str]) -> None:
    if len(refs) != len(hyps):
        raise HarnessError(f"{len(hyps)} hypotheses for {len(refs)} references")


def corpus_bleu(
    refs: Sequence[str], hyps: Sequence[str], tokenize: str = "flores200", fallback: str | None = None
) -> float:
    """Corpus BLEU (0-100) of `hyps` against one reference each; spBLEU with tokenize="flores200"."""
    _check_lengths(refs, hyps)
    bleu = BLEU(tokenize=resolve_tokenize(tokenize, fallback))
    return float(bleu.corpus_score(list(hyps), [list(refs)]).score)


def corpus_chrf(refs: Sequence[str], hyps: Sequence[str], char_order: int = 6, word_order: int = 2) -> float:
    """Corpus chrF (0-100); word_order=2 is chrF++."""
    _check_lengths(refs, hyps)
    chrf = CHRF(char_order=char_order, word_order=word_order)
    return float(chrf.corpus_score(list(hyps), [list(refs)]).score)


def bleu_signature(tokenize: str = "flores200", fallback: str | None = None) -> str:
    """sacreBLEU's BLEU signature for the tokenizer actually used (e.g. '...|tok:13a|...')."""
    return _signature(BLEU(tokenize=resolve_tokenize(tokenize, fallback)))


def chrf_signature(char_order: int = 6, word_order: int = 2) -> str:
    return _signature(CHRF(char_order=char_order, word_order=word_order))


# lm-eval's own sacreBLEU metrics (lm_eval/api/metrics.py) and the sacreBLEU settings they score with:
# corpus_bleu / corpus_chrf / corpus_ter at sacreBLEU's defaults, chrfpp with word_order=2.
LM_EVAL_SACREBLEU = {"bleu": lambda: BLEU(), "chrf": lambda: CHRF(), "chrfpp": lambda: CHRF(word_order=2), "ter": lambda: TER()}


def lm_eval_signatures(metric_names: Sequence[str]) -> dict[str, str]:
    """The sacreBLEU signatures of a plain lm-eval task's metrics (its metric_list), by metric name."""
    return {name: _signature(LM_EVAL_SACREBLEU[name]()) for name in metric_names if name in LM_EVAL_SACREBLEU}


def _signature(metric: BLEU | CHRF | TER) -> str:
    # sacreBLEU learns the reference count while scoring; these helpers score one reference per
    # segment (corpus_bleu/corpus_chrf above), so the signature says nrefs:1.
    metric.num_refs = 1
    return str(metric.get_signature())


def sacrebleu_signatures(task_metadata: dict[str, Any]) -> dict[str, str]:
    """The signatures a task's scores are computed with, from its `metadata.sacrebleu` settings.

    Keys: "bleu" and "chrf" (sacreBLEU signature strings), plus "bleu_fallback" when the requested
    BLEU tokenizer was unavailable and the fallback was used. Empty for tasks without sacreBLEU.
    """
    cfg = (task_metadata or {}).get("sacrebleu") or {}
    out: dict[str, str] = {}
    if "bleu" in cfg:
        requested = cfg["bleu"].get("tokenize", "flores200")
        fallback = cfg["bleu"].get("fallback_tokenize")
        used = resolve_tokenize(requested, fallback)
        out["bleu"] = bleu_signature(used)
        if used != requested:
            out["bleu_fallback"] = f"requested tok:{requested}, used tok:{used}: {unavailable_reason(requested)}"
    if "chrf" in cfg:
        out["chrf"] = chrf_signature(
            char_order=int(cfg["chrf"].get("char_order", 6)), word_order=int(cfg["chrf"].get("word_order", 2))
        )
    return out
