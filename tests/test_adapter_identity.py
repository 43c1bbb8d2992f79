"""An adapter is every file that changes what it computes (issue 25, item 1): two adapters with the
same weights but another adapter_config.json (or tokenizer) must never share a merged copy or an
evaluation cache entry; a merge killed midway leaves nothing a later merge keeps."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.core import models
from harness.core.models import adapter_fingerprint

try:
    from broken_inputs import broken_adapters
except ImportError:
    from tests.broken_inputs import broken_adapters


@pytest.fixture()
def adapter(tiny_llama, tmp_path) -> Path:
    return broken_adapters(tiny_llama, tmp_path / "adapters")["fits"]


def _copy(adapter: Path, name: str, change=None, extra: dict[str, str] | None = None) -> Path:
    target = adapter.parent / name
    shutil.copytree(adapter, target)
    if change:
        config = json.loads((target / "adapter_config.json").read_text())
        change(config)
        (target / "adapter_config.json").write_text(json.dumps(config, indent=2))
    for file, text in (extra or {}).items():
        (target / file).write_text(text)
    return target


def test_config_and_tokenizer_are_part_of_an_adapters_identity(adapter):
    fp = adapter_fingerprint(adapter)
    assert adapter_fingerprint(_copy(adapter, "same")) == fp
    # the battery's case: lora_alpha 32 -> 128 scales the update four times; the weights file is the same
    assert adapter_fingerprint(_copy(adapter, "alpha", lambda c: c.update(lora_alpha=128))) != fp
    assert adapter_fingerprint(_copy(adapter, "targets", lambda c: c.update(target_modules=["q_proj"]))) != fp
    assert adapter_fingerprint(_copy(adapter, "tokenizer", extra={"tokenizer.json": "{}"})) != fp
    assert adapter_fingerprint(_copy(adapter, "chat", extra={"chat_template.jinja": "{{ x }}"})) != fp


def test_what_does_not_change_the_computation_keeps_the_identity(adapter):
    """Where it was trained (a run folder moved) and PEFT's model card do not change its outputs."""
    fp = adapter_fingerprint(adapter)
    assert adapter_fingerprint(_copy(adapter, "moved", lambda c: c.update(base_model_name_or_path="/elsewhere"))) == fp
    assert adapter_fingerprint(_copy(adapter, "card", extra={"README.md": "# a model card"})) == fp
    assert adapter_fingerprint(_copy(adapter, "spaces", lambda c: None)) == fp  # re-indented JSON
    # PEFT writes target_modules (a set) in the saving process's hash order
    assert adapter_fingerprint(_copy(adapter, "order", lambda c: c.update(target_modules=c["target_modules"][::-1]))) == fp


def test_merged_copies_of_two_configs_are_two_copies(adapter, tiny_llama, tmp_path, monkeypatch):
    """The merged-copy cache is keyed by the fingerprint: the changed config gets its own folder."""
    monkeypatch.setenv("SDRRL_HOME", str(tmp_path / "home"))
    built: list[Path] = []
    monkeypatch.setattr(models, "_merge_into", lambda model_dir, adapter_dir, out, save_dtype: built.append(adapter_dir) or _fake_merge(out))
    alpha = _copy(adapter, "alpha", lambda c: c.update(lora_alpha=128))
    first = models.merged_model_dir(tiny_llama, adapter, adapter_fingerprint(adapter))
    second = models.merged_model_dir(tiny_llama, alpha, adapter_fingerprint(alpha))
    assert first != second and built == [adapter, alpha]


def _fake_merge(out: Path) -> None:
    (out / "config.json").write_text("{}")


def test_a_merge_killed_midway_is_cleared_by_the_next(adapter, tiny_llama, tmp_path, monkeypatch):
    """A kill mid-merge left a 538 MB temporary folder no later run removed (battery): the next merge
    of that adapter clears it, and a merge that fails removes its own."""
    monkeypatch.setenv("SDRRL_HOME", str(tmp_path / "home"))
    fp = adapter_fingerprint(adapter)
    target = tmp_path / "home" / "merged" / models.sha256_json([models.model_fingerprint(tiny_llama), fp])[:20]
    orphans = [target.parent / f".{target.name}.k3j2x9", target.parent / f".{target.name}.partial"]
    for orphan in orphans:
        orphan.mkdir(parents=True)
        (orphan / "model.safetensors").write_bytes(b"\0" * 1024)
    other = target.parent / ".someone-elses.abc"
    other.mkdir()

    def killed(model_dir, adapter_dir, out, save_dtype):
        (out / "model.safetensors").write_bytes(b"\0" * 1024)
        raise KeyboardInterrupt

    monkeypatch.setattr(models, "_merge_into", killed)
    with pytest.raises(KeyboardInterrupt):
        models.merged_model_dir(tiny_llama, adapter, fp)
    assert not any(o.exists() for o in orphans) and other.exists()
    assert sorted(p.name for p in target.parent.iterdir() if p.is_dir()) == [other.name]
    monkeypatch.setattr(models, "_merge_into", lambda model_dir, adapter_dir, out, save_dtype: _fake_merge(out))
    assert models.merged_model_dir(tiny_llama, adapter, fp) == target and (target / "config.json").exists()


def test_two_callers_on_a_fresh_cache_build_the_builtin_model_once(tmp_path, monkeypatch):
    """Parallel test workers (or two runs) asking for the built-in model on a new machine: one builds it
    while the other waits, and the other then reads the finished folder (no second build replacing it).
    Two threads here: flock excludes two open file descriptions in one process as it does two processes."""
    import threading
    import time

    monkeypatch.setenv("SDRRL_HOME", str(tmp_path / "home"))
    builds: list[str] = []

    def slow_build(out: Path) -> None:
        builds.append(threading.current_thread().name)
        time.sleep(0.3)  # a conversion takes seconds: long enough for the other to arrive
        (out / "config.json").write_text("{}")

    model = models.BuiltinModel("fake-model", "a test model", slow_build)
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(models._build_once(model)), name=f"w{i}") for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1, builds
    assert results[0] == results[1] and (results[0] / "config.json").is_file()
