"""`harness run` over several trainers, ablations and seeds: one comparison at an equal budget.

    harness run --trainer sdrrl,translate_sft,english_sft --seeds 0,1,2 [--ablations] [--steps N]

Members are `<trainer>` or `<trainer>+<ablation>`, an ablation being one of the trainer's named
setting presets (`harness list trainers`); `--ablations` adds every preset of every listed trainer.
Each member and seed is an ordinary, resumable run folder, runs/<comparison>/<member>-s<seed>/;
the base model's evaluation is shared through the evaluation cache, so it runs once; one report
over all of them lands in runs/<comparison>/report.{md,html,json}.

Settings: `--set key=value` (and --config, and the suite's own settings) apply to every member whose
trainer has that field; `--set <trainer>.key=value` (in a suite: `<trainer>.key: value`) to that
trainer's members only, which is how the smoke suites give SDRRL its parallel data while the plain
translate_sft baseline stays plain; a preset wins over both. A preset value "@<trainer>" copies the field from that trainer's settings in this
comparison (translate_sft+parallel takes SDRRL's parallel data that way).

Budget (equal by default): every member trains for the same number of optimizer steps of about
the same number of tokens. The steps are `--steps N`, or a plain `max_steps` setting, or else what
the first training member (the budget member) takes at its own `epochs`; it runs first, per seed.
It trains `batch_size` records per step, and the tokens per step it measured become every other
member's `tokens_per_step`, so their batches hold as many records as give that many tokens (trainers
of shorter records take more of them per step). A plain `tokens_per_step=N` setting gives every
member that target instead, and `tokens_per_step=0` turns the matching off (equal records per step).
A member-scoped batch, token or step setting is honoured and the report marks the budgets that then
differ.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from harness.core.errors import HarnessError, shown, unknown
from harness.core.rules import DECIMAL_INT
from harness.services.preflight import MAX_SEED
from harness.app.spec import RunSpec
from harness.trainer_api import Trainer, build_config, get_trainer_class, load_trainers, setting_names, settings_of

BUDGET_FIELDS = ("max_steps", "batch_size", "grad_accum_steps")
TOKEN_BUDGET_FIELDS = ("batch_size", "tokens_per_step")  # set for one member: its batches stay as set


@dataclass(frozen=True)
class Member:
    label: str  # "sdrrl" or "sdrrl+no_cs"
    trainer: str
    ablation: str | None = None

    @property
    def preset(self) -> dict[str, Any]:
        return get_trainer_class(self.trainer).ablations[self.ablation] if self.ablation else {}


def parse_members(text: str, ablations: bool = False) -> list[Member]:
    """'sdrrl,translate_sft+parallel' -> members; with `ablations`, every preset of each trainer too."""
    trainers = load_trainers()
    members: list[Member] = []
    added = 0  # members --ablations added
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, _, ablation = part.partition("+")
        if name not in trainers:
            raise unknown("trainer", name, list(trainers))
        presets = trainers[name].ablations
        if ablation and ablation not in presets:
            raise unknown(f"ablation of trainer {name!r}:", ablation, list(presets) or ["(none)"])
        members.append(Member(part, name, ablation or None))
        if ablations and not ablation:
            members.extend(Member(f"{name}+{a}", name, a) for a in presets)
            added += len(presets)
    if not members:
        raise HarnessError("--trainer names no trainer; valid: " + ", ".join(sorted(trainers)))
    if ablations and not added:
        with_presets = sorted(name for name, cls in trainers.items() if cls.ablations)
        raise HarnessError(f"--ablations adds nothing to --trainer {shown(text)}: no plain trainer there has ablation presets; "
                           f"trainers with presets: {', '.join(with_presets)}")
    labels = [m.label for m in members]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise HarnessError(f"--trainer names {', '.join(repeated)} more than once")
    return members


def parse_seeds(text: str) -> list[int]:
    parts = [s.strip() for s in text.split(",") if s.strip()]
    bad = next((s for s in parts if not DECIMAL_INT.match(s)), None)  # int() also reads "١٢" and "1_0"
    if bad is not None:
        raise HarnessError(f"--seeds expects integers separated by commas, e.g. 0,1,2; got {shown(bad)} in {shown(text)}")
    seeds = [int(s) for s in parts]
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0 or max(seeds) > MAX_SEED:
        raise HarnessError(f"--seeds needs distinct integers in [0, {MAX_SEED}], e.g. 0,1,2; got {shown(text)}")
    return seeds


def member_settings(member: Member, layers: list[dict[str, Any]]) -> dict[str, Any]:
    """The member's trainer settings: each layer (lowest precedence first) scoped to its trainer,
    then its preset, with "@<trainer>" references resolved."""
    trainer_cls = get_trainer_class(member.trainer)
    scoped = _scoped(member.trainer, trainer_cls, layers)
    for key, value in member.preset.items():
        if isinstance(value, str) and value.startswith("@"):
            other = value[1:]
            other_cls = get_trainer_class(other)
            value = settings_of(build_config(other_cls, _scoped(other, other_cls, layers)))[key]
        scoped[key] = value
    return scoped


def _scoped(trainer: str, trainer_cls: type[Trainer], layers: list[dict[str, Any]]) -> dict[str, Any]:
    fields = set(setting_names(trainer_cls.Config))
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            owner, dot, field = key.rpartition(".")
            if dot and owner == trainer:
                out[field] = value
            elif not dot and key in fields:
                out[key] = value
    return out


def check_settings_known(members: list[Member], layers: list[dict[str, Any]], explicit: list[dict[str, Any]]) -> None:
    """A key in `explicit` (--set, --config) that no member's trainer has is a typo: refuse it."""
    for layer in explicit:
        for key in layer:
            owner, dot, field = key.rpartition(".")
            if dot:
                if owner not in {m.trainer for m in members}:
                    from harness.trainer_api import load_trainers

                    ours = ", ".join(sorted({m.trainer for m in members}))
                    if owner in load_trainers():
                        raise HarnessError(f"setting {shown(key)} is for trainer {owner!r}, which this run does not train "
                                           f"(--trainer {ours}); drop it, or add {owner} to --trainer")
                    raise unknown(f"trainer in setting {key!r}:", owner, sorted({m.trainer for m in members}))
                names = setting_names(get_trainer_class(owner).Config)
                if field not in names:
                    raise unknown(f"setting for trainer {owner!r}:", field, names)
                continue
            fields = {name for m in members for name in setting_names(get_trainer_class(m.trainer).Config)}
            if not fields:
                raise HarnessError(f"trainer {members[0].trainer!r} has no settings; got {key!r}")
            if key not in fields:
                trainers = sorted({m.trainer for m in members})
                what = f"trainer{'s' if len(trainers) > 1 else ''} {', '.join(repr(t) for t in trainers)}"
                raise unknown(f"setting for {what}:", key, sorted(fields))


