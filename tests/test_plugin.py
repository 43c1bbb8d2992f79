"""A trainer plugin from outside the repository, built here: a package that imports only
harness.plugin, registered through a dist-info entry point in the `sdrrl_harness.trainers` group."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from plugin_packages import install_plugin, our_imports

from harness.app.cli import main
from harness.core.errors import HarnessError

PLUGIN = textwrap.dedent('''
    """translate-then-SFT that drops long answers: a third party's trainer."""
    from dataclasses import dataclass
    from typing import ClassVar

    from harness.plugin import TrainContext, TranslateSFTConfig, TranslateSFTTrainer, at_least, check_rules, setting


    @dataclass
    class ShortSFTConfig(TranslateSFTConfig):
        max_answer_chars: int = setting(2000, paper="n/a", help="records whose answer is longer are dropped")

        RULES: ClassVar[dict] = {"max_answer_chars": at_least(1)}

        def validate(self, owner: str) -> None:
            check_rules(self, owner)


    class ShortSFTTrainer(TranslateSFTTrainer):
        name = "short_sft"
        description = "translate-then-SFT on short answers only (a plugin)"
        Config = ShortSFTConfig

        def build_dataset(self, ctx: TrainContext) -> list[dict]:
            records = super().build_dataset(ctx)
            return [r for r in records if len(r["messages"][-1]["content"]) <= self.config.max_answer_chars]
''')


def _install(root: Path, entry_name: str) -> Path:
    """The plugin package and its dist-info (what `pip install` writes) under `root`."""
    return install_plugin(root, "short_sft_plugin", PLUGIN, "sdrrl_harness.trainers", entry_name,
                          "short_sft_plugin:ShortSFTTrainer")


@pytest.fixture()
def plugin_on_path(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(_install(tmp_path / "site", "short_sft")))
    monkeypatch.chdir(tmp_path)
    yield
    sys.modules.pop("short_sft_plugin", None)


def test_the_plugin_imports_only_the_plugin_api():
    assert our_imports(PLUGIN) == {"harness.plugin"}


def test_a_plugin_trainer_is_listed_validated_and_logs_its_own_name(plugin_on_path, tmp_path, capsys):
    from harness.plugin import TrainContext, build_config, get_language, get_trainer_class

    assert main(["list", "trainers"]) == 0
    assert "short_sft" in capsys.readouterr().out
    assert main(["list", "settings", "--trainer", "short_sft"]) == 0
    out = capsys.readouterr().out
    assert "\nmax_answer_chars = 2000\n    rule: an integer >= 1; paper: n/a\n    records whose answer is longer are dropped" in out
    assert "\nparallel_per_lang = 0\n    concern: parallel;" in out  # the inherited concerns too
    # validated in the plan stage, named by the plugin's own name, before any model is loaded
    assert main(["run", "--trainer", "short_sft", "--model", "/no/model", "--set", "max_answer_chars=0"]) == 2
    assert capsys.readouterr().err.strip() == "harness: error: bad value for short_sft.max_answer_chars: 0; expected an integer >= 1"

    cls = get_trainer_class("short_sft")
    config = build_config(cls, {"instructions": "builtin:alpaca-smoke", "num_instructions": "5", "translator": "lexicon", "max_answer_chars": "80"})
    ctx = TrainContext(model_dir=Path("/nonexistent-model"), languages=[get_language("en"), get_language("cs")], work_dir=tmp_path / "work")
    records = cls(config).build_dataset(ctx)  # translate-then-SFT never touches the model
    assert records and all(len(r["messages"][-1]["content"]) <= 80 for r in records)
    err = capsys.readouterr().err
    assert "short_sft: translating 5 reference pairs into cs" in err and "translate_sft" not in err


def test_a_trainer_registered_under_another_name_than_its_own_is_refused(tmp_path, monkeypatch, capsys):
    from harness.plugin import load_trainers

    monkeypatch.syspath_prepend(str(_install(tmp_path / "site", "renamed")))
    try:
        with pytest.raises(HarnessError, match=r"entry point 'renamed' .* is a trainer named 'short_sft'; set name = 'renamed'"):
            load_trainers()
        assert main(["list", "trainers"]) == 2
        assert "set name = 'renamed'" in capsys.readouterr().err
    finally:
        sys.modules.pop("short_sft_plugin", None)
