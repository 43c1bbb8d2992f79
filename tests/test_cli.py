"""The CLI's promises: listings, and one-line errors that name the bad value and the valid ones."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.app.cli import main


def _error_line(capsys, argv) -> str:
    code = main(argv) if argv[0] != "--" else None
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    return err


def _exit_error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize(
    "argv, must_contain",
    [
        (["eval", "--model", "smollm2-135m", "--engine", "tensorrt"], ["'tensorrt'", "hf", "vllm"]),
        (["eval", "--model", "smollm2-135m", "--suite", "paper99"], ["'paper99'", "paper15", "smoke"]),
        (["eval", "--model", "smollm2-135m", "--suite", "smoke", "--langs", "cs,xx"], ["'xx'", "cs"]),
        (["eval", "--model", "smollm2-135m", "--suite", "smoke", "--tasks", "belebele_zz"], ["'belebele_zz'", "belebele_cs"]),
        (["eval", "--model", "/no/such/model/dir", "--suite", "smoke"], ["'/no/such/model/dir'", "smollm2-135m"]),
        (["run", "--trainer", "magic", "--model", "smollm2-135m"], ["'magic'", "sdrrl", "translate_sft"]),
        (["run", "--trainer", "sdrrl", "--model", "smollm2-135m", "--set", "nope=1"], ["'nope'", "code_switch_ratio"]),
        (["run", "--trainer", "sdrrl", "--model", "smollm2-135m", "--force", "everything"], ["'everything'", "evaluate"]),
        (["list", "things"], ["'things'", "langs", "suites"]),
        (["list", "settings"], ["--trainer", "sdrrl", "translate_sft"]),
        (["list", "settings", "--trainer", "magic"], ["'magic'", "sdrrl"]),
        (["list", "tasks", "--trainer", "sdrrl"], ["--trainer", "list settings"]),
    ],
)
def test_bad_input_gives_one_line_naming_value_and_valid_ones(capsys, argv, must_contain, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    err = _error_line(capsys, argv)
    for part in must_contain:
        assert part in err, err


def test_unknown_subcommand_is_one_line(capsys):
    err = _exit_error(capsys, ["evaluate-everything"])
    assert "evaluate-everything" in err


def test_list_shows_the_language_table_and_suites(capsys):
    assert main(["list", "langs"]) == 0
    out = capsys.readouterr().out
    for code in ("ces_Latn", "nob_Latn", "khm_Khmr", "Japanese"):
        assert code in out
    assert main(["list", "suites"]) == 0
    out = capsys.readouterr().out
    for suite in ("paper15", "sea", "smoke"):
        assert suite in out
    assert main(["list", "trainers"]) == 0
    out = capsys.readouterr().out
    for trainer in ("sdrrl", "translate_sft", "english_sft", "base"):
        assert trainer in out


def test_list_settings_shows_each_setting_with_its_concern_default_rule_and_help(capsys):
    from harness.trainer_api import get_trainer_class, setting_infos

    assert main(["list", "settings", "--trainer", "sdrrl"]) == 0
    blocks = capsys.readouterr().out.strip().split("\n\n")[1:]  # after the header: one block per setting
    infos = setting_infos(get_trainer_class("sdrrl"))
    assert [block.splitlines()[0].split(" = ")[0] for block in blocks] == [info.name for info in infos]
    for block, info in zip(blocks, infos):
        head, where, text = block.splitlines()
        assert where.startswith(f"    concern: {info.concern}; rule: " if info.concern else "    rule: ") and f"paper: {info.paper}" in where
        assert text == f"    {info.help}"
    shown = dict(block.splitlines()[0].split(" = ", 1) for block in blocks)
    # the trainer's own default: sdrrl gives the parallel concern 200 (the concern's default is 0)
    assert shown["parallel_per_lang"] == "200" and shown["same_batch"] == "true" and shown["translator_model"] == '""'
    assert shown["target_modules"] == "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
    assert "rule: one of: self, reference; paper: confirmed" in blocks[[i.name for i in infos].index("answer_source")]
    assert main(["list", "settings", "--trainer", "base"]) == 0
    assert "takes no settings" in capsys.readouterr().out


def test_console_script_is_installed_and_errors_without_traceback():
    exe = Path(sys.executable).parent / "harness"
    assert exe.exists(), "the `harness` console script is not installed; run scripts/install.sh"
    proc = subprocess.run([str(exe), "eval", "--model", "smollm2-135m", "--engine", "tpu"], capture_output=True, text=True,
                          env={**os.environ, "NO_COLOR": "1"})
    assert proc.returncode == 2
    assert proc.stderr.strip() == "harness: error: unknown engine 'tpu'; valid: auto, hf, vllm"


def test_a_report_of_a_missing_run_makes_no_out_folder(tmp_path, capsys):
    out = tmp_path / "report-out"
    assert main(["report", str(tmp_path / "no-such-run"), "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == f"harness: error: not a run folder: {tmp_path / 'no-such-run'} (no such directory)"
    assert not out.exists()