@dataclass
class Comparison:
    """Run specs per member and seed, and the budget as far as it is known before running."""

    name: str
    members: list[Member]
    seeds: list[int]
    specs: dict[tuple[str, int], RunSpec]  # (member label, seed) -> spec
    steps: int | None  # the user's budget (--steps, or a plain max_steps setting); None: the budget member's
    own_steps: frozenset[str] = frozenset()  # members whose max_steps was set for them alone: kept as is
    tokens_per_step: int | None = None  # a plain tokens_per_step setting (0: off); None: the budget member's
    own_tokens: frozenset[str] = frozenset()  # members whose batch_size or tokens_per_step was set for them alone

    def budget_member(self) -> Member | None:
        return next((m for m in self.members if get_trainer_class(m.trainer).trains), None)


def plan_comparison(
    name: str,
    members: list[Member],
    seeds: list[int],
    layers: list[dict[str, Any]],
    make_spec: Callable[[Member, dict[str, Any], int], RunSpec],
    steps: int | None = None,
) -> Comparison:
    """Every member's settings and spec for every seed; `layers` lowest precedence first."""
    if steps is not None and steps < 1:
        raise HarnessError(f"bad value for --steps: {steps}; expected an integer >= 1")
    # (not converted here: a bad value is refused with the member's other settings, before any run)
    tokens = next((layer["tokens_per_step"] for layer in reversed(layers) if "tokens_per_step" in layer), None)
    specs = {}
    for member in members:
        settings = member_settings(member, layers)
        for seed in seeds:
            specs[(member.label, seed)] = make_spec(member, settings, seed)
    if steps is None:  # after the specs: each member's settings refused a bad max_steps in its own words
        plain = next((layer["max_steps"] for layer in reversed(layers) if "max_steps" in layer), None)
        steps = _plain_steps(plain) or None
    return Comparison(name, members, seeds, specs, steps, _own(members, layers, ("max_steps",)), tokens,
                      _own(members, layers, TOKEN_BUDGET_FIELDS))


