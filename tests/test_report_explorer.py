"""The report's training curves and item explorer (issue 27 items 2 and 3), checked in the HTML's parsed
DOM (html.parser) against report.json and against the run folders they were built from."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

from harness.core.runstore import RunPaths, read_jsonl, task_samples, write_json, write_jsonl
from reports.build import build_report
from reports.explorer import FOLD_AT
from run_fixtures import make_run, reseal

LOSSES = {"r1": [2.5, 2.1, 1.9, 1.7], "r2": [2.4, 2.2, 2.0, 1.95]}
HELDOUT = {"langs": {"en": {"n_records": 2, "tokens": 30, "base_loss": 3.0, "adapter_loss": 2.0},
                     "cs": {"n_records": 1, "tokens": 10, "base_loss": 4.0, "adapter_loss": 3.0}}}
SECRET = "/home/someone/private/notes.txt"


class _Dom(HTMLParser):
    """Elements as (tag, attributes, text inside), nested text included; enough for the checks here."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[dict] = []
        self._open: list[dict] = []

    def handle_starttag(self, tag, attrs):
        element = {"tag": tag, "attrs": dict(attrs), "text": "", "children": []}
        if self._open:
            self._open[-1]["children"].append(element)
        self.elements.append(element)
        if tag not in ("rect", "circle", "line", "polyline", "input", "meta"):
            self._open.append(element)

    def handle_endtag(self, tag):
        if any(e["tag"] == tag for e in self._open):
            while self._open.pop()["tag"] != tag:
                pass

    def handle_data(self, data):
        for element in self._open:
            element["text"] += data

    def find(self, tag: str, cls: str | None = None) -> list[dict]:
        return [e for e in self.elements if e["tag"] == tag and (cls is None or cls in e["attrs"].get("class", "").split())]


def _children(element: dict, tag: str) -> list[dict]:
    found = []
    for child in element["children"]:
        if child["tag"] == tag:
            found.append(child)
        found += _children(child, tag)
    return found


def _runs(tmp_path: Path) -> list[Path]:
    r1 = make_run(tmp_path / "runs", "r1", n=12, train_stats={"losses": LOSSES["r1"]})
    r2 = make_run(tmp_path / "runs", "r2", trainer="translate_sft", with_base=False, adapter_acc=0.6, n=12,
                  train_stats={"losses": LOSSES["r2"]})
    write_json(RunPaths(r1).heldout_scores, HELDOUT)
    # prompts and choices as harness.evaluation.samples keeps them; one long, one naming a machine path
    for run in (r1, r2):
        for path in RunPaths(run).eval_root.glob("*/belebele_*/samples.jsonl"):
            rows = read_jsonl(path)
            for row in rows:
                row["prompt"] = f"Passage {row['doc_id']} " + ("word " * 80 if row["doc_id"] == 1 else f"see {SECRET}")
                row["choices"] = [f"answer {c}" for c in "ABCD"]
            write_jsonl(path, rows)
            reseal(path.parent)  # as the evaluation writes them
    return [r1, r2]


def _report(tmp_path: Path) -> tuple[dict, _Dom, str]:
    out = tmp_path / "out"
    build_report(_runs(tmp_path), out, n_resamples=50)
    html = (out / "report.html").read_text(encoding="utf-8")
    dom = _Dom()
    dom.feed(html)
    return json.loads((out / "report.json").read_text(encoding="utf-8")), dom, html


def test_each_trained_run_has_its_loss_curve_in_html_and_json(tmp_path):
    report, dom, _ = _report(tmp_path)
    assert {c["run"]: c["loss"] for c in report["curves"]} == LOSSES
    curves = {svg["attrs"]["data-run"]: svg for svg in dom.find("svg", "curve")}
    assert set(curves) == set(LOSSES)
    for run, losses in LOSSES.items():
        line = _children(curves[run], "polyline")[0]
        ys = [float(p.split(",")[1]) for p in line["attrs"]["points"].split()]
        assert len(ys) == len(losses)
        assert all((a < b) == (la > lb) for a, b, la, lb in zip(ys, ys[1:], losses, losses[1:]) if la != lb)  # lower loss, higher on screen
    held = [g for g in _children(curves["r1"], "g") if "heldout" in g["attrs"].get("class", "")][0]
    assert (float(held["attrs"]["data-base"]), float(held["attrs"]["data-adapter"])) == (3.25, 2.25)  # token-weighted
    assert report["curves"][0]["heldout"] == {"base": 3.25, "adapter": 2.25} and report["curves"][1]["heldout"] is None
    assert not [g for g in _children(curves["r2"], "g") if "heldout" in g["attrs"].get("class", "")]


def _correct(run: Path, variant: str, task: str) -> dict[int, float]:
    return {r["doc_id"]: r["metrics"]["acc"] for r in read_jsonl(task_samples(RunPaths(run).eval_dir(variant) / task))}


