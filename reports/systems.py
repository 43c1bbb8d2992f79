"""The systems a report compares: the base model, and each trained configuration with its seeds.

Runs that differ only in their seed (and name) are one system, their seed replicates; cells then
show the seed mean and the spread between seeds. A system is labelled by its trainer plus the
settings in which it differs from the other systems of that trainer (budget fields aside: the
cost table shows those), so "sdrrl" and "sdrrl · code_switch_variants=0" read as what they are.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from reports.load import Run, TaskResult

IDENTITY_IGNORED = ("name", "seed")  # what may differ between the seed replicates of one system
LABEL_IGNORED = ("max_steps", "epochs", "tokens_per_step")  # budget fields: the budget table shows them


@dataclass
class System:
    key: str
    label: str
    runs: list[Run]  # seed replicates, ordered by seed; the base model has one
    variant: str
    differs: dict[str, Any] = field(default_factory=dict)  # settings that set it apart from its trainer's others

    @property
    def run(self) -> Run:
        return self.runs[0]

    @property
    def trainer(self) -> str:
        return self.run.trainer

    @property
    def seeds(self) -> list[int | None]:
        return [r.spec.get("seed") for r in self.runs]

    def result(self, task: str) -> TaskResult | None:
        """The first replicate's result: the task's shape (kind, metrics, samples' order)."""
        return self.run.variant(self.variant).get(task)

    def results(self, task: str) -> list[TaskResult]:
        return [res for r in self.runs if (res := r.variant(self.variant).get(task)) is not None]

    @property
    def non_default(self) -> dict[str, Any]:
        """The settings it trained with that differ from its trainer's defaults (none for the base model)."""
        return non_default_settings(self.run) if self.variant == "adapter" else {}

    def to_dict(self) -> dict:
        return {"key": self.key, "label": self.label, "runs": [r.name for r in self.runs], "variant": self.variant,
                "trainer": self.trainer, "seeds": self.seeds,
                "differs": {k: portable(v) for k, v in self.differs.items()},
                "non_default": {k: portable(v) for k, v in self.non_default.items()}}


# The budget's settings: a comparison overrides some for its members (max_steps then outweighs epochs),
# so the systems table leaves all of them to the budget table, which shows what the runs actually took.
BUDGET_SET = ("max_steps", "tokens_per_step", "epochs", "batch_size", "grad_accum_steps")


@lru_cache(maxsize=None)
def _trainer_defaults(trainer: str) -> dict[str, Any] | None:
    from harness.core.errors import HarnessError
    from harness.trainer_api import get_trainer_class, settings_of

    try:
        return settings_of(get_trainer_class(trainer).Config())
    except HarnessError:  # a trainer plugin not installed here: its defaults are unknown
        return None


def non_default_settings(run: Run) -> dict[str, Any]:
    """The run's effective trainer settings that differ from its trainer's defaults, wherever they came
    from (the suite, --config, --set, an ablation preset)."""
    defaults = _trainer_defaults(run.trainer)
    config = run.spec.get("trainer_config") or {}
    if defaults is None:
        return {}
    return {k: v for k, v in config.items() if k in defaults and k not in BUDGET_SET and defaults[k] != v}


def _identity(run: Run) -> str:
    import json

    spec = {k: v for k, v in run.spec.items() if k not in IDENTITY_IGNORED}
    config = {k: v for k, v in (spec.get("trainer_config") or {}).items() if k not in LABEL_IGNORED}
    return json.dumps({**spec, "trainer_config": config}, sort_keys=True, default=str)


def group_replicates(runs: list[Run]) -> list[list[Run]]:
    """Adapter runs grouped by everything but seed and name (and budget fields), in first-seen order."""
    groups: list[tuple[str, list[Run]]] = []
    for r in runs:
        identity, seed = _identity(r), r.spec.get("seed")
        home = next((g for key, g in groups if key == identity and seed not in {x.spec.get("seed") for x in g}), None)
        if home is None:  # a new configuration, or the same one given again with a seed it already has
            groups.append((identity, [r]))
        else:
            home.append(r)
    return [sorted(g, key=lambda r: (r.spec.get("seed") is None, r.spec.get("seed") or 0)) for _, g in groups]


def differing_settings(groups: list[list[Run]]) -> list[dict[str, Any]]:
    """Per group: the trainer settings whose value differs from the most common one among the
    groups of the same trainer."""
    out = []
    for group in groups:
        trainer, config = group[0].trainer, group[0].spec.get("trainer_config") or {}
        peers = [g[0].spec.get("trainer_config") or {} for g in groups if g[0].trainer == trainer]
        differs = {}
        for key, value in config.items():
            if key in LABEL_IGNORED:
                continue
            common, _ = Counter(repr(p.get(key)) for p in peers).most_common(1)[0]
            if repr(value) != common:
                differs[key] = value
        out.append(differs)
    return out


def portable(value: Any) -> Any:
    """A setting as a report may show it: an absolute path of this machine becomes …/<its last part>."""
    if isinstance(value, str) and value.startswith(("/", "~")):
        return "…/" + value.rstrip("/").rsplit("/", 1)[-1]
    if isinstance(value, list):
        return [portable(v) for v in value]
    return value


def system_label(trainer: str, differs: dict[str, Any]) -> str:
    if not differs:
        return trainer
    return trainer + " · " + ", ".join(f"{k}={_short(v)}" for k, v in differs.items())


def _short(value: Any) -> str:
    value = portable(value)
    text = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
    return text if len(text) <= 24 else text[:21] + "..."


def make_systems(runs: list[Run]) -> tuple[list[System], list[str]]:
    notes: list[str] = []
    systems: list[System] = []
    base_run = next((r for r in runs if r.variant("base")), None)
    if base_run is not None:
        systems.append(System("base", "base", [base_run], "base"))
        if len(runs) > 1:
            notes.append(f"The base-model column is the evaluation stored in run {base_run.name}.")
    else:
        notes.append("No run holds a base-model evaluation (eval/base): no deltas against base.")
    groups = group_replicates([r for r in runs if r.variant("adapter")])
    differs = differing_settings(groups)
    labels = [system_label(g[0].trainer, d) for g, d in zip(groups, differs)]
    for i, group in enumerate(groups):
        label = labels[i] if labels.count(labels[i]) == 1 else f"{labels[i]} ({group[0].name})"  # same settings twice
        systems.append(System(f"adapter:{group[0].name}", label, group, "adapter", differs[i]))
    models = sorted({str(portable(r.model)) for r in runs})
    if len(models) > 1:
        notes.append("The runs use different base models (" + ", ".join(models) + "): "
                     "deltas against one base are not like-for-like.")
    suites = sorted({str(r.spec.get("suite")) for r in runs})
    if len(suites) > 1:
        notes.append("The runs use different suites (" + ", ".join(suites) + ").")
    if any(len(s.runs) > 1 for s in systems):
        notes.append("Systems with several seeds: cells are seed means (± the standard deviation between seeds); "
                     "intervals and deltas use the seed-paired, seed-averaged bootstrap.")
    return systems, notes


def seed_pairs(ref: System, other: System, task: str) -> list[tuple[TaskResult, TaskResult]]:
    """(ref, other) results paired by seed; a one-run system (the base model) pairs with every seed."""
    ra, rb = ref.results(task), other.results(task)
    if not ra or not rb:
        return []
    if len(ra) == 1 or len(rb) == 1:
        return [(a, b) for a in ra for b in rb]
    by_seed = {r.spec.get("seed"): res for r, res in zip(ref.runs, ra)}
    return [(by_seed[r.spec.get("seed")], res) for r, res in zip(other.runs, rb) if r.spec.get("seed") in by_seed]


def seed_spread(scores: list[float]) -> float | None:
    return statistics.stdev(scores) if len(scores) > 1 else None
