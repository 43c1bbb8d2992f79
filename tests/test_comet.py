"""COMET through its own venv: the real subprocess round trip on a tiny random checkpoint."""

from __future__ import annotations

import pytest

from pathlib import Path

from harness.evaluation import comet
from harness.core.errors import HarnessError

ITEMS = [("Hello world.", "Ahoj světe.", "Ahoj světe."), ("A cat.", "Pes.", "Kočka."),
         ("Good morning.", "", "Dobré ráno."), ("Hello world.", "Ahoj světe.", "Ahoj světe.")]


COMET_PYTHON = comet.default_python()  # read before a test moves SDRRL_HOME


@pytest.mark.slow
def test_scores_align_with_items_and_are_cached(tiny_comet, tmp_path, monkeypatch):
    monkeypatch.setenv("SDRRL_HOME", str(tmp_path / "home"))  # a private score cache
    settings = comet.CometSettings(model=str(tiny_comet), python=COMET_PYTHON, batch_size=2)
    calls = []
    real_run = comet._run_scorer
    monkeypatch.setattr(comet, "_run_scorer", lambda s, items: calls.append(list(items)) or real_run(s, items))
    scores = comet.score(settings, ITEMS)
    assert len(scores) == 4 and scores[2] == 0.0  # the empty hypothesis is not sent
    assert scores[0] == pytest.approx(scores[3]) and scores[0] != pytest.approx(scores[1])
    assert len(calls) == 1 and sorted(calls[0]) == sorted({ITEMS[0], ITEMS[1], ITEMS[3]})
    # served from the cache, in the new order: no second subprocess
    assert comet.score(settings, list(reversed(ITEMS))) == list(reversed(scores)) and len(calls) == 1
    # scores align with items: the scorer's own order for a permuted call gives the same values
    assert comet._run_scorer(settings, [ITEMS[1], ITEMS[0]]) == pytest.approx([scores[1], scores[0]], abs=1e-5)


def test_missing_environment_names_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setenv("SDRRL_COMET_MODEL", "default")
    monkeypatch.setenv("SDRRL_COMET_PYTHON", str(tmp_path / "no-venv" / "bin" / "python"))
    settings = comet.from_env()
    assert settings.model == comet.DEFAULT_MODEL
    with pytest.raises(HarnessError) as err:
        comet.check_ready(settings)
    assert "bash scripts/install.sh --comet" in str(err.value) and "\n" not in str(err.value)


def test_missing_local_checkpoint_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("SDRRL_COMET_MODEL", str(tmp_path / "model"))
    monkeypatch.setenv("SDRRL_COMET_PYTHON", "/bin/sh")
    (tmp_path / "model").mkdir()
    with pytest.raises(HarnessError, match=r"has no checkpoint at .*checkpoints/model.ckpt.*Unbabel/wmt22-comet-da"):
        comet.check_ready(comet.from_env())
    monkeypatch.setenv("SDRRL_COMET_BATCH", "0")
    with pytest.raises(HarnessError, match=r"SDRRL_COMET_BATCH must be a positive integer, got '0'"):
        comet.from_env()


def test_scorer_output_is_checked(tmp_path, monkeypatch):
    import sys

    fake = tmp_path / "fake_scorer.py"
    fake.write_text("import sys\nfor line in sys.stdin:\n    print('{\"score\": NaN}')\n")
    monkeypatch.setattr(comet, "SCRIPT", fake)
    monkeypatch.setenv("SDRRL_HOME", str(tmp_path / "home"))
    settings = comet.CometSettings(model=str(tmp_path), python=Path(sys.executable))
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "model.ckpt").write_bytes(b"x")
    with pytest.raises(HarnessError, match=r"COMET scorer returned NaN for 1 item\(s\)"):
        comet.score(settings, [("a", "b", "c")])
    fake.write_text("import sys\nsys.stdin.read()\nprint('{\"score\": 0.5}')\n")
    with pytest.raises(HarnessError, match=r"COMET scorer returned 1 scores for 2 items"):
        comet.score(settings, [("a", "b", "c"), ("d", "e", "f")])
    fake.write_text("import sys\nsys.exit('RuntimeError: no such model')\n")
    with pytest.raises(HarnessError, match=r"COMET scorer failed \(model .*\): RuntimeError: no such model"):
        comet.score(settings, [("a", "b", "c")])
