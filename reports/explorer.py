"""The item explorer: per task, the items where the systems disagree, with what each system answered.

Multiple choice (and any task whose primary metric is 0/1 per item): the items some system got right and
another wrong (flipped). Generation: the items whose per-item primary metric (else sentence chrF++) differs
most between systems. For each: the prompt, the reference, and each system's choice or output. A system
with several seeds shows its first seed's answers (report.json's systems list the runs).

`item_explorer(systems)` gives report.json's "explorer"; `explorer_html` renders it as static HTML:
one <details> per task, long texts folded, a language and a direction filter (a few lines of inline
JS; without JS every row shows). Texts are scrubbed of this machine's paths.
"""

from __future__ import annotations

import re
from typing import Any

from sacrebleu.metrics import CHRF

from reports.fmt import esc
from reports.load import TaskResult
from reports.systems import System

MAX_ITEMS = 20  # items per task in the report (our default): the largest differences first
FOLD_AT = 240  # characters: a longer text is shown folded, its first FOLD_AT characters as the summary
_CHRF = CHRF(word_order=2)  # chrF++, as harness.evaluation.samples scores each item
_PATH = re.compile(r"(?<![\w.~])(?:~|/)(?:[\w.-]+/)+([\w.-]+)")  # an absolute path: keep its last part


def scrub(text: Any) -> str:
    """A text as the report may show it: machine paths reduced to …/<last part>."""
    return _PATH.sub(lambda m: "…/" + m.group(1), str(text if text is not None else ""))


def _binary(results: list[TaskResult], metric: str) -> bool:
    values = [v for r in results for v in (r.item_values(metric) or [])]
    return bool(values) and all(v in (0.0, 1.0) for v in values)


def _by_item(result: TaskResult) -> dict[str, dict]:
    return {str(s.get("doc_hash") or s.get("doc_id")): s for s in result.samples or []}


def _item_value(row: dict, metric: str) -> float | None:
    """The item's primary metric; for a corpus metric (BLEU) the sentence chrF++ samples.jsonl keeps (computed
    here from prediction and reference for rows written without it)."""
    value = (row.get("metrics") or {}).get(metric)
    if value is None:
        value = row.get("chrf")
    if value is None and isinstance(row.get("prediction"), str) and isinstance(row.get("reference"), str):
        value = _CHRF.sentence_score(row["prediction"], [row["reference"]]).score
    return float(value) if isinstance(value, (int, float)) else None


def _answer(row: dict, kind: str) -> str:
    if kind == "generation":
        return scrub(row.get("prediction") if row.get("prediction") not in (None, "") else row.get("raw_output", ""))
    choice = row.get("prediction")
    choices = row.get("choices") or []
    if isinstance(choice, int) and 0 <= choice < len(choices):
        return f"({choice}) {scrub(choices[choice])}"
    return scrub(choice)


def _reference(row: dict, kind: str) -> str:
    if kind == "generation":
        return scrub(row.get("reference") if row.get("reference") is not None else row.get("target", ""))
    target, choices = row.get("target"), row.get("choices") or []
    gold = int(target) if str(target).isdigit() else None
    return f"({gold}) {scrub(choices[gold])}" if gold is not None and gold < len(choices) else scrub(target)


def _task_entry(task: str, systems: list[System], results: list[TaskResult]) -> dict | None:
    first = results[0]
    metric = first.primary_metric
    rows = [_by_item(r) for r in results]
    shared = [key for key in rows[0] if all(key in by_item for by_item in rows)]
    binary = _binary(results, metric)
    items = []
    for key in shared:
        values = [_item_value(by[key], metric) for by in rows]
        if any(v is None for v in values):
            continue
        spread = max(values) - min(values)
        if spread <= 0:
            continue
        row0 = rows[0][key]
        items.append({
            "doc_id": row0.get("doc_id"),
            "change": "flipped" if binary else "differs",
            "spread": round(spread, 6),
            "prompt": scrub(row0.get("prompt") or row0.get("source") or row0.get("instruction") or ""),
            "reference": _reference(row0, first.kind),
            "answers": [{"system": s.key, "answer": _answer(by[key], first.kind), "value": round(v, 4),
                         **({"correct": v == 1.0} if binary else {})}
                        for s, by, v in zip(systems, rows, values)],
        })
    if not items:
        return None
    items.sort(key=lambda i: (-i["spread"], str(i["doc_id"])))
    return {"task": task, "family": first.family, "lang": first.lang, "direction": first.direction or "",
            "kind": first.kind, "metric": metric if any(_has(r, metric) for r in results) else "chrf",
            "systems": [s.key for s in systems], "disagreeing": len(items), "items": items[:MAX_ITEMS]}