def _plain_steps(value: Any) -> int | None:
    """A plain max_steps setting as the comparison's budget (a --set string, or a config file's value)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    raise HarnessError(f"bad value for max_steps: {shown(value)}; expected an integer >= 0 (0: the trainer's epochs decide)")


def _own(members: list[Member], layers: list[dict[str, Any]], fields: tuple[str, ...]) -> frozenset[str]:
    """The members for which one of `fields` was set alone: by their preset or a `<trainer>.<field>` setting."""
    return frozenset(m.label for m in members for f in fields
                     if f in m.preset or any(f"{m.trainer}.{f}" in layer for layer in layers))


def with_budget(comparison: Comparison, member: Member, spec: RunSpec, steps: int | None, tokens: int | None) -> RunSpec:
    """The member's spec at the comparison's budget: its steps and tokens per step, unless set for it alone."""
    trainer_cls = get_trainer_class(member.trainer)
    if not trainer_cls.trains:
        return spec
    config = dict(spec.trainer_config)
    if steps and member.label not in comparison.own_steps:
        config["max_steps"] = steps
    if tokens and member.label not in comparison.own_tokens and "tokens_per_step" in setting_names(trainer_cls.Config):
        config["tokens_per_step"] = tokens
    return dataclasses.replace(spec, trainer_config=config)


def run_comparison(comparison: Comparison, runs_dir: Path, force: str | None = None, keep_cache: bool = False,
                   min_effect: dict[str, float] | None = None, launch: Any = None,
                   report_to: tuple[str, ...] = ()) -> tuple[Path, dict[str, str] | None]:
    """Check every member's inputs, write the plan of jobs (harness.app.plan), start them with the
    launcher (harness.app.launchers; default: one after another in this process), then one report
    over all of them. Returns the comparison folder and each job's final state (None: detached)."""
    from harness.app import pipeline
    from harness.app.launchers import LaunchOptions, check_launcher, launch as start
    from harness.app.plan import build_plan, finish, write_plan
    from harness.core.comparison_progress import ComparisonProgress
    from harness.core.progress import say, shown_path

    options = launch or LaunchOptions()
    root = Path(runs_dir) / comparison.name
    # Every member's inputs are checked before any model is loaded. The model folder, the data and
    # the runs folder are the same for all members, so they are checked once; the rest per member.
    # (A training member goes first: only training needs the model's chat template.)
    budget_member = comparison.budget_member()
    first = comparison.specs[(budget_member or comparison.members[0]).label, comparison.seeds[0]]
    pipeline.check_inputs(first, root, force)
    for spec in comparison.specs.values():
        if spec is not first:
            pipeline.check_plan(spec)
    check_launcher(options)
    plan = build_plan(comparison, force, keep_cache, min_effect, report_to)
    write_plan(plan, root)  # before anything runs: every launcher runs the jobs from it
    if options.launcher == "local":  # the comparison's screen; Slurm's driver shows its own table of jobs
        with ComparisonProgress(comparison.name, len(plan.members)) as screen:
            states = start(plan, root, options)
    else:
        screen, states = None, start(plan, root, options)
    if states is None:
        say(f"submitted; `harness status {shown_path(root)}` shows the members, `harness report {shown_path(root)}` "
            "builds the report when all are done")
        return root, None
    report, missing = finish(root, plan)
    if screen is not None:
        say(screen.summary(report) + (f" (without {', '.join(missing)}: not finished)" if missing else ""))
    else:
        say(f"report: {shown_path(report)}" + (f" (without {', '.join(missing)}: not finished)" if missing else ""))
    return root, states