def test_the_explorer_shows_exactly_the_flipped_items_with_each_systems_choice(tmp_path):
    report, dom, html = _report(tmp_path)
    r1, r2 = tmp_path / "runs" / "r1", tmp_path / "runs" / "r2"
    entries = {e["task"]: e for e in report["explorer"]["tasks"]}
    for task in ("belebele_cs", "belebele_en", "belebele_ja"):
        outcomes = [_correct(r1, "base", task), _correct(r1, "adapter", task), _correct(r2, "adapter", task)]
        flipped = sorted(i for i in outcomes[0] if len({o[i] for o in outcomes}) > 1)
        assert sorted(item["doc_id"] for item in entries.get(task, {"items": []})["items"]) == flipped[:20]
        if not flipped:
            continue
        assert entries[task]["systems"] == ["base", "adapter:r1", "adapter:r2"]
        section = next(d for d in dom.find("details", "xtask") if d["attrs"]["data-task"] == task)
        rows = [tr for tr in _children(section, "tr") if "xitem" in tr["attrs"].get("class", "")]
        assert [int(tr["attrs"]["data-doc"]) for tr in rows] == [item["doc_id"] for item in entries[task]["items"]]
        for tr, item in zip(rows, entries[task]["items"]):
            cells = {td["attrs"]["data-system"]: td for td in _children(tr, "td") if "data-system" in td["attrs"]}
            for answer in item["answers"]:
                assert ("pos" if answer["correct"] else "neg") in cells[answer["system"]]["attrs"]["class"]
                assert answer["answer"].startswith(f"({_prediction(tmp_path, answer['system'], task, item['doc_id'])})")
    # generation: the largest per-item differences first, each system's output shown
    flores = entries["flores200_en-cs"]
    assert flores["direction"] == "en-cs" and flores["metric"] == "chrf"
    spreads = [item["spread"] for item in flores["items"]]
    assert spreads == sorted(spreads, reverse=True) and spreads[0] > 0


def _prediction(tmp_path: Path, system: str, task: str, doc_id: int) -> int:
    run, variant = ("r1", "base") if system == "base" else (system.split(":")[1], "adapter")
    rows = read_jsonl(task_samples(RunPaths(tmp_path / "runs" / run).eval_dir(variant) / task))
    return next(r["prediction"] for r in rows if r["doc_id"] == doc_id)


def test_the_explorer_filters_by_language_and_direction_folds_long_texts_and_hides_paths(tmp_path):
    report, dom, html = _report(tmp_path)
    selects = {s["attrs"]["name"]: [o["attrs"]["value"] for o in _children(s, "option")] for s in dom.find("select")}
    assert selects["lang"] == ["", "cs", "en", "ja"]
    assert selects["direction"] == ["", "cs-en", "en-cs", "en-ja", "ja-en"]
    sections = dom.find("details", "xtask")
    assert {(d["attrs"]["data-lang"], d["attrs"]["data-direction"]) for d in sections} >= {("cs", "en-cs"), ("cs", ""), ("ja", "ja-en")}
    assert "d.dataset.lang === lang.value" in html  # the filter's script reads the attributes the sections carry
    folded = dom.find("details", "fold")
    assert folded and all(len(_children(d, "summary")[0]["text"]) <= FOLD_AT + 1 for d in folded)
    text = json.dumps(report["explorer"], ensure_ascii=False)
    assert SECRET not in html and SECRET not in text and "…/notes.txt" in text and str(tmp_path) not in html


def test_markdown_names_the_new_sections(tmp_path):
    report, _, _ = _report(tmp_path)
    markdown = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "## Training curves" in markdown and "| r1 | sdrrl | 4 | 2.5000 | 1.7000 | 3.2500 | 2.2500 |" in markdown
    assert "## Item explorer: where the systems disagree" in markdown
    flores = next(e for e in report["explorer"]["tasks"] if e["task"] == "flores200_en-cs")
    assert f"flores200_en-cs {flores['disagreeing']}," in markdown


def test_samples_keep_the_prompt_and_the_choices_the_explorer_shows():
    from harness.evaluation.samples import sample_rows

    mc = {"doc_id": 0, "doc_hash": "h", "target": 1, "metrics": ["acc"], "acc": 1.0,
          "arguments": [("Q: sky? A:", " blue"), ("Q: sky? A:", " green")], "filtered_resps": [(-2.0, False), (-1.0, True)]}
    gen = {"doc_id": 0, "doc_hash": "g", "target": "2", "metrics": ["exact_match"], "exact_match": 1.0,
           "arguments": {"gen_args_0": {"arg_0": "1+1=", "arg_1": {"until": ["\n"]}}}, "filtered_resps": ["2"]}
    (row,) = sample_rows([mc], "comprehension")
    assert (row["prompt"], row["choices"], row["prediction"]) == ("Q: sky? A:", ["blue", "green"], 1)
    (row,) = sample_rows([gen], "generation")
    assert row["prompt"] == "1+1=" and "choices" not in row
