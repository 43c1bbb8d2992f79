from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.langs import parse_languages
from harness.spec import RunSpec, check_same_run, default_run_name, save_spec
from harness.trainer_api import build_config, get_trainer_class


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
