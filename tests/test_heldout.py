"""The held-out slice: whole groups, per language, deterministic, never everything."""

from __future__ import annotations

from harness.services.heldout import heldout_rows, split_heldout
from harness.core.runstore import write_json


def _records(n_groups: int = 20) -> list[dict]:
    out = []
    for g in range(n_groups):
        for lang in ("en", "cs", "ja"):
            out.append({"id": f"g{g}:{lang}", "group": f"g{g}", "lang": lang, "messages": []})
    out += [{"id": f"p{i}", "group": f"p{i}", "lang": "cs", "messages": []} for i in range(10)]
    return out


def test_split_holds_out_whole_groups_per_language_deterministically():
    records = _records()
    train, held = split_heldout(records, seed=0, fraction=0.1)
    assert len(train) + len(held) == len(records)
    assert not {r["group"] for r in train} & {r["group"] for r in held}
    # about a tenth of each language's groups: en and ja have 20 groups -> 2, cs has 30 -> 3
    for lang, want in (("en", 2), ("ja", 2), ("cs", 3)):
        assert len({r["group"] for r in held if r["lang"] == lang}) >= want
    assert split_heldout(list(reversed(records)), seed=0, fraction=0.1)[1] == list(reversed(held))
    assert {r["group"] for r in split_heldout(records, seed=1, fraction=0.1)[1]} != {r["group"] for r in held}


def test_small_sets_keep_something_to_train_on():
    one = [{"group": "g", "lang": "en", "messages": []}, {"group": "g", "lang": "cs", "messages": []}]
    assert split_heldout(one, seed=0) == (one, [])  # a language with one group has nothing to spare
    two = [r for r in _records(2) if r["group"].startswith("g")]
    train, held = split_heldout(two, seed=0)
    assert len({r["group"] for r in held}) == 1 and train


def test_report_section_shows_base_and_adapter_loss(tmp_path):
    run = tmp_path / "r1"
    write_json(run / "eval" / "heldout.json", {"key": "k", "records": 2, "langs": {
        "cs": {"n_records": 2, "tokens": 40, "base_loss": 3.0, "adapter_loss": 2.25}}})
    rows = heldout_rows([run, tmp_path / "no-heldout"])
    assert rows == [{"run": "r1", "lang": "cs", "records": 2, "tokens": 40, "base_loss": 3.0, "adapter_loss": 2.25,
                     "drop": 0.75}]
    assert heldout_rows([tmp_path / "no-heldout"]) == []
    from reports import sections

    assert sections.heldout_table({"heldout": rows})[1] == [["r1", "cs", "2", "40", "3.0000", "2.2500", "+0.7500"]]
