from pathlib import Path

import pytest

from harness.core.errors import HarnessError
from harness.core.langs import parse_languages
from harness.app.spec import RunSpec, check_same_run, default_run_name, save_spec, spec_digest
from harness.trainer_api import build_config, get_trainer_class, settings_of


def _spec(**kw) -> RunSpec:
    base = dict(name="r", trainer="sdrrl", model="smollm2-135m", suite="smoke", languages=("en", "cs"))
    base.update(kw)
    return RunSpec(**base)


def test_digest_changes_with_any_setting():
    assert _spec().digest == _spec().digest
    assert _spec().digest != _spec(seed=1).digest
    assert _spec().digest != _spec(trainer_config={"epochs": 2}).digest


def test_reusing_a_run_name_with_other_settings_is_refused(tmp_path: Path):
    path = tmp_path / "spec.yaml"
    save_spec(_spec(), path)
    check_same_run(path, _spec())  # same settings: fine
    with pytest.raises(HarnessError, match=r"seed: 0 -> 1"):
        check_same_run(path, _spec(seed=1))


def test_default_run_name_uses_folder_name_of_paths():
    assert default_run_name("sdrrl", "/models/My Model", "smoke") == "sdrrl-My-Model-smoke"
    assert default_run_name("base", "smollm2-135m", "paper15") == "base-smollm2-135m-paper15"


def test_language_sets_expand_and_unknown_code_is_named():
    assert [l.code for l in parse_languages("sea,cs,th")] == ["th", "km", "cs"]
    assert len(parse_languages("paper15")) == 15
    with pytest.raises(HarnessError, match=r"unknown language 'xx'; valid: .*cs"):
        parse_languages("cs,xx")


def test_trainer_settings_are_typed_and_unknown_ones_named():
    cls = get_trainer_class("sdrrl")
    cfg = build_config(cls, {"epochs": "3", "learning_rate": "0.001"})
    assert cfg.train.epochs == 3 and cfg.train.learning_rate == pytest.approx(0.001)
    with pytest.raises(HarnessError, match=r"no_such_knob"):
        build_config(cls, {"no_such_knob": "1"})
    with pytest.raises(HarnessError, match=r"epochs"):
        build_config(cls, {"epochs": "many"})
    with pytest.raises(HarnessError, match=r"unknown trainer 'nope'; valid: .*sdrrl"):
        get_trainer_class("nope")


def test_a_spec_written_before_a_field_existed_still_matches(tmp_path: Path):
    import yaml

    path = tmp_path / "spec.yaml"
    old = _spec().to_dict()
    del old["adapter_serving"]  # as written by an older harness
    path.write_text(yaml.safe_dump(old))
    check_same_run(path, _spec())
    with pytest.raises(HarnessError, match="adapter_serving"):
        check_same_run(path, _spec(adapter_serving="lora"))


def _sdrrl_spec(**settings) -> RunSpec:
    cls = get_trainer_class("sdrrl")
    return _spec(trainer_config=settings_of(build_config(cls, settings)))


def _sdrrl_defaults() -> dict:
    return settings_of(get_trainer_class("sdrrl").Config())


def test_a_setting_added_at_its_default_keeps_the_run_and_its_hashes(tmp_path: Path):
    """An older harness wrote this spec.yaml before `code_switch_side` and `adapter_serving` existed:
    at their defaults they change nothing, so the folder's spec and every stage's input hash stay."""
    import yaml

    old = _sdrrl_spec().to_dict()
    del old["trainer_config"]["code_switch_side"], old["adapter_serving"]
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(old, sort_keys=False))
    old_digest = spec_digest(yaml.safe_load(path.read_text()))  # what the old harness recorded (RunSpec.digest)
    view = check_same_run(path, _sdrrl_spec(), _sdrrl_defaults())
    assert view == old and spec_digest(view) == old_digest != _sdrrl_spec().digest
    # A fresh folder keeps every key.
    assert check_same_run(tmp_path / "new" / "spec.yaml", _sdrrl_spec(), _sdrrl_defaults()) == _sdrrl_spec().to_dict()
    # Set to another value, the added setting is a change, named alone.
    with pytest.raises(HarnessError) as exc:
        check_same_run(path, _sdrrl_spec(code_switch_side="answer"), _sdrrl_defaults())
    assert "(setting code_switch_side: (absent) -> 'answer')" in str(exc.value)


def test_a_refused_resume_names_only_the_differing_settings(tmp_path: Path):
    path = tmp_path / "spec.yaml"
    save_spec(_sdrrl_spec(), path)
    with pytest.raises(HarnessError) as exc:
        check_same_run(path, _sdrrl_spec(lora_rank="8", code_switch_ratio="0.5"), _sdrrl_defaults())
    message = str(exc.value)
    assert "(setting lora_rank: 16 -> 8; setting code_switch_ratio: 0.3 -> 0.5)" in message
    assert "lora_alpha" not in message and len(message) < 250, message
    # A setting the stored spec has and the trainer no longer declares is a change too.
    import yaml

    old = _sdrrl_spec().to_dict()
    old["trainer_config"]["retired_knob"] = 3
    path.write_text(yaml.safe_dump(old))
    with pytest.raises(HarnessError, match=r"\(setting retired_knob: 3 -> \(absent\)\)"):
        check_same_run(path, _sdrrl_spec(), _sdrrl_defaults())