def _has(result: TaskResult, metric: str) -> bool:
    return bool(result.samples) and all(metric in (s.get("metrics") or {}) for s in result.samples)


def item_explorer(systems: list[System]) -> dict:
    """report.json's "explorer": per task every system evaluated, the items they disagree on."""
    tasks: list[str] = []
    for system in systems:
        tasks += [t for t in system.run.variant(system.variant) if t not in tasks]
    entries = []
    for task in tasks:
        present = [(s, r) for s in systems if (r := s.result(task)) is not None and r.samples]
        if len(present) < 2:
            continue
        entry = _task_entry(task, [s for s, _ in present], [r for _, r in present])
        if entry:
            entries.append(entry)
    return {"max_items": MAX_ITEMS, "tasks": entries}


# --------------------------------------------------------------------------- HTML

_JS = """
(function () {
  var root = document.getElementById('item-explorer'); if (!root) return;
  var lang = root.querySelector('select[name=lang]'), dir = root.querySelector('select[name=direction]');
  function apply() {
    root.querySelectorAll('details.xtask').forEach(function (d) {
      var ok = (!lang.value || d.dataset.lang === lang.value) && (!dir.value || d.dataset.direction === dir.value);
      d.style.display = ok ? '' : 'none';
    });
  }
  lang.addEventListener('change', apply); dir.addEventListener('change', apply);
})();
"""


def _text(text: str) -> str:
    if len(text) <= FOLD_AT:
        return f'<span class="xt">{esc(text)}</span>'
    return f'<details class="fold"><summary>{esc(text[:FOLD_AT])}…</summary><span class="xt">{esc(text)}</span></details>'


def _select(name: str, label: str, values: list[str]) -> str:
    options = "".join(f'<option value="{esc(v)}">{esc(v)}</option>' for v in values)
    return f'<label>{esc(label)} <select name="{name}"><option value="">all</option>{options}</select></label> '


def explorer_html(report: dict, labels: dict[str, str]) -> list[str]:
    entries = (report.get("explorer") or {}).get("tasks") or []
    if not entries:
        return []
    langs = sorted({e["lang"] for e in entries})
    directions = sorted({e["direction"] for e in entries if e["direction"]})
    blocks = ['<div id="item-explorer">', '<p class="small">' + _select("lang", "language", langs)
              + _select("direction", "direction", directions) + "</p>"]
    for e in entries:
        flipped = e["items"][0]["change"] == "flipped"
        head = ["item", "change" if flipped else "spread", "prompt", "reference"] + [labels.get(k, k) for k in e["systems"]]
        rows = []
        for item in e["items"]:
            answers = "".join(
                f'<td class="lbl{" pos" if a.get("correct") is True else " neg" if a.get("correct") is False else ""}" '
                f'data-system="{esc(a["system"])}">{_text(a["answer"])}'
                + (f'<span class="st">{a["value"]:.4g}</span>' if "correct" not in a else "") + "</td>"
                for a in item["answers"])
            change = "flipped" if item["change"] == "flipped" else f'{item["spread"]:.4g}'
            rows.append(f'<tr class="xitem" data-doc="{esc(item["doc_id"])}"><td class="num">{esc(item["doc_id"])}</td>'
                        f'<td class="num">{esc(change)}</td><td class="lbl">{_text(item["prompt"])}</td>'
                        f'<td class="lbl">{_text(item["reference"])}</td>{answers}</tr>')
        what = "flipped between correct and wrong" if flipped else f"differing in {e['metric']}, the largest differences first"
        summary = (f'{e["task"]} — {e["disagreeing"]} items {what}'
                   + (f' (the first {len(e["items"])} shown)' if e["disagreeing"] > len(e["items"]) else ""))
        blocks.append(f'<details class="xtask" data-task="{esc(e["task"])}" data-lang="{esc(e["lang"])}" '
                      f'data-direction="{esc(e["direction"])}"><summary>{esc(summary)}</summary><div class="tw"><table>'
                      "<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr></thead><tbody>"
                      + "".join(rows) + "</tbody></table></div></details>")
    blocks += ["</div>", f"<script>{_JS}</script>"]
    return blocks


def explorer_markdown(report: dict, labels: dict[str, str]) -> list[str]:
    """One line: how many items each task's systems disagree on; the items are in report.html and report.json."""
    entries = (report.get("explorer") or {}).get("tasks") or []
    if not entries:
        return []
    counts = ", ".join(f"{e['task']} {e['disagreeing']}" for e in entries)
    return [f"Items where the systems disagree, per task: {counts}. The items, with prompt, reference and each "
            "system's answer: report.html (filterable by language and direction) and report.json (\"explorer\").", ""]
